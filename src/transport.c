/* transport.c: the HTTP step. libcurl opens and secures connections (DNS,
 * connect, proxy tunnel, TLS with verification). A single request is framed
 * by orbt itself on the connection libcurl opened (http1.c reads the answer);
 * batches run on libcurl's multi interface. */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "http1.h"

#define USER_AGENT "orbt-lua/0.1.0"

/* Answers with more header lines or bytes than this are refused: orbt
 * reads one header, and a hostile or broken server must not make it hold
 * an unbounded list. The same limits as http1.c's. */
#define HEADER_LINES_MAX HTTP1_HEADER_LINES_MAX
#define HEADER_BYTES_MAX HTTP1_HEADER_BYTES_MAX

/* Why a create that lost its connection is not sent again. */
#define RESEND_REFUSED_MESSAGE "the connection closed after the request was sent; it was not sent " \
                               "again because it may have been applied"

/* How much of an answer one read takes. */
#define READ_CHUNK 16384

/* What the header callback sees of one answer. */
typedef struct header_reader {
    http_response *response;
    size_t lines, bytes;
    int too_many;
} header_reader;

/* The kept-alive connection single requests use. libcurl opened it
 * (CURLOPT_CONNECT_ONLY) and owns its socket; orbt sends and reads HTTP/1.1
 * on it with curl_easy_send/curl_easy_recv. */
typedef struct connection {
    CURL *curl;            /* NULL: no connection */
    curl_socket_t socket;
    char *origin;          /* "scheme://host[:port]" it goes to */
    size_t origin_len;
} connection;

struct transport {
    CURL *curl;                         /* batches only; made when first needed */
    char *ca_file;                      /* NULL: the system's CAs */
    CURLSH *share;                      /* TLS sessions and DNS answers, kept
                                           across the connections it opens */
    connection conn;
    buffer request;                     /* a single request, framed */
    http1_reader *reader;               /* made when first needed: it is 64 KiB */
    struct curl_slist *header_cache;    /* the last request's header lines */
    size_t header_cache_count;
    int in_batch;                       /* a batch transfer is running on it */
    http_response *response;            /* where a batch transfer's outcome goes */
    header_reader headers;
    int sends;             /* requests libcurl started in this perform */
    int refuse_resend;     /* this request must not be sent twice */
    char error[CURL_ERROR_SIZE];
};

int transport_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void transport_global_cleanup(void)
{
    curl_global_cleanup();
}

/* When a reused keep-alive connection dies before the answer, libcurl sends
 * the request again on a new one, by itself. A create already sent may have
 * been processed (it is not idempotent), so a second send within one perform
 * is refused: the caller sees an error instead of a silent second create.
 * libcurl calls this before every send, its own retries included. */
static int before_send(void *userdata, char *conn_primary_ip, char *conn_local_ip,
                       int conn_primary_port, int conn_local_port)
{
    transport *t = userdata;
    (void)conn_primary_ip;
    (void)conn_local_ip;
    (void)conn_primary_port;
    (void)conn_local_port;
    t->sends++;
    return t->sends > 1 && t->refuse_resend ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* Options every handle has, for its whole life. */
static int configure_handle(transport *t, CURL *c)
{
    int ok = 1;
    ok &= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->error) == CURLE_OK;
    /* No signals: safe in threaded hosts, and timeouts do not use SIGALRM. */
    ok &= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    /* A redirect would carry signed credentials to another host. */
    ok &= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#else
    ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK;
#endif
    ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
    if (t->ca_file != NULL)
        ok &= curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file) == CURLE_OK;
    return ok ? 0 : -1;
}

/* The handle batches use: libcurl frames the requests. */
static CURL *batch_handle(transport *t)
{
    if (t->curl != NULL)
        return t->curl;
    CURL *c = curl_easy_init();
    int ok = c != NULL && configure_handle(t, c) == 0;
    ok = ok && curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK;
    ok = ok && curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, before_send) == CURLE_OK;
    ok = ok && curl_easy_setopt(c, CURLOPT_PREREQDATA, t) == CURLE_OK;
    if (!ok) {
        curl_easy_cleanup(c);
        return NULL;
    }
    t->curl = c;
    return c;
}

transport *transport_new(const char *ca_file)
{
    transport *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->conn.socket = CURL_SOCKET_BAD;
    buffer_init(&t->request, 0);
    /* A new connection (after the server closed the last one) resumes the
     * TLS session and skips DNS when it can, as one libcurl handle would. */
    t->share = curl_share_init();
    if (t->share == NULL
        || curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK
        || curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK
        || (ca_file != NULL && (t->ca_file = strdup(ca_file)) == NULL)) {
        transport_free(t);
        return NULL;
    }
    return t;
}

static void close_connection(transport *t)
{
    if (t->conn.curl != NULL)
        curl_easy_cleanup(t->conn.curl);
    free(t->conn.origin);
    t->conn = (connection){NULL, CURL_SOCKET_BAD, NULL, 0};
}

void transport_free(transport *t)
{
    if (t == NULL)
        return;
    close_connection(t);
    if (t->curl != NULL)
        curl_easy_cleanup(t->curl);
    /* After every handle that used it. */
    if (t->share != NULL)
        curl_share_cleanup(t->share);
    curl_slist_free_all(t->header_cache);
    buffer_free(&t->request);
    free(t->reader);
    free(t->ca_file);
    free(t);
}

static size_t collect_body(char *data, size_t size, size_t n, void *userdata)
{
    buffer *body = userdata;
    size_t bytes = size * n;
    /* Returning less than given makes libcurl stop with CURLE_WRITE_ERROR. */
    return buffer_append(body, data, bytes) == 0 ? bytes : 0;
}

/* Keeps the one answer header orbt acts on, Retry-After, and counts the
 * rest. Returning less than given makes libcurl stop (CURLE_WRITE_ERROR). */
static size_t collect_header(char *data, size_t size, size_t n, void *userdata)
{
    header_reader *h = userdata;
    http_response *rs = h->response;
    size_t bytes = size * n;
    static const char name[] = "retry-after:";
    h->lines++;
    h->bytes += bytes;
    if (h->lines > HEADER_LINES_MAX || h->bytes > HEADER_BYTES_MAX) {
        h->too_many = 1;
        return 0;
    }
    if (bytes > sizeof name - 1 && strncasecmp(data, name, sizeof name - 1) == 0) {
        const char *v = data + sizeof name - 1;
        size_t len = bytes - (sizeof name - 1);
        while (len > 0 && (*v == ' ' || *v == '\t'))
            v++, len--;
        while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        if (len < sizeof rs->retry_after) {
            memcpy(rs->retry_after, v, len);
            rs->retry_after[len] = '\0';
        }
    }
    return bytes;
}

static long milliseconds(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    return ms < 1 ? 1 : (long)ms;
}

static struct curl_slist *new_header_list(const http_request *rq)
{
    struct curl_slist *list = NULL;
    for (size_t i = 0; i < rq->header_count; i++) {
        struct curl_slist *next = curl_slist_append(list, rq->headers[i]);
        if (next == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    /* libcurl would otherwise wait for "100 Continue" on larger bodies. */
    struct curl_slist *next = curl_slist_append(list, "Expect:");
    if (next == NULL)
        curl_slist_free_all(list);
    return next;
}

/* The request's header lines as a curl_slist, kept between requests. One
 * client's lines differ from request to request only in the signed values,
 * whose lengths are fixed, so the list's strings are overwritten in place
 * instead of being allocated and freed for every request. libcurl reads the
 * list only while a transfer runs. */
static struct curl_slist *header_list(transport *t, const http_request *rq)
{
    if (t->header_cache != NULL && t->header_cache_count == rq->header_count) {
        struct curl_slist *node = t->header_cache;
        size_t i = 0;
        for (; i < rq->header_count && node != NULL; i++, node = node->next) {
            size_t len = strlen(rq->headers[i]);
            if (strlen(node->data) != len)
                break;
            memcpy(node->data, rq->headers[i], len);
        }
        if (i == rq->header_count)
            return t->header_cache;
    }
    curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(t->header_cache);
    t->header_cache = new_header_list(rq);
    t->header_cache_count = t->header_cache != NULL ? rq->header_count : 0;
    return t->header_cache;
}

static int set_request(transport *t, const http_request *rq, struct curl_slist *headers, http_response *rs)
{
    buffer *body = &rs->body;
    CURL *c = t->curl;
    int ok = 1;
    ok &= curl_easy_setopt(c, CURLOPT_URL, rq->url) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, milliseconds(rq->timeout)) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(rq->connect_timeout)) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_WRITEDATA, body) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect_header) == CURLE_OK;
    t->headers = (header_reader){rs, 0, 0, 0};
    ok &= curl_easy_setopt(c, CURLOPT_HEADERDATA, &t->headers) == CURLE_OK;
    if (body->limit != 0)
        ok &= curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)body->limit) == CURLE_OK;
    t->sends = 0;
    t->refuse_resend = strcmp(rq->method, "GET") != 0;
    if (!t->refuse_resend) {
        ok &= curl_easy_setopt(c, CURLOPT_HTTPGET, 1L) == CURLE_OK;
    } else {
        /* Not copied: the body outlives the perform. Headers and body then
         * go out in one send. */
        ok &= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len) == CURLE_OK;
        ok &= curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body != NULL ? rq->body : "") == CURLE_OK;
    }
    return ok ? 0 : -1;
}

/* Whether the request may have reached the server: a create that failed
 * before this point can be repeated without risk of a duplicate. */
static int request_was_sent(CURL *c, CURLcode code)
{
    long header_bytes = 0;
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &header_bytes);
        return header_bytes > 0;
    default:
        return 1;
    }
}

static transport_result classify(CURLcode code, const buffer *body)
{
    switch (code) {
    case CURLE_OK:
        return TRANSPORT_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return TRANSPORT_TIMEOUT;
    case CURLE_FILESIZE_EXCEEDED:
        return TRANSPORT_TOO_LARGE;
    case CURLE_WRITE_ERROR:
        return body->overflow ? TRANSPORT_TOO_LARGE : TRANSPORT_NETWORK;
    default:
        return TRANSPORT_NETWORK;
    }
}

/* Empties a response before a request (or an attempt) fills it. */
static void reset_response(http_response *rs)
{
    buffer_reset(&rs->body);
    rs->result = TRANSPORT_OK;
    rs->request_sent = 0;
    rs->status = 0;
    rs->message[0] = '\0';
    rs->retry_after[0] = '\0';
}

/* Sets up one transfer: the caller performs it (easy or multi). */
static CURLcode begin_transfer(transport *t, const http_request *rq, http_response *rs)
{
    reset_response(rs);
    t->error[0] = '\0';
    t->response = rs;
    if (batch_handle(t) == NULL)
        return CURLE_OUT_OF_MEMORY;
    struct curl_slist *headers = header_list(t, rq);
    if (headers == NULL || set_request(t, rq, headers, rs) != 0)
        return CURLE_OUT_OF_MEMORY;
    return CURLE_OK;
}

/* Reads the transfer's outcome into its response. */
static void end_transfer(transport *t, CURLcode code)
{
    http_response *rs = t->response;
    t->in_batch = 0;
    if (t->curl != NULL)
        curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &rs->status);

    rs->result = classify(code, &rs->body);
    rs->request_sent = t->curl != NULL && request_was_sent(t->curl, code);
    if (rs->result == TRANSPORT_TOO_LARGE)
        snprintf(rs->message, sizeof rs->message, "the answer is larger than max_body (%zu bytes)", rs->body.limit);
    else if (t->headers.too_many)
        snprintf(rs->message, sizeof rs->message, "the answer has more than %d header lines or %zu bytes of headers",
                 HEADER_LINES_MAX, HEADER_BYTES_MAX);
    else if (code == CURLE_ABORTED_BY_CALLBACK && t->sends > 1)
        snprintf(rs->message, sizeof rs->message, "%s", RESEND_REFUSED_MESSAGE);
    else if (rs->result != TRANSPORT_OK)
        snprintf(rs->message, sizeof rs->message, "%s", t->error[0] ? t->error : curl_easy_strerror(code));
}


/* ===== A single request: orbt frames HTTP/1.1 on libcurl's connection =====
 *
 * libcurl's easy interface spends several system calls and a good part of
 * a request's CPU on machinery a kept-alive exchange of one small request
 * and one small answer does not need. So libcurl opens the connection and
 * orbt writes the request in one send and reads the answer with poll and
 * recv. The rules libcurl followed stay: a kept-alive connection is checked
 * before it is used again, and when it dies before any answer all the same
 * (the server closed it just then), a GET is sent again once on a new one,
 * a create never is. */

static double monotonic_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long remaining_ms(double deadline)
{
    double left = ceil((deadline - monotonic_now()) * 1000.0);
    if (left <= 0)
        return 0;
    return left > INT_MAX ? INT_MAX : (long)left;
}

static transport_result set_failure(http_response *rs, transport_result result, const char *message)
{
    rs->result = result;
    snprintf(rs->message, sizeof rs->message, "%s", message);
    return result;
}

static transport_result set_curl_failure(http_response *rs, const char *what, CURLcode code)
{
    rs->result = code == CURLE_OPERATION_TIMEDOUT ? TRANSPORT_TIMEOUT : TRANSPORT_NETWORK;
    snprintf(rs->message, sizeof rs->message, "%s: %s", what, curl_easy_strerror(code));
    return rs->result;
}

/* "https://host:port/path?query": the length of "https://host:port" and
 * where the request target starts. Refuses what cannot go in a request line. */
static int split_url(const char *url, size_t *origin_len, const char **target)
{
    const char *authority = strstr(url, "://");
    if (authority == NULL)
        return -1;
    authority += 3;
    size_t n = strcspn(authority, "/?");
    if (n == 0)
        return -1;
    for (const unsigned char *p = (const unsigned char *)url; *p != '\0'; p++) {
        if (*p <= 0x20 || *p >= 0x7f)
            return -1;
    }
    *origin_len = (size_t)(authority + n - url);
    *target = authority + n;
    return 0;
}

/* The request as it goes on the wire: request line, header, body. */
static int frame_request(transport *t, const http_request *rq, size_t origin_len, const char *target)
{
    buffer *b = &t->request;
    const char *authority = strstr(rq->url, "://") + 3;
    size_t authority_len = origin_len - (size_t)(authority - rq->url);
    buffer_reset(b);
    int ok = buffer_append_str(b, rq->method) == 0 && buffer_append(b, " ", 1) == 0;
    if (ok && *target != '/')
        ok = buffer_append(b, "/", 1) == 0;
    ok = ok && buffer_append_str(b, target) == 0 && buffer_append_str(b, " HTTP/1.1\r\nHost: ") == 0
         && buffer_append(b, authority, authority_len) == 0
         && buffer_append_str(b, "\r\nUser-Agent: " USER_AGENT "\r\n") == 0;
    for (size_t i = 0; ok && i < rq->header_count; i++)
        ok = buffer_append_str(b, rq->headers[i]) == 0 && buffer_append(b, "\r\n", 2) == 0;
    if (ok && strcmp(rq->method, "GET") != 0) {
        char length[48];
        int n = snprintf(length, sizeof length, "Content-Length: %zu\r\n", rq->body_len);
        ok = n > 0 && buffer_append(b, length, (size_t)n) == 0;
    }
    ok = ok && buffer_append(b, "\r\n", 2) == 0;
    if (ok && rq->body_len > 0)
        ok = buffer_append(b, rq->body, rq->body_len) == 0;
    return ok ? 0 : -1;
}

static int same_origin(const connection *conn, const char *url, size_t origin_len)
{
    return conn->curl != NULL && conn->origin_len == origin_len
           && memcmp(conn->origin, url, origin_len) == 0;
}

/* A kept-alive connection is usable when the server has neither closed it
 * nor sent anything unasked (an alert such as TLS close_notify counts). */
static int connection_open_and_idle(const connection *conn)
{
    char byte;
    ssize_t n = recv(conn->socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

/* libcurl resolves, connects, tunnels through a proxy when one is set, and
 * does the TLS handshake with verification on; then it hands the socket over. */
static transport_result open_connection(transport *t, const http_request *rq, size_t origin_len,
                                        double deadline, http_response *rs)
{
    close_connection(t);
    CURL *c = curl_easy_init();
    char *origin = c != NULL ? strndup(rq->url, origin_len) : NULL;
    if (origin == NULL) {
        curl_easy_cleanup(c);
        return set_failure(rs, TRANSPORT_NETWORK, "out of memory opening a connection");
    }
    t->conn = (connection){c, CURL_SOCKET_BAD, origin, origin_len};
    long left = remaining_ms(deadline);
    int ok = configure_handle(t, c) == 0 && curl_easy_setopt(c, CURLOPT_URL, origin) == CURLE_OK
             && curl_easy_setopt(c, CURLOPT_SHARE, t->share) == CURLE_OK
             && curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L) == CURLE_OK
             /* ALPN then offers HTTP/1.1 only, the one protocol framed here. */
             && curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK
             /* Through a proxy, a tunnel: the request goes to the origin as framed. */
             && curl_easy_setopt(c, CURLOPT_HTTPPROXYTUNNEL, 1L) == CURLE_OK
             && curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(rq->connect_timeout)) == CURLE_OK
             && curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left < 1 ? 1L : left) == CURLE_OK;
    if (!ok) {
        close_connection(t);
        return set_failure(rs, TRANSPORT_NETWORK, "could not set up a connection");
    }
    t->error[0] = '\0';
    CURLcode code = curl_easy_perform(c);
    if (code == CURLE_OK && curl_easy_getinfo(c, CURLINFO_ACTIVESOCKET, &t->conn.socket) != CURLE_OK)
        t->conn.socket = CURL_SOCKET_BAD;
    if (code == CURLE_OK && t->conn.socket == CURL_SOCKET_BAD)
        code = CURLE_COULDNT_CONNECT;
    if (code != CURLE_OK) {
        rs->result = code == CURLE_OPERATION_TIMEDOUT ? TRANSPORT_TIMEOUT : TRANSPORT_NETWORK;
        snprintf(rs->message, sizeof rs->message, "%s", t->error[0] ? t->error : curl_easy_strerror(code));
        close_connection(t);
        return rs->result;
    }
    return TRANSPORT_OK;
}

/* Waits until the socket is ready for `events`. Returns 1 when it is (or
 * has an error for the next call to report), 0 at the deadline, -1 when
 * poll fails. */
static int wait_socket(curl_socket_t socket, short events, double deadline)
{
    for (;;) {
        long left = remaining_ms(deadline);
        if (left <= 0)
            return 0;
        struct pollfd p = {socket, events, 0};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 1;
        if (n < 0 && errno != EINTR)
            return -1;
    }
}

static transport_result wait_failure(http_response *rs, int ready, double timeout, const char *doing)
{
    char message[TRANSPORT_MESSAGE_MAX];
    if (ready < 0)
        return set_failure(rs, TRANSPORT_NETWORK, "could not wait for the connection");
    snprintf(message, sizeof message, "timed out after %.0f ms %s", timeout * 1000.0, doing);
    return set_failure(rs, TRANSPORT_TIMEOUT, message);
}

/* Sends the framed request; *sent counts the bytes that went out. */
static transport_result send_request(transport *t, const http_request *rq, double deadline,
                                     size_t *sent, http_response *rs)
{
    const char *p = t->request.data;
    size_t left = t->request.len;
    while (left > 0) {
        if (remaining_ms(deadline) <= 0)
            return wait_failure(rs, 0, rq->timeout, "sending the request");
        size_t n = 0;
        CURLcode code = curl_easy_send(t->conn.curl, p, left, &n);
        if (code == CURLE_AGAIN) {
            int ready = wait_socket(t->conn.socket, POLLOUT, deadline);
            if (ready <= 0)
                return wait_failure(rs, ready, rq->timeout, "sending the request");
            continue;
        }
        if (code != CURLE_OK)
            return set_curl_failure(rs, "could not send the request", code);
        p += n;
        left -= n;
        *sent += n;
    }
    return TRANSPORT_OK;
}

/* Reads the answer into rs. *extra is set when the server sent more than
 * the answer: the connection is then out of step and not used again. This
 * and the check before reuse see every byte the server sent because
 * nothing reads ahead of orbt: OpenSSL (the TLS of Debian's libcurl) reads
 * one record at a time, and one record fits in READ_CHUNK. */
static transport_result read_answer(transport *t, const http_request *rq, double deadline,
                                    http_response *rs, int *extra)
{
    http1_reader *r = t->reader;
    char chunk[READ_CHUNK];
    /* Right after the request, the answer cannot be there yet: waiting
     * first saves a read that would find nothing. */
    int wait_first = 1;
    for (;;) {
        /* Checked on every pass: a server that keeps sending must not keep
         * the call past its timeout either. */
        if (remaining_ms(deadline) <= 0)
            return wait_failure(rs, 0, rq->timeout, "reading the answer");
        if (wait_first) {
            int ready = wait_socket(t->conn.socket, POLLIN, deadline);
            if (ready <= 0)
                return wait_failure(rs, ready, rq->timeout, "waiting for the answer");
        }
        size_t n = 0;
        CURLcode code = curl_easy_recv(t->conn.curl, chunk, sizeof chunk, &n);
        wait_first = code == CURLE_AGAIN;
        if (wait_first)
            continue;
        if (code != CURLE_OK)
            return set_curl_failure(rs, "the connection failed while reading the answer", code);
        size_t used = 0;
        http1_outcome outcome = n == 0 ? http1_end(r) : http1_feed(r, chunk, n, &used);
        switch (outcome) {
        case HTTP1_MORE:
            continue;
        case HTTP1_DONE:
            *extra = used < n;
            return TRANSPORT_OK;
        case HTTP1_TOO_LARGE:
            rs->result = TRANSPORT_TOO_LARGE;
            snprintf(rs->message, sizeof rs->message, "the answer is larger than max_body (%zu bytes)",
                     rs->body.limit);
            return rs->result;
        case HTTP1_BAD:
        default:
            return set_failure(rs, TRANSPORT_NETWORK, r->error);
        }
    }
}

/* One request and its answer on the open connection. */
static transport_result exchange(transport *t, const http_request *rq, double deadline,
                                 size_t *sent, http_response *rs)
{
    http1_reader *r = t->reader;
    int extra = 0;
    http1_begin(r, &rs->body);
    transport_result result = send_request(t, rq, deadline, sent, rs);
    if (result == TRANSPORT_OK)
        result = read_answer(t, rq, deadline, rs, &extra);
    rs->status = r->status;
    memcpy(rs->retry_after, r->retry_after, sizeof rs->retry_after);
    if (result != TRANSPORT_OK || !r->keep_alive || extra)
        close_connection(t);
    return result;
}

_Static_assert(sizeof(((http_response *)0)->retry_after) == sizeof(((http1_reader *)0)->retry_after),
               "Retry-After is copied whole from the reader to the response");

transport_result transport_perform(transport *t, const http_request *rq, http_response *rs)
{
    double deadline = monotonic_now() + rq->timeout;
    size_t origin_len = 0;
    const char *target = NULL;
    reset_response(rs);
    if (t->reader == NULL && (t->reader = malloc(sizeof *t->reader)) == NULL)
        return set_failure(rs, TRANSPORT_NETWORK, "out of memory");
    if (split_url(rq->url, &origin_len, &target) != 0)
        return set_failure(rs, TRANSPORT_NETWORK, "the URL cannot be sent as it is");
    if (frame_request(t, rq, origin_len, target) != 0)
        return set_failure(rs, TRANSPORT_NETWORK, "out of memory");
    int may_resend = strcmp(rq->method, "GET") == 0;
    int sent_before = 0;
    for (int attempt = 0;; attempt++) {
        reset_response(rs);
        int reused = same_origin(&t->conn, rq->url, origin_len);
        /* Nothing is sent on a connection the server has closed, or on one
         * with bytes nobody asked for (a server's 408 before it closes an
         * idle connection must not pass for this request's answer). */
        if (reused && !connection_open_and_idle(&t->conn)) {
            close_connection(t);
            reused = 0;
        }
        if (!reused && open_connection(t, rq, origin_len, deadline, rs) != TRANSPORT_OK) {
            rs->request_sent = sent_before; /* an earlier attempt's request may have arrived */
            return rs->result;
        }
        size_t sent = 0;
        transport_result result = exchange(t, rq, deadline, &sent, rs);
        rs->request_sent = sent > 0 || sent_before;
        sent_before = rs->request_sent;
        if (result != TRANSPORT_NETWORK || !reused || attempt > 0 || t->reader->received > 0)
            return result;
        /* A kept-alive connection that died before any answer: the server
         * closed it while it was idle, most likely. Once more on a new
         * connection, when that cannot make a duplicate. */
        if (may_resend || sent == 0)
            continue;
        return set_failure(rs, TRANSPORT_NETWORK, RESEND_REFUSED_MESSAGE);
    }
}

/* ===== Batches: several transfers at once on libcurl's multi interface ===== */

struct transport_batch {
    CURLM *multi;
};

transport_batch *transport_batch_new(int max_connections)
{
    transport_batch *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NULL;
    b->multi = curl_multi_init();
    /* One connection per concurrent transfer, kept alive and reused by the
     * next transfer that needs one. */
    if (b->multi == NULL
        || curl_multi_setopt(b->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)max_connections) != CURLM_OK
        || curl_multi_setopt(b->multi, CURLMOPT_MAXCONNECTS, (long)max_connections) != CURLM_OK) {
        transport_batch_free(b);
        return NULL;
    }
    return b;
}

void transport_batch_free(transport_batch *b)
{
    if (b == NULL)
        return;
    if (b->multi != NULL)
        curl_multi_cleanup(b->multi);
    free(b);
}

int transport_batch_add(transport_batch *b, transport *t, const http_request *rq, http_response *rs)
{
    CURLcode code = begin_transfer(t, rq, rs);
    if (code == CURLE_OK && curl_multi_add_handle(b->multi, t->curl) == CURLM_OK) {
        curl_easy_setopt(t->curl, CURLOPT_PRIVATE, (void *)t);
        t->in_batch = 1;
        return 0;
    }
    end_transfer(t, code == CURLE_OK ? CURLE_OUT_OF_MEMORY : code);
    return -1;
}

/* The next transfer that ended, if any. */
static transport *ended_transfer(transport_batch *b)
{
    int queued = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(b->multi, &queued)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        transport *t = NULL;
        CURLcode code = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(b->multi, msg->easy_handle);
        end_transfer(t, code);
        return t;
    }
    return NULL;
}

transport *transport_batch_next(transport_batch *b, int wait_ms)
{
    transport *t = ended_transfer(b);
    if (t != NULL)
        return t;
    int active = 0;
    curl_multi_perform(b->multi, &active);
    t = ended_transfer(b);
    if (t != NULL || wait_ms <= 0)
        return t;
    curl_multi_poll(b->multi, NULL, 0, wait_ms, NULL);
    curl_multi_perform(b->multi, &active);
    return ended_transfer(b);
}

void transport_batch_remove(transport_batch *b, transport *t)
{
    if (t->in_batch && curl_multi_remove_handle(b->multi, t->curl) == CURLM_OK)
        end_transfer(t, CURLE_ABORTED_BY_CALLBACK);
}
