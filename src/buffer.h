/* buffer.h: a growable byte buffer with an optional size bound. */
#ifndef ORBT_BUFFER_H
#define ORBT_BUFFER_H

#include <stddef.h>

typedef struct buffer {
    char *data;     /* always NUL-terminated when len > 0 or cap > 0 */
    size_t len;
    size_t cap;
    size_t limit;   /* 0: unbounded */
    int overflow;   /* set when an append was refused by `limit` */
} buffer;

void buffer_init(buffer *b, size_t limit);
void buffer_reset(buffer *b);           /* empty it, keep the allocation */
void buffer_release(buffer *b);         /* free a large allocation, keep small ones */
void buffer_free(buffer *b);
/* Both return 0 on success, -1 on allocation failure or when `limit` would be passed. */
int buffer_append(buffer *b, const void *data, size_t n);
int buffer_append_str(buffer *b, const char *s);

#endif
