/* http1.h: HTTP/1.1 on the wire, without I/O: frames a request, and reads
 * one answer fed in pieces as they arrive from the connection. Every
 * transport (libcurl's connections, one at a time or many at once, and
 * nginx cosockets through the Lua bridge) moves bytes only; the rules live
 * here, so they are tested and fuzzed once.
 *
 * It is strict where a mistake could lose or mix up answers on a kept-alive
 * connection (the body's length, chunk framing, conflicting lengths) and
 * bounded everywhere: header lines and bytes, line length, chunk sizes, and
 * the body through its buffer's limit (max_body). */
#ifndef ORBT_HTTP1_H
#define ORBT_HTTP1_H

#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

/* Answers with more header lines or bytes than this are refused. Lines are
 * counted as libcurl counts them: the status line and the blank line too. */
#define HTTP1_HEADER_LINES_MAX 200
#define HTTP1_HEADER_BYTES_MAX ((size_t)64 * 1024)

typedef enum http1_outcome {
    HTTP1_MORE = 0,     /* feed it more */
    HTTP1_DONE,         /* the whole answer is in */
    HTTP1_TOO_LARGE,    /* the body passed the buffer's limit */
    HTTP1_HEAD_TOO_LARGE, /* the header lines or bytes passed their limits; see `error` */
    HTTP1_BAD           /* not a valid answer, or cut off; see `error` */
} http1_outcome;

typedef enum http1_state {
    H1_STATUS_LINE,
    H1_HEADER_LINE,
    H1_BODY,            /* Content-Length bytes */
    H1_CHUNK_SIZE,
    H1_CHUNK_DATA,
    H1_CHUNK_END,       /* the CRLF after a chunk's data */
    H1_TRAILER_LINE,
    H1_UNTIL_CLOSE,     /* no length given: the body ends with the connection */
    H1_FINISHED
} http1_state;

/* The request id an answer carries is the value of the first of these
 * headers it has (in this order of preference), after any names the client
 * adds in front. Orbt documents none; these are the common ones. */
#define HTTP1_REQUEST_ID_HEADERS "x-request-id", "x-correlation-id", "x-amzn-requestid", "traceparent"
#define HTTP1_REQUEST_ID_MAX 128   /* longer values are cut; bytes outside visible ASCII end them */

typedef struct http1_reader {
    http1_state state;
    http1_outcome outcome;
    long status;
    int keep_alive;          /* the connection may carry another request */
    int chunked;
    int has_length;
    uint64_t length;         /* Content-Length, when has_length */
    uint64_t remaining;      /* bytes left of the body or of the current chunk */
    size_t header_lines, header_bytes;
    size_t received;         /* bytes fed so far */
    int tunnel;              /* the answer to a CONNECT: a 2xx ends at its header */
    char retry_after[64];    /* the Retry-After header's value, or "" */
    const char *const *id_headers; /* lower-case names, NULL-terminated: where the request id is */
    size_t id_rank;          /* the preference of the header request_id came from */
    char request_id[HTTP1_REQUEST_ID_MAX + 1]; /* or "" */
    const char *error;       /* why, when the outcome is HTTP1_BAD or HTTP1_HEAD_TOO_LARGE */
    buffer *body;
    buffer line;             /* the line being read, up to the header limits */
    buffer field;            /* a header field, until the next line shows it is not folded */
} http1_reader;

/* Before the first http1_begin, and after the last answer. */
void http1_init(http1_reader *r);
void http1_free(http1_reader *r);

/* The default id_headers: HTTP1_REQUEST_ID_HEADERS. */
extern const char *const http1_default_id_headers[];

/* Starts reading an answer whose body goes into `body` (reset first). The
 * request id is looked for in r->id_headers (the defaults when NULL). */
void http1_begin(http1_reader *r, buffer *body);

/* Starts reading a proxy's answer to CONNECT: a 2xx answer has no body, and
 * the connection then carries the tunnel (RFC 9110 section 9.3.6). */
void http1_begin_tunnel(http1_reader *r, buffer *body);

/* Feeds the next `len` bytes. *used tells how many were taken: fewer than
 * len only once the outcome is no longer HTTP1_MORE (after a complete
 * answer, the rest is not part of it).
 * Returns the outcome so far; once not HTTP1_MORE it stays so. */
http1_outcome http1_feed(http1_reader *r, const char *data, size_t len, size_t *used);

/* The peer closed the connection: completes an answer whose body runs to
 * the close, and makes any other unfinished answer HTTP1_BAD. */
http1_outcome http1_end(http1_reader *r);

/* What a request says besides its signed header lines. */
typedef struct http1_request {
    const char *method;        /* "GET", "POST" */
    const char *target;        /* origin-form: "/path?query" */
    const char *authority;     /* the Host header: "host[:port]" */
    const char *user_agent;
    const char *header_lines;  /* more "Name: value\r\n" lines */
    size_t header_lines_len;
    const char *body;
    size_t body_len;
} http1_request;

/* Appends the request as it goes on the wire to out: request line, Host,
 * User-Agent, the given lines, Content-Length (for every method but GET),
 * the blank line and the body. Returns 0, or -1 when out cannot grow. */
int http1_frame_request(buffer *out, const http1_request *rq);

/* Appends "CONNECT host:port HTTP/1.1" with Host, User-Agent and, when
 * credentials is not NULL, Proxy-Authorization: Basic with them
 * ("user:password"). */
int http1_frame_connect(buffer *out, const char *host_port, const char *user_agent,
                        const char *credentials);

#endif
