/* http1.c: HTTP/1.1 framing (RFC 9112): requests written, answers read
 * incrementally and within bounds. */
#include "http1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ascii.h"

/* Chunk-size lines (with any extensions) and the CRLF after chunk data. */
#define CHUNK_LINE_MAX 1024
/* 15 hex digits: a chunk size that cannot overflow 64 bits when added up. */
#define CHUNK_SIZE_DIGITS_MAX 15
/* 18 decimal digits: a Content-Length that fits in 64 bits. */
#define LENGTH_DIGITS_MAX 18

_Static_assert(HTTP1_HEADER_LINES_MAX == 200 && HTTP1_HEADER_BYTES_MAX == 65536,
               "the header limit message below spells the limits out");
static const char HEADER_LIMIT_MESSAGE[] =
    "the answer has more than 200 header lines or 65536 bytes of headers";

static http1_outcome fail(http1_reader *r, const char *why)
{
    r->error = why;
    r->outcome = HTTP1_BAD;
    return r->outcome;
}

/* Too many header lines or bytes: a well-framed answer may follow, but it
 * is not one orbt reads, so it ends the answer like a malformed one. */
static http1_outcome fail_head_limit(http1_reader *r)
{
    r->error = HEADER_LIMIT_MESSAGE;
    r->outcome = HTTP1_HEAD_TOO_LARGE;
    return r->outcome;
}

static http1_outcome finish(http1_reader *r)
{
    r->state = H1_FINISHED;
    r->outcome = HTTP1_DONE;
    return r->outcome;
}

/* Resets what one answer's header says, for the next (after a 1xx). */
static void forget_header(http1_reader *r)
{
    r->status = 0;
    r->keep_alive = 0;
    r->chunked = 0;
    r->has_length = 0;
    r->length = 0;
    r->remaining = 0;
    r->retry_after[0] = '\0';
    r->request_id[0] = '\0';
    r->id_rank = (size_t)-1;
}

const char *const http1_default_id_headers[] = {HTTP1_REQUEST_ID_HEADERS, NULL};

void http1_init(http1_reader *r)
{
    memset(r, 0, sizeof *r);
    buffer_init(&r->line, HTTP1_HEADER_BYTES_MAX);
    buffer_init(&r->field, HTTP1_HEADER_BYTES_MAX);
}

void http1_free(http1_reader *r)
{
    buffer_free(&r->line);
    buffer_free(&r->field);
}

void http1_begin(http1_reader *r, buffer *body)
{
    forget_header(r);
    r->state = H1_STATUS_LINE;
    r->outcome = HTTP1_MORE;
    r->header_lines = 0;
    r->header_bytes = 0;
    r->received = 0;
    r->tunnel = 0;
    r->error = NULL;
    r->body = body;
    buffer_reset(body);
    /* A long line of an earlier answer does not stay allocated. */
    buffer_release(&r->line);
    buffer_release(&r->field);
}

void http1_begin_tunnel(http1_reader *r, buffer *body)
{
    http1_begin(r, body);
    r->tunnel = 1;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* s[0..n) equals the lower-case word `lower`, ignoring case. */
static int equals_word(const char *s, size_t n, const char *lower)
{
    return strlen(lower) == n && strncasecmp(s, lower, n) == 0;
}

/* "HTTP/1.1 200 OK": the version, a space, three digits, then a space and
 * a reason phrase, or nothing. */
static http1_outcome read_status_line(http1_reader *r, const char *s, size_t n)
{
    if (n < 12 || memcmp(s, "HTTP/1.", 7) != 0 || !ascii_is_digit(s[7]) || s[8] != ' '
        || !ascii_is_digit(s[9]) || !ascii_is_digit(s[10]) || !ascii_is_digit(s[11]) || (n > 12 && s[12] != ' '))
        return fail(r, "the answer does not start with an HTTP/1.x status line");
    r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (r->status < 100)
        return fail(r, "the answer has a status below 100");
    /* HTTP/1.0 closes after each answer unless asked not to; orbt asks nothing. */
    r->keep_alive = s[7] != '0';
    r->state = H1_HEADER_LINE;
    return HTTP1_MORE;
}

static http1_outcome read_content_length(http1_reader *r, const char *v, size_t n)
{
    uint64_t value = 0;
    if (n == 0 || n > LENGTH_DIGITS_MAX)
        return fail(r, "the answer has an invalid Content-Length");
    for (size_t i = 0; i < n; i++) {
        if (!ascii_is_digit(v[i]))
            return fail(r, "the answer has an invalid Content-Length");
        value = value * 10 + (uint64_t)(v[i] - '0');
    }
    /* Two different lengths: which one frames the body cannot be known. */
    if (r->has_length && r->length != value)
        return fail(r, "the answer has conflicting Content-Length headers");
    r->has_length = 1;
    r->length = value;
    return HTTP1_MORE;
}

/* orbt asks for no compression, so chunked is the only coding it takes. */
static http1_outcome read_transfer_encoding(http1_reader *r, const char *v, size_t n)
{
    if (r->chunked || !equals_word(v, n, "chunked"))
        return fail(r, "the answer has a Transfer-Encoding other than chunked");
    r->chunked = 1;
    return HTTP1_MORE;
}

static void read_connection(http1_reader *r, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t start = i;
        while (i < n && v[i] != ',')
            i++;
        size_t end = i;
        while (start < end && is_space(v[start]))
            start++;
        while (end > start && is_space(v[end - 1]))
            end--;
        if (equals_word(v + start, end - start, "close"))
            r->keep_alive = 0;
        i++;
    }
}

static void read_retry_after(http1_reader *r, const char *v, size_t n)
{
    if (n < sizeof r->retry_after) {
        memcpy(r->retry_after, v, n);
        r->retry_after[n] = '\0';
    }
}

/* Keeps the value when its header is preferred to the one kept so far. The
 * value is cut at the first byte that is not visible ASCII, and at
 * HTTP1_REQUEST_ID_MAX bytes: it goes into messages and logs. */
static void read_request_id(http1_reader *r, const char *name, size_t name_len, const char *v, size_t n)
{
    const char *const *names = r->id_headers != NULL ? r->id_headers : http1_default_id_headers;
    for (size_t rank = 0; rank < r->id_rank && names[rank] != NULL; rank++) {
        if (!equals_word(name, name_len, names[rank]))
            continue;
        size_t len = 0;
        while (len < n && len < HTTP1_REQUEST_ID_MAX && v[len] > ' ' && v[len] < 0x7f)
            len++;
        if (len == 0)
            return;
        memcpy(r->request_id, v, len);
        r->request_id[len] = '\0';
        r->id_rank = rank;
        return;
    }
}

/* "Name: value", unfolded. Names with spaces are refused. */
static http1_outcome read_header_field(http1_reader *r, const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    if (colon == NULL || colon == s || is_space(s[0]))
        return fail(r, "the answer has a malformed header line");
    size_t name_len = (size_t)(colon - s);
    for (size_t i = 0; i < name_len; i++) {
        if (is_space(s[i]))
            return fail(r, "the answer has a malformed header line");
    }
    const char *v = colon + 1;
    size_t vn = n - name_len - 1;
    while (vn > 0 && is_space(*v))
        v++, vn--;
    while (vn > 0 && is_space(v[vn - 1]))
        vn--;
    if (equals_word(s, name_len, "content-length"))
        return read_content_length(r, v, vn);
    if (equals_word(s, name_len, "transfer-encoding"))
        return read_transfer_encoding(r, v, vn);
    if (equals_word(s, name_len, "connection"))
        read_connection(r, v, vn);
    else if (equals_word(s, name_len, "retry-after"))
        read_retry_after(r, v, vn);
    else
        read_request_id(r, s, name_len, v, vn);
    return HTTP1_MORE;
}

/* The header field waiting for its continuation lines, if any, is read. */
static http1_outcome read_pending_field(http1_reader *r)
{
    if (r->field.len == 0)
        return HTTP1_MORE;
    http1_outcome outcome = read_header_field(r, r->field.data, r->field.len);
    r->field.len = 0;
    return outcome;
}

static http1_outcome end_of_header(http1_reader *r);

/* A header line. RFC 9112 section 5.2: a line that starts with a space or
 * tab continues the field before it (the obsolete line folding), and a
 * user agent reads it as one space; so each field is held until the next
 * line shows it complete. A fold with no field before it is refused. */
static http1_outcome read_header_line(http1_reader *r, const char *s, size_t n)
{
    if (n > 0 && is_space(s[0])) {
        if (r->field.len == 0)
            return fail(r, "the answer has a malformed header line");
        while (n > 0 && is_space(s[0]))
            s++, n--;
        if (buffer_append(&r->field, " ", 1) != 0 || buffer_append(&r->field, s, n) != 0)
            return fail(r, "out of memory reading the answer");
        return HTTP1_MORE;
    }
    http1_outcome outcome = read_pending_field(r);
    if (outcome != HTTP1_MORE)
        return outcome;
    if (n == 0)
        return end_of_header(r);
    if (buffer_append(&r->field, s, n) != 0)
        return fail(r, "out of memory reading the answer");
    return HTTP1_MORE;
}

/* The blank line after the header: how the body is framed decides what
 * comes next (RFC 9112 section 6.3). */
static http1_outcome end_of_header(http1_reader *r)
{
    if (r->status < 200) {
        if (r->status == 101)
            return fail(r, "the answer switches protocols (101)");
        forget_header(r);   /* an interim answer: the real one follows */
        r->state = H1_STATUS_LINE;
        return HTTP1_MORE;
    }
    if (r->tunnel && r->status < 300) {
        /* Any 2xx to CONNECT opens the tunnel right after this header:
         * no body, whatever the header says (RFC 9110 section 9.3.6). */
        r->keep_alive = 1;
        return finish(r);
    }
    if (r->status == 204 || r->status == 304)
        return finish(r);
    if (r->chunked) {
        /* Both framings at once is how requests get smuggled: use chunked,
         * and do not trust the connection with another request. */
        if (r->has_length)
            r->keep_alive = 0;
        r->state = H1_CHUNK_SIZE;
        return HTTP1_MORE;
    }
    if (r->has_length) {
        if (r->body->limit != 0 && r->length > r->body->limit) {
            r->outcome = HTTP1_TOO_LARGE;
            return r->outcome;
        }
        r->remaining = r->length;
        r->state = H1_BODY;
        return r->remaining == 0 ? finish(r) : HTTP1_MORE;
    }
    r->keep_alive = 0;
    r->state = H1_UNTIL_CLOSE;
    return HTTP1_MORE;
}

/* "1a2f" with optional ";extension". */
static http1_outcome read_chunk_size(http1_reader *r, const char *s, size_t n)
{
    uint64_t size = 0;
    size_t i = 0;
    for (; i < n && ascii_hex_value(s[i]) >= 0; i++) {
        if (i == CHUNK_SIZE_DIGITS_MAX)
            return fail(r, "the answer has a chunk too large to be real");
        size = size * 16 + (uint64_t)ascii_hex_value(s[i]);
    }
    if (i == 0)
        return fail(r, "the answer has a malformed chunk size");
    while (i < n && is_space(s[i]))
        i++;
    if (i < n && s[i] != ';')
        return fail(r, "the answer has a malformed chunk size");
    if (size == 0) {
        r->state = H1_TRAILER_LINE;
        return HTTP1_MORE;
    }
    if (r->body->limit != 0 && size > r->body->limit - r->body->len) {
        r->outcome = HTTP1_TOO_LARGE;
        return r->outcome;
    }
    r->remaining = size;
    r->state = H1_CHUNK_DATA;
    return HTTP1_MORE;
}

static int is_header_state(http1_state state)
{
    return state == H1_STATUS_LINE || state == H1_HEADER_LINE || state == H1_TRAILER_LINE;
}

/* One complete line, without its line ending. */
static http1_outcome read_line(http1_reader *r, const char *s, size_t n)
{
    if (is_header_state(r->state)) {
        if (++r->header_lines > HTTP1_HEADER_LINES_MAX)
            return fail_head_limit(r);
        if (memchr(s, '\0', n) != NULL)
            return fail(r, "the answer has a NUL byte in its header");
        /* RFC 9112 section 2.2: a bare CR is refused, not guessed at. */
        if (memchr(s, '\r', n) != NULL)
            return fail(r, "the answer has a bare CR in its header");
    }
    switch (r->state) {
    case H1_STATUS_LINE:
        return read_status_line(r, s, n);
    case H1_HEADER_LINE:
        return read_header_line(r, s, n);
    case H1_CHUNK_SIZE:
        return read_chunk_size(r, s, n);
    case H1_CHUNK_END:
        if (n != 0)
            return fail(r, "the answer has chunk data longer than its size");
        r->state = H1_CHUNK_SIZE;
        return HTTP1_MORE;
    case H1_TRAILER_LINE:
        /* Trailer fields are counted against the header limits, not used. */
        return n == 0 ? finish(r) : HTTP1_MORE;
    default:
        return fail(r, "internal error: not reading a line");
    }
}

/* Takes bytes up to and including the next LF into r->line; when the line
 * is complete, reads it. Returns the bytes taken. */
static size_t take_line(http1_reader *r, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t take = lf != NULL ? (size_t)(lf - p) + 1 : n;
    if (is_header_state(r->state)) {
        r->header_bytes += take;
        if (r->header_bytes > HTTP1_HEADER_BYTES_MAX) {
            fail_head_limit(r);
            return take;
        }
    } else if (r->line.len + take > CHUNK_LINE_MAX) {
        fail(r, "the answer has a chunk line that is too long");
        return take;
    }
    if (buffer_append(&r->line, p, take) != 0) {
        fail(r, "out of memory reading the answer");
        return take;
    }
    if (lf == NULL)
        return take;
    size_t len = r->line.len - 1;          /* without the LF */
    if (len > 0 && r->line.data[len - 1] == '\r')
        len--;
    r->line.len = 0;
    read_line(r, r->line.data, len);
    return take;
}

/* Takes body bytes: of the Content-Length, the current chunk, or all of
 * them when the body runs to the close. Returns the bytes taken. */
static size_t take_body(http1_reader *r, const char *p, size_t n)
{
    size_t take = n;
    if (r->state != H1_UNTIL_CLOSE && r->remaining < take)
        take = (size_t)r->remaining;
    if (buffer_append(r->body, p, take) != 0) {
        if (r->body->overflow)
            r->outcome = HTTP1_TOO_LARGE;
        else
            fail(r, "out of memory reading the answer");
        return take;
    }
    if (r->state == H1_UNTIL_CLOSE)
        return take;
    r->remaining -= take;
    if (r->remaining == 0) {
        if (r->state == H1_BODY)
            finish(r);
        else
            r->state = H1_CHUNK_END;
    }
    return take;
}

http1_outcome http1_feed(http1_reader *r, const char *data, size_t len, size_t *used)
{
    size_t pos = 0;
    while (pos < len && r->outcome == HTTP1_MORE) {
        if (r->state == H1_BODY || r->state == H1_CHUNK_DATA || r->state == H1_UNTIL_CLOSE)
            pos += take_body(r, data + pos, len - pos);
        else
            pos += take_line(r, data + pos, len - pos);
    }
    r->received += pos;
    *used = pos;
    return r->outcome;
}

http1_outcome http1_end(http1_reader *r)
{
    if (r->outcome != HTTP1_MORE)
        return r->outcome;
    if (r->state == H1_UNTIL_CLOSE)
        return finish(r);
    return fail(r, r->received == 0 ? "the connection closed before any answer came"
                                    : "the connection closed before the answer was complete");
}

/* ===== Requests ===== */

int http1_frame_request(buffer *out, const http1_request *rq)
{
    int ok = buffer_append_str(out, rq->method) == 0 && buffer_append(out, " ", 1) == 0
             && buffer_append_str(out, rq->target) == 0
             && buffer_append_str(out, " HTTP/1.1\r\nHost: ") == 0
             && buffer_append_str(out, rq->authority) == 0
             && buffer_append_str(out, "\r\nUser-Agent: ") == 0
             && buffer_append_str(out, rq->user_agent) == 0 && buffer_append(out, "\r\n", 2) == 0
             && buffer_append(out, rq->header_lines, rq->header_lines_len) == 0;
    if (ok && strcmp(rq->method, "GET") != 0) {
        char length[48];
        int n = snprintf(length, sizeof length, "Content-Length: %zu\r\n", rq->body_len);
        ok = n > 0 && buffer_append(out, length, (size_t)n) == 0;
    }
    ok = ok && buffer_append(out, "\r\n", 2) == 0;
    if (ok && rq->body_len > 0)
        ok = buffer_append(out, rq->body, rq->body_len) == 0;
    return ok ? 0 : -1;
}

int http1_frame_connect(buffer *out, const char *host_port, const char *user_agent,
                        const char *credentials)
{
    int ok = buffer_append_str(out, "CONNECT ") == 0 && buffer_append_str(out, host_port) == 0
             && buffer_append_str(out, " HTTP/1.1\r\nHost: ") == 0 && buffer_append_str(out, host_port) == 0
             && buffer_append_str(out, "\r\nUser-Agent: ") == 0 && buffer_append_str(out, user_agent) == 0
             && buffer_append(out, "\r\n", 2) == 0;
    if (ok && credentials != NULL) {
        size_t len = strlen(credentials);
        size_t encoded_len = 4 * ((len + 2) / 3);
        unsigned char *encoded = malloc(encoded_len + 1);
        ok = encoded != NULL && EVP_EncodeBlock(encoded, (const unsigned char *)credentials, (int)len) >= 0
             && buffer_append_str(out, "Proxy-Authorization: Basic ") == 0
             && buffer_append(out, encoded, encoded_len) == 0 && buffer_append(out, "\r\n", 2) == 0;
        if (encoded != NULL) {
            OPENSSL_cleanse(encoded, encoded_len + 1);
            free(encoded);
        }
    }
    return ok && buffer_append(out, "\r\n", 2) == 0 ? 0 : -1;
}
