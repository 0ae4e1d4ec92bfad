/* HTTP front end: the libmicrohttpd daemon, request lifecycle, faults and answers. */
#include "server.h"

#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "api.h"
#include "auth.h"
#include "control.h"
#include "fault.h"
#include "generation.h"
#include "request.h"
#include "stats.h"
#include "util.h"

#define CONNECTION_TIMEOUT_S 300u
#define READ_BLOCK 65536

/* Everything one request needs, from the URI log callback to NOTIFY_COMPLETED. */
struct exchange {
    char *uri;            /* request target as sent; the raw query comes from here */
    char *method, *path, *query;
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    EVP_MD_CTX *md;       /* SHA-256 over every body byte, even past BODY_MAX */
    bool started, counted, is_control, has_fault;
    unsigned long gen;    /* reset generation the request began in */
    unsigned long ticket; /* from stats_begin, for stats_end */
    struct fault fault;
};

/* Body of a generated (oversize) or deliberately truncated answer. */
struct body_source {
    char *buf;            /* NULL for generated padding */
    size_t total;         /* full length (announced unless chunked) */
    size_t stop;          /* bytes actually sent before failing on purpose */
};

static const struct mock_config *cfg;
static struct MHD_Daemon *daemon_handle;

/* ---- exchange lifecycle ---- */

static struct exchange *exchange_new(const char *uri)
{
    struct exchange *ex = xcalloc(1, sizeof *ex);
    ex->uri = xstrdup(uri ? uri : "");
    return ex;
}

static void exchange_free(struct exchange *ex)
{
    free(ex->uri);
    free(ex->method);
    free(ex->path);
    free(ex->query);
    free(ex->body);
    EVP_MD_CTX_free(ex->md);
    if (ex->has_fault)
        fault_free(&ex->fault);
    free(ex);
}

/* Headers are complete: count the request and claim its fault, if any,
 * both in one generation so a reset cannot split them. */
static void exchange_start(struct exchange *ex, struct MHD_Connection *conn, const char *url,
                           const char *method)
{
    ex->started = true;
    ex->method = xstrdup(method);
    ex->path = xstrdup(url);
    const char *q = strchr(ex->uri, '?');
    ex->query = xstrdup(q ? q + 1 : "");
    ex->is_control = control_path(url);
    ex->md = EVP_MD_CTX_new();
    if (ex->md == NULL || EVP_DigestInit_ex(ex->md, EVP_sha256(), NULL) != 1)
        oom();
    if (!ex->is_control) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        ex->gen = generation_enter();
        ex->ticket = stats_begin(method, url, ci ? ci->socket_context : NULL);
        ex->counted = true;
        ex->has_fault = fault_take(method, url, &ex->fault);
        generation_leave();
    }
}

static void exchange_feed(struct exchange *ex, const char *data, size_t n)
{
    EVP_DigestUpdate(ex->md, data, n);
    size_t room = BODY_MAX - ex->body_len;
    size_t keep = n < room ? n : room;
    if (keep < n)
        ex->too_large = true;
    if (keep == 0)
        return;
    if (ex->body_len + keep + 1 > ex->body_cap) {
        size_t cap = ex->body_cap ? ex->body_cap * 2 : 4096;
        while (cap < ex->body_len + keep + 1)
            cap *= 2;
        ex->body_cap = cap < BODY_MAX + 1 ? cap : BODY_MAX + 1;
        ex->body = xrealloc(ex->body, ex->body_cap);
    }
    memcpy(ex->body + ex->body_len, data, keep);
    ex->body_len += keep;
    ex->body[ex->body_len] = '\0';
}

static struct request exchange_view(const struct exchange *ex, struct MHD_Connection *conn)
{
    return (struct request){
        .conn = conn,
        .method = ex->method,
        .path = ex->path,
        .query = ex->query,
        .content_type = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                    MHD_HTTP_HEADER_CONTENT_TYPE),
        .body = ex->body ? ex->body : "",
        .body_len = ex->body_len,
        .body_too_large = ex->too_large,
    };
}

/* ---- answers ---- */

/* Redacted, with control characters masked to keep one line per request. */
static char *loggable(const char *s)
{
    char *out = redact_str(cfg->secret, s);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return out;
}

static void log_line(const struct exchange *ex, const char *outcome)
{
    if (cfg->quiet)
        return;
    char *method = loggable(ex->method), *path = loggable(ex->path);
    fprintf(stderr, "orbt-mock: %s %s %s\n", method, path, outcome);
    free(method);
    free(path);
}

static ssize_t read_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    const struct body_source *src = cls;
    if (pos >= src->stop)
        return src->stop < src->total ? MHD_CONTENT_READER_END_WITH_ERROR
                                       : MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = src->stop - (size_t)pos < max ? src->stop - (size_t)pos : max;
    if (src->buf) {
        memcpy(buf, src->buf + pos, n);
        return (ssize_t)n;
    }
    /* Padding document {"pad":"xxxx"} generated on the fly. */
    static const char head[] = "{\"pad\":\"", tail[] = "\"}";
    for (size_t i = 0; i < n; i++) {
        size_t at = (size_t)pos + i;
        if (at < sizeof head - 1)
            buf[i] = head[at];
        else if (at >= src->total - (sizeof tail - 1))
            buf[i] = tail[at - (src->total - (sizeof tail - 1))];
        else
            buf[i] = 'x';
    }
    return (ssize_t)n;
}

static void free_body_source(void *cls)
{
    struct body_source *src = cls;
    free(src->buf);
    free(src);
}

/* Takes ownership of r->body when the response is created. A chunked
 * answer announces no length (MHD_SIZE_UNKNOWN makes libmicrohttpd use
 * chunked transfer encoding), so only the client's own limit stops it. */
static struct MHD_Response *make_response(struct reply *r, bool truncate, bool chunked)
{
    if (r->pad_size == 0 && !truncate && !chunked) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
        if (resp)
            r->body = NULL;
        return resp;
    }
    struct body_source *src = xcalloc(1, sizeof *src);
    src->total = r->pad_size ? r->pad_size : r->len;
    src->stop = truncate ? src->total / 2 : src->total;
    if (r->pad_size == 0) {
        src->buf = r->body;
        r->body = NULL;
    }
    struct MHD_Response *resp = MHD_create_response_from_callback(
        chunked ? MHD_SIZE_UNKNOWN : src->total, READ_BLOCK, read_body, src, free_body_source);
    if (resp == NULL)
        free_body_source(src);
    return resp;
}

static void make_fresh_id(char out[40])
{
    unsigned char bytes[8];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        oom();
    int n = snprintf(out, 40, "mock-");
    for (size_t i = 0; i < sizeof bytes; i++)
        n += snprintf(out + n, (size_t)(40 - n), "%02x", bytes[i]);
}

/* The request's own X-Request-Id when it sent a sane one (visible ASCII,
 * at most 128 bytes), as gateways pass it on; else a fresh id for the
 * answer, "mock-" and 16 hex digits, so clients can be checked to report
 * it either way. */
#define REQUEST_ID_MAX 128

static void make_request_id(struct MHD_Connection *conn, char out[REQUEST_ID_MAX + 1])
{
    const char *sent = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    size_t n_sent = sent != NULL ? strlen(sent) : 0;
    bool sane = n_sent > 0 && n_sent <= REQUEST_ID_MAX;
    for (size_t i = 0; sane && i < n_sent; i++)
        sane = sent[i] > ' ' && sent[i] < 0x7f;
    if (sane) {
        memcpy(out, sent, n_sent + 1);
        return;
    }
    make_fresh_id(out);
}

/* f shapes how the answer is framed (truncated, chunked); NULL for none. */
static enum MHD_Result send_reply(const struct exchange *ex, struct MHD_Connection *conn,
                                  struct reply *r, const struct fault *f)
{
    bool truncate = f && f->truncate, chunked = f && f->chunked;
    struct MHD_Response *resp = make_response(r, truncate, chunked);
    enum MHD_Result ok = MHD_NO;
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r->content_type ? r->content_type : "application/json");
        if (r->retry_after)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
        if (r->allow)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
        char request_id[REQUEST_ID_MAX + 1];
        make_request_id(conn, request_id);
        MHD_add_response_header(resp, "X-Request-Id", request_id);
        for (long i = 0; f && i < f->extra_headers; i++) {
            char name[32];
            snprintf(name, sizeof name, "X-Filler-%ld", i);
            MHD_add_response_header(resp, name, "filler");
        }
        ok = MHD_queue_response(conn, r->status, resp);
        MHD_destroy_response(resp);
    }
    if (!ex->is_control) {
        char outcome[48];
        snprintf(outcome, sizeof outcome, "%u%s%s", r->status, chunked ? " (chunked)" : "",
                 truncate ? " (truncated)" : "");
        log_line(ex, outcome);
    }
    reply_free(r);
    return ok;
}

/* Returning MHD_NO makes libmicrohttpd close the connection unanswered. */
static enum MHD_Result drop(const struct exchange *ex, const char *outcome)
{
    log_line(ex, outcome);
    return MHD_NO;
}

static bool peer_is_loopback(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = info ? info->client_addr : NULL;
    if (sa && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

/* Authentication, then the endpoint itself. */
static void serve_api(const struct request *rq, const char *body_hash, struct reply *out)
{
    struct MHD_Connection *c = rq->conn;
    struct auth_headers h = {
        .api_key = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-api-key"),
        .client_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-client-id"),
        .timestamp = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-timestamp"),
        .body_hash = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-body-hash"),
        .signature = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "x-signature"),
    };
    const char *why = auth_verify(cfg, rq->method, &h, body_hash);
    if (why) {
        stats_auth_failure();
        reply_error(out, 403, "AUTHENTICATION_ERROR", why);
        return;
    }
    api_handle(rq, out);
}

/* Logs the request for /__mock/requests, unless a reset came since its
 * headers: then it belongs to no generation's log. */
static bool record(const struct exchange *ex, const struct request *rq)
{
    if (!generation_resume(ex->gen))
        return false;
    stats_record(rq);
    generation_leave();
    return true;
}

/* The real processing, unless a reset came since the headers (during a
 * delay, say): a request of the old generation must not create a consumer
 * or count an auth failure in the new one. Holding the generation across
 * the check and the processing keeps a reset from landing in between. */
static bool process(const struct exchange *ex, const struct request *rq, bool serve,
                    struct reply *r)
{
    if (!generation_resume(ex->gen))
        return false;
    if (serve) {
        char body_hash[AUTH_B64_SIZE];
        auth_digest_b64(ex->md, body_hash);
        serve_api(rq, body_hash, r);
    }
    generation_leave();
    return true;
}

/* The whole body is in: apply the fault plan around the real processing. */
static enum MHD_Result finish_api(struct exchange *ex, const struct request *rq)
{
    if (!record(ex, rq))
        return drop(ex, "dropped (reset)");
    const struct fault *f = ex->has_fault ? &ex->fault : NULL;
    if (f && f->delay_ms > 0 && !generation_sleep(ex->gen, f->delay_ms))
        return drop(ex, "dropped (stop or reset)");
    if (f && f->drop == DROP_BEFORE)
        return drop(ex, "dropped");
    bool injected = f && fault_injects_answer(f);
    struct reply r = {0};
    if (!process(ex, rq, !injected || f->apply, &r))
        return drop(ex, "dropped (reset)");
    if (f && f->drop == DROP_AFTER) {
        reply_free(&r);
        return drop(ex, "dropped");
    }
    if (injected) {
        reply_free(&r);
        fault_reply(f, &r);
    }
    return send_reply(ex, rq->conn, &r, f);
}

static enum MHD_Result finish_control(struct exchange *ex, const struct request *rq)
{
    struct reply r = {0};
    if (peer_is_loopback(rq->conn))
        control_handle(rq, &r);
    else
        reply_error(&r, 404, "NOT_FOUND", "no such endpoint");
    return send_reply(ex, rq->conn, &r, NULL);
}

/* ---- libmicrohttpd callbacks ---- */

/* Called once per request with the target as sent, before any decoding:
 * the only place libmicrohttpd exposes the raw query string. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    return exchange_new(uri);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
    (void)cls;
    (void)version;
    struct exchange *ex = *con_cls;
    if (ex == NULL)   /* defensive: the URI callback always runs first */
        *con_cls = ex = exchange_new(url);
    if (!ex->started) {
        exchange_start(ex, conn, url, method);
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        exchange_feed(ex, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    struct request rq = exchange_view(ex, conn);
    return ex->is_control ? finish_control(ex, &rq) : finish_api(ex, &rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct exchange *ex = *con_cls;
    if (ex == NULL)
        return;
    if (ex->counted)
        stats_end(ex->ticket);
    exchange_free(ex);
    *con_cls = NULL;
}

/* Gives each connection a counter for stats_begin, so the stats can tell
 * how many connections the API requests needed (keep-alive checks). */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    (void)cls;
    (void)conn;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = xcalloc(1, sizeof(unsigned long));
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

/* ---- daemon ---- */

static void format_url(const char *scheme, const struct sockaddr *sa, socklen_t len,
                       unsigned port, char *url, size_t size)
{
    char host[NI_MAXHOST] = "?";
    getnameinfo(sa, len, host, sizeof host, NULL, 0, NI_NUMERICHOST);
    if (sa->sa_family == AF_INET6)
        snprintf(url, size, "%s://[%s]:%u", scheme, host, port);
    else
        snprintf(url, size, "%s://%s:%u", scheme, host, port);
}

int server_start(const struct mock_config *c, char *url, size_t url_size)
{
    cfg = c;
    bool tls = c->tls_cert != NULL;
    if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        fputs("orbt-mock: this libmicrohttpd was built without TLS, so it cannot serve HTTPS\n",
              stderr);
        return -1;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", c->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    if (getaddrinfo(c->host, port, &hints, &ai) != 0 || ai == NULL) {
        fprintf(stderr, "orbt-mock: cannot resolve host %s\n", c->host);
        return -1;
    }
    generation_init();
    /* One thread per connection: a delayed answer blocks only its own
     * client, and many clients are served at once. */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0) |
                     (tls ? MHD_USE_TLS : 0);
    /* The certificate and key in PEM text, only for HTTPS. */
    struct MHD_OptionItem tls_options[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, c->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, c->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    struct MHD_OptionItem no_options[] = {{MHD_OPTION_END, 0, NULL}};
    daemon_handle = MHD_start_daemon(
        flags, (uint16_t)c->port, NULL, NULL, on_access, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
        /* Room for the headers fault's thousands of header lines. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(1024 * 1024),
        MHD_OPTION_ARRAY, tls ? tls_options : no_options,
        MHD_OPTION_END);
    if (daemon_handle == NULL) {
        fprintf(stderr, "orbt-mock: cannot listen on %s port %u%s\n", c->host, c->port,
                tls ? " with TLS" : "");
        freeaddrinfo(ai);
        generation_shutdown();
        return -1;
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(daemon_handle, MHD_DAEMON_INFO_BIND_PORT);
    format_url(tls ? "https" : "http", ai->ai_addr, ai->ai_addrlen,
               info ? info->port : c->port, url, url_size);
    freeaddrinfo(ai);
    return 0;
}

void server_stop(void)
{
    generation_stop();
    MHD_stop_daemon(daemon_handle);
    daemon_handle = NULL;
    generation_shutdown();
}
