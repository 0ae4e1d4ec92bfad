/* buffer.c: a growable byte buffer with an optional size bound. */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

/* Buffers kept across calls are trimmed back to this after a large answer. */
#define BUFFER_KEEP_BYTES ((size_t)64 * 1024)

void buffer_init(buffer *b, size_t limit)
{
    memset(b, 0, sizeof *b);
    b->limit = limit;
}

void buffer_reset(buffer *b)
{
    b->len = 0;
    b->overflow = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void buffer_release(buffer *b)
{
    if (b->cap > BUFFER_KEEP_BYTES) {
        free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
    buffer_reset(b);
}

void buffer_free(buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->overflow = 0;
}

static int buffer_reserve(buffer *b, size_t extra)
{
    if (extra > (size_t)-1 - b->len - 1)
        return -1;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > (size_t)-1 / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buffer_append(buffer *b, const void *data, size_t n)
{
    if (b->limit != 0 && (n > b->limit || b->len > b->limit - n)) {
        b->overflow = 1;
        return -1;
    }
    if (buffer_reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int buffer_append_str(buffer *b, const char *s)
{
    return buffer_append(b, s, strlen(s));
}
