/* transport.c: the HTTP step on libcurl's easy interface. */
#include "transport.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define USER_AGENT "orbt-lua/0.1.0"

/* Answers with more header lines or bytes than this are refused: orbt
 * reads one header, and a hostile or broken server must not make it hold
 * an unbounded list. */
#define HEADER_LINES_MAX 200
#define HEADER_BYTES_MAX ((size_t)64 * 1024)

/* What the header callback sees of one answer. */
typedef struct header_reader {
    http_response *response;
    size_t lines, bytes;
    int too_many;
} header_reader;

struct transport {
    CURL *curl;
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

/* Options that never change for the handle's life. */
static int configure_handle(transport *t)
{
    CURL *c = t->curl;
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
    ok &= curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, before_send) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_PREREQDATA, t) == CURLE_OK;
    return ok ? 0 : -1;
}

transport *transport_new(const char *ca_file)
{
    transport *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->curl = curl_easy_init();
    if (t->curl == NULL || configure_handle(t) != 0
        || (ca_file != NULL && curl_easy_setopt(t->curl, CURLOPT_CAINFO, ca_file) != CURLE_OK)) {
        transport_free(t);
        return NULL;
    }
    return t;
}

void transport_free(transport *t)
{
    if (t == NULL)
        return;
    if (t->curl != NULL)
        curl_easy_cleanup(t->curl);
    curl_slist_free_all(t->header_cache);
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

/* Sets up one transfer: the caller performs it (easy or multi). */
static CURLcode begin_transfer(transport *t, const http_request *rq, http_response *rs)
{
    buffer_reset(&rs->body);
    rs->status = 0;
    rs->message[0] = '\0';
    rs->retry_after[0] = '\0';
    t->error[0] = '\0';
    t->response = rs;
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
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &rs->status);

    rs->result = classify(code, &rs->body);
    rs->request_sent = request_was_sent(t->curl, code);
    if (rs->result == TRANSPORT_TOO_LARGE)
        snprintf(rs->message, sizeof rs->message, "the answer is larger than max_body (%zu bytes)", rs->body.limit);
    else if (t->headers.too_many)
        snprintf(rs->message, sizeof rs->message, "the answer has more than %d header lines or %zu bytes of headers",
                 HEADER_LINES_MAX, HEADER_BYTES_MAX);
    else if (code == CURLE_ABORTED_BY_CALLBACK && t->sends > 1)
        snprintf(rs->message, sizeof rs->message, "the connection closed after the request was sent; "
                 "it was not sent again because the server may have processed it");
    else if (rs->result != TRANSPORT_OK)
        snprintf(rs->message, sizeof rs->message, "%s", t->error[0] ? t->error : curl_easy_strerror(code));
}

transport_result transport_perform(transport *t, const http_request *rq, http_response *rs)
{
    CURLcode code = begin_transfer(t, rq, rs);
    if (code == CURLE_OK)
        code = curl_easy_perform(t->curl);
    end_transfer(t, code);
    return rs->result;
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
