/* http1_fuzz.c: libFuzzer target for the HTTP/1.1 answer reader (http1.c).
 *
 * Input layout (missing bytes read as 0):
 *   byte 0      the body limit: 0 for none, else byte * 16
 *   byte 1      bits 0-6: how the second reading splits the input:
 *               pieces of 1 + (bits % 7) bytes, so that every state is
 *               entered from every place a read can end (libcurl's reads
 *               and the nginx transport's feeds both arrive in pieces)
 *               bit 7: the answer is a proxy's answer to CONNECT
 *   bytes 2..   the bytes the server sent, then the connection closes
 *
 * The input is read twice, in one piece and split, and the two readings
 * must agree on everything: outcome, status, body, what was taken, and
 * whether the connection may be used again. Each must also keep the
 * reader's promises: a body within its limit, a Content-Length body of
 * exactly that length, header limits held. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "http1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct reading {
    http1_outcome outcome;
    size_t taken;       /* bytes the answer took before it was complete */
} reading;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "http1_fuzz: invariant broken: %s\n", what);
        abort();
    }
}

/* Feeds data in pieces of `piece` bytes, then the close. */
static reading read_in_pieces(http1_reader *r, buffer *body, const char *data, size_t size, size_t piece,
                              int tunnel)
{
    reading out = {HTTP1_MORE, 0};
    if (tunnel)
        http1_begin_tunnel(r, body);
    else
        http1_begin(r, body);
    size_t pos = 0;
    while (pos < size && out.outcome == HTTP1_MORE) {
        size_t n = size - pos < piece ? size - pos : piece;
        size_t used = 0;
        out.outcome = http1_feed(r, data + pos, n, &used);
        check(used <= n, "took more than it was given");
        check(out.outcome != HTTP1_MORE || used == n, "left bytes unread while wanting more");
        pos += used;
        out.taken = pos;
        if (out.outcome != HTTP1_MORE)
            break;
    }
    if (out.outcome == HTTP1_MORE)
        out.outcome = http1_end(r);
    return out;
}

static void check_promises(const http1_reader *r, const buffer *body, reading got)
{
    check(body->limit == 0 || body->len <= body->limit, "the body passed its limit");
    check(r->header_lines <= HTTP1_HEADER_LINES_MAX || got.outcome == HTTP1_HEAD_TOO_LARGE,
          "too many header lines taken");
    check(r->header_bytes <= HTTP1_HEADER_BYTES_MAX || got.outcome == HTTP1_HEAD_TOO_LARGE,
          "too many header bytes taken");
    if (got.outcome == HTTP1_BAD || got.outcome == HTTP1_HEAD_TOO_LARGE)
        check(r->error != NULL && r->error[0] != '\0', "a bad answer without a reason");
    if (got.outcome == HTTP1_DONE) {
        check(r->status >= 200 && r->status <= 999, "a finished answer with an interim status");
        /* A tunnel's 2xx answer has no body, whatever it announces. */
        int tunnel_opened = r->tunnel && r->status < 300;
        if (r->has_length && !r->chunked && r->status != 204 && r->status != 304 && !tunnel_opened)
            check(body->len == r->length, "a Content-Length body of another length");
        check(memchr(r->retry_after, '\0', sizeof r->retry_after) != NULL, "Retry-After not terminated");
        if (r->tunnel && r->status < 300)
            check(body->len == 0 && r->keep_alive, "a tunnel's 2xx answer with a body, or not kept");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static http1_reader whole_reader, split_reader;
    static int ready;
    if (!ready) {
        http1_init(&whole_reader);
        http1_init(&split_reader);
        ready = 1;
    }
    if (size < 2)
        return 0;
    size_t limit = (size_t)data[0] * 16;
    size_t piece = 1 + (data[1] & 0x7f) % 7;
    int tunnel = (data[1] & 0x80) != 0;
    const char *bytes = (const char *)data + 2;
    size_t len = size - 2;

    buffer whole_body, split_body;
    buffer_init(&whole_body, limit);
    buffer_init(&split_body, limit);
    reading whole = read_in_pieces(&whole_reader, &whole_body, bytes, len, len > 0 ? len : 1, tunnel);
    reading split = read_in_pieces(&split_reader, &split_body, bytes, len, piece, tunnel);

    check_promises(&whole_reader, &whole_body, whole);
    check_promises(&split_reader, &split_body, split);
    check(whole.outcome == split.outcome, "the outcome depends on how the bytes arrived");
    if (whole.outcome == HTTP1_DONE) {
        check(whole.taken == split.taken, "the answer's end depends on how the bytes arrived");
        check(whole_reader.status == split_reader.status, "the status depends on how the bytes arrived");
        check(whole_reader.keep_alive == split_reader.keep_alive, "keep-alive depends on how the bytes arrived");
        check(whole_body.len == split_body.len
                  && (whole_body.len == 0 || memcmp(whole_body.data, split_body.data, whole_body.len) == 0),
              "the body depends on how the bytes arrived");
        check(strcmp(whole_reader.retry_after, split_reader.retry_after) == 0,
              "Retry-After depends on how the bytes arrived");
    }
    buffer_free(&whole_body);
    buffer_free(&split_body);
    return 0;
}
