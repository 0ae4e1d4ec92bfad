/* transport.c: requests and answers on connections libcurl opens.
 *
 * Who does what. libcurl opens every connection: DNS, connect, the proxy
 * (HTTP CONNECT with auth, HTTPS, SOCKS) and TLS with verification, on
 * connect-only handles in one multi handle per transport, so that many
 * connections can be opened at once. orbt then writes each framed request
 * with curl_easy_send, waits with one poll for every connection in use,
 * and reads answers with curl_easy_recv into http1.c's reader. A single
 * call is the same machinery with one exchange.
 *
 * The rules. A kept-alive connection is checked before it is used again
 * (the server must not have closed it or sent anything unasked). When one
 * dies all the same before any answer (the server closed it just then), a
 * request that may go twice is sent once more on a new connection, and a
 * create never is. A connection that carried more bytes than its answer,
 * Connection: close or HTTP/1.0 is not used again. Nothing of a request
 * has left orbt when the connection failed to open, so such a failure says
 * "not sent", whatever the reason: DNS, connect, proxy, TLS. */
#include "transport.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>

#include "http1.h"

/* How much of an answer one read takes. */
#define READ_CHUNK 16384

/* Kept-alive connections a transport holds at most when idle. */
#define IDLE_MAX 64

/* Why a create that lost its connection is not sent again. */
#define RESEND_REFUSED_MESSAGE "the connection closed after the request was sent; it was not sent " \
                               "again because it may have been applied"

typedef struct connection {
    CURL *curl;                 /* connect-only, inside the transport's multi while it lives */
    curl_socket_t socket;
    struct connection *next;    /* in the idle list */
    char error[CURL_ERROR_SIZE];
} connection;

typedef enum exchange_state {
    X_IDLE,         /* not started, or handed back */
    X_CONNECTING,   /* libcurl is opening its connection */
    X_SENDING,
    X_READING,
    X_ENDED         /* waiting to be handed back by transport_next */
} exchange_state;

struct transport_exchange {
    transport *t;
    connection *conn;
    const http_request *rq;
    http_response *rs;
    http1_reader reader;
    exchange_state state;
    size_t sent;                /* bytes of the request sent on this connection */
    int reused;                 /* the connection carried an earlier request */
    int resent;                 /* already sent once more on a new connection */
    int sent_before;            /* an earlier connection took bytes of it */
    double deadline;
    struct transport_exchange *next;  /* in the running or the ended list */
};

struct transport {
    CURLM *multi;
    CURLSH *share;              /* TLS sessions and DNS answers, across connections */
    char *origin, *ca_file, *proxy, *proxy_ca_file;
    const char *const *id_headers;
    connection *idle;           /* most recently used first */
    int idle_count;
    int connecting;             /* exchanges waiting for libcurl */
    transport_exchange *running;
    transport_exchange *ended;
    transport_exchange *single; /* transport_perform's */
    struct pollfd *fds;         /* one wait's sockets, and whose they are */
    transport_exchange **owners;
    size_t fds_cap;
};

/* ===== Set-up ===== */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_status = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_status = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Once per process, never undone: curl_global_init is not thread-safe in
 * every libcurl, and a host may open many Lua states on many threads. */
int transport_global_init(void)
{
    pthread_once(&global_once, global_init);
    return global_status == CURLE_OK ? 0 : -1;
}

static char *copy_or_null(const char *s, int *failed)
{
    char *copy = s != NULL ? strdup(s) : NULL;
    if (s != NULL && copy == NULL)
        *failed = 1;
    return copy;
}

transport *transport_new(const transport_config *config)
{
    transport *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    int failed = 0;
    t->origin = copy_or_null(config->origin, &failed);
    t->ca_file = copy_or_null(config->ca_file, &failed);
    t->proxy = copy_or_null(config->proxy, &failed);
    t->proxy_ca_file = copy_or_null(config->proxy_ca_file, &failed);
    t->id_headers = config->id_headers;
    t->multi = curl_multi_init();
    t->share = curl_share_init();
    if (failed || t->origin == NULL || t->multi == NULL || t->share == NULL
        || curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK
        || curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
        transport_free(t);
        return NULL;
    }
    return t;
}

static void close_connection(transport *t, connection *conn)
{
    if (conn == NULL)
        return;
    if (conn->curl != NULL) {
        curl_multi_remove_handle(t->multi, conn->curl);
        curl_easy_cleanup(conn->curl);
    }
    free(conn);
}

static void forget_exchange(transport *t, transport_exchange *x);

void transport_free(transport *t)
{
    if (t == NULL)
        return;
    transport_exchange_free(t->single);
    while (t->running != NULL)
        forget_exchange(t, t->running);
    while (t->ended != NULL)
        forget_exchange(t, t->ended);
    transport_trim(t, 0);
    if (t->multi != NULL)
        curl_multi_cleanup(t->multi);
    /* After every handle that used it. */
    if (t->share != NULL)
        curl_share_cleanup(t->share);
    free(t->origin);
    free(t->ca_file);
    if (t->proxy != NULL) {
        memset(t->proxy, 0, strlen(t->proxy)); /* it may hold credentials */
        free(t->proxy);
    }
    free(t->proxy_ca_file);
    free(t->fds);
    free(t->owners);
    free(t);
}

void transport_trim(transport *t, int keep)
{
    connection **link = &t->idle;
    for (int i = 0; *link != NULL && i < keep; i++)
        link = &(*link)->next;
    while (*link != NULL) {
        connection *conn = *link;
        *link = conn->next;
        close_connection(t, conn);
        t->idle_count--;
    }
}

/* ===== Time ===== */

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

/* Timeouts are at most a day (validate.c), so the result fits. */
static long milliseconds(double seconds)
{
    double ms = ceil(seconds * 1000.0);
    return ms < 1 ? 1 : (long)ms;
}

/* ===== Lists ===== */

static void unlink_from(transport_exchange **list, transport_exchange *x)
{
    for (transport_exchange **link = list; *link != NULL; link = &(*link)->next) {
        if (*link == x) {
            *link = x->next;
            x->next = NULL;
            return;
        }
    }
}

/* Takes x out of the transport's lists; its connection, if any, is closed:
 * an exchange stopped half way leaves the connection out of step. */
static void forget_exchange(transport *t, transport_exchange *x)
{
    if (x->state == X_CONNECTING)
        t->connecting--;
    unlink_from(&t->running, x);
    unlink_from(&t->ended, x);
    close_connection(t, x->conn);
    x->conn = NULL;
    x->state = X_IDLE;
}

/* ===== Ending an exchange ===== */

/* The connection goes back to the idle list when it can carry another
 * request; otherwise it is closed. */
static void put_back(transport *t, transport_exchange *x, int reusable)
{
    connection *conn = x->conn;
    x->conn = NULL;
    if (conn == NULL)
        return;
    if (!reusable || t->idle_count >= IDLE_MAX) {
        close_connection(t, conn);
        return;
    }
    conn->next = t->idle;
    t->idle = conn;
    t->idle_count++;
}

static void end_exchange(transport_exchange *x, transport_result result, int extra_bytes)
{
    transport *t = x->t;
    http_response *rs = x->rs;
    rs->result = result;
    rs->status = x->reader.status;
    memcpy(rs->retry_after, x->reader.retry_after, sizeof rs->retry_after);
    memcpy(rs->request_id, x->reader.request_id, sizeof rs->request_id);
    rs->request_sent = x->sent > 0 || x->sent_before;
    rs->resent = x->sent_before;
    put_back(t, x, result == TRANSPORT_OK && x->reader.keep_alive && !extra_bytes);
    if (x->state == X_CONNECTING)
        t->connecting--;
    unlink_from(&t->running, x);
    x->state = X_ENDED;
    x->next = t->ended;
    t->ended = x;
}

_Static_assert(sizeof(((http_response *)0)->retry_after) == sizeof(((http1_reader *)0)->retry_after),
               "Retry-After is copied whole from the reader to the response");

static void fail(transport_exchange *x, transport_result result, const char *message)
{
    snprintf(x->rs->message, sizeof x->rs->message, "%s", message);
    end_exchange(x, result, 0);
}

static void fail_timeout(transport_exchange *x, const char *doing)
{
    char message[TRANSPORT_MESSAGE_MAX];
    snprintf(message, sizeof message, "timed out after %.0f ms %s", x->rq->timeout * 1000.0, doing);
    fail(x, TRANSPORT_TIMEOUT, message);
}

/* ===== Connections ===== */

/* A kept-alive connection is usable when the server has neither closed it
 * nor sent anything unasked (an alert such as TLS close_notify counts).
 * This sees every byte the server sent because nothing reads ahead of
 * orbt: OpenSSL (the TLS of Debian's libcurl) reads one record at a time,
 * and the reads below go on until it has none left. */
static int open_and_idle(const connection *conn)
{
    char byte;
    ssize_t n = recv(conn->socket, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static connection *take_idle(transport *t)
{
    while (t->idle != NULL) {
        connection *conn = t->idle;
        t->idle = conn->next;
        t->idle_count--;
        conn->next = NULL;
        if (open_and_idle(conn))
            return conn;
        close_connection(t, conn);
    }
    return NULL;
}

/* Options of a connect-only handle: libcurl connects, tunnels through the
 * proxy, does the TLS handshake with verification on, and stops. */
static int configure(transport *t, connection *conn, const transport_exchange *x)
{
    CURL *c = conn->curl;
    long left = remaining_ms(x->deadline);
    int ok = 1;
    ok &= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, conn->error) == CURLE_OK;
    /* No signals: safe in threaded hosts, and timeouts do not use SIGALRM. */
    ok &= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_URL, t->origin) == CURLE_OK;
#if LIBCURL_VERSION_NUM >= 0x075500
    ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK;
#else
    ok &= curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS)) == CURLE_OK;
#endif
    ok &= curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L) == CURLE_OK;
    /* ALPN then offers HTTP/1.1 only, the one protocol framed here. */
    ok &= curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_SHARE, t->share) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_PRIVATE, (void *)x) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, milliseconds(x->rq->connect_timeout)) == CURLE_OK;
    ok &= curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, left < 1 ? 1L : left) == CURLE_OK;
    if (t->ca_file != NULL)
        ok &= curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file) == CURLE_OK;
    /* The proxy was chosen from the option or the environment by url.c;
     * libcurl is told exactly, so that it reads no environment of its own:
     * "" means no proxy, and an empty no-proxy list means none is skipped. */
    ok &= curl_easy_setopt(c, CURLOPT_PROXY, t->proxy != NULL ? t->proxy : "") == CURLE_OK;
    if (t->proxy != NULL) {
        ok &= curl_easy_setopt(c, CURLOPT_NOPROXY, "") == CURLE_OK;
        /* Through an HTTP proxy, a tunnel: the request goes to the origin as framed. */
        ok &= curl_easy_setopt(c, CURLOPT_HTTPPROXYTUNNEL, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(c, CURLOPT_PROXY_SSL_VERIFYPEER, 1L) == CURLE_OK;
        ok &= curl_easy_setopt(c, CURLOPT_PROXY_SSL_VERIFYHOST, 2L) == CURLE_OK;
        if (t->proxy_ca_file != NULL)
            ok &= curl_easy_setopt(c, CURLOPT_PROXY_CAINFO, t->proxy_ca_file) == CURLE_OK;
    }
    return ok ? 0 : -1;
}

static void start_sending(transport_exchange *x);

/* Starts opening a new connection for x. */
static void open_connection(transport_exchange *x)
{
    transport *t = x->t;
    connection *conn = calloc(1, sizeof *conn);
    if (conn != NULL) {
        conn->socket = CURL_SOCKET_BAD;
        conn->curl = curl_easy_init();
    }
    if (conn == NULL || conn->curl == NULL || configure(t, conn, x) != 0
        || curl_multi_add_handle(t->multi, conn->curl) != CURLM_OK) {
        if (conn != NULL && conn->curl != NULL)
            curl_easy_cleanup(conn->curl);
        free(conn);
        fail(x, TRANSPORT_NETWORK, "could not set up a connection (out of memory)");
        return;
    }
    x->conn = conn;
    x->reused = 0;
    x->state = X_CONNECTING;
    t->connecting++;
}

/* Certificate failures do not go away when tried again. */
static transport_result connect_failure(CURLcode code)
{
    switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
        return TRANSPORT_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        return TRANSPORT_CERTIFICATE;
    default:
        return TRANSPORT_NETWORK;
    }
}

/* libcurl finished opening x's connection, well or not. */
static void connected(transport_exchange *x, CURLcode code)
{
    connection *conn = x->conn;
    x->t->connecting--;
    x->state = X_SENDING;
    if (code == CURLE_OK && curl_easy_getinfo(conn->curl, CURLINFO_ACTIVESOCKET, &conn->socket) != CURLE_OK)
        conn->socket = CURL_SOCKET_BAD;
    if (code == CURLE_OK && conn->socket == CURL_SOCKET_BAD)
        code = CURLE_COULDNT_CONNECT;
    if (code != CURLE_OK) {
        fail(x, connect_failure(code), conn->error[0] != '\0' ? conn->error : curl_easy_strerror(code));
        return;
    }
    if (monotonic_now() >= x->deadline) {
        /* No time left for an answer: the request is not sent, and the
         * new connection waits for the next one. */
        put_back(x->t, x, 1);
        fail_timeout(x, "opening the connection");
        return;
    }
    start_sending(x);
}

/* ===== Sending and reading ===== */

static void end_read(transport_exchange *x, http1_outcome outcome, int extra_bytes);

/* A failure on the connection once it was open. A kept-alive connection
 * that died before any answer was most likely closed by the server while
 * idle: the request goes once more on a new connection when that cannot
 * make a duplicate. */
static void fail_on_connection(transport_exchange *x, transport_result result, const char *message)
{
    if (result == TRANSPORT_NETWORK && x->reused && !x->resent && x->reader.received == 0) {
        if (x->rq->may_resend || x->sent == 0) {
            x->sent_before = x->sent_before || x->sent > 0;
            close_connection(x->t, x->conn);
            x->conn = NULL;
            x->resent = 1;
            x->sent = 0;
            http1_begin(&x->reader, &x->rs->body);
            open_connection(x);
            return;
        }
        message = RESEND_REFUSED_MESSAGE;
    }
    fail(x, result, message);
}

static void curl_failure(transport_exchange *x, const char *what, CURLcode code)
{
    char message[TRANSPORT_MESSAGE_MAX];
    snprintf(message, sizeof message, "%s: %s", what, curl_easy_strerror(code));
    fail_on_connection(x, code == CURLE_OPERATION_TIMEDOUT ? TRANSPORT_TIMEOUT : TRANSPORT_NETWORK, message);
}

/* Sends what it can without waiting. */
static void try_send(transport_exchange *x)
{
    while (x->sent < x->rq->wire_len) {
        size_t n = 0;
        CURLcode code = curl_easy_send(x->conn->curl, x->rq->wire + x->sent, x->rq->wire_len - x->sent, &n);
        if (code == CURLE_AGAIN)
            return;
        if (code != CURLE_OK) {
            curl_failure(x, "could not send the request", code);
            return;
        }
        x->sent += n;
    }
    /* Right after the request, the answer cannot be there yet: the read
     * waits for the poll, which saves one that would find nothing. */
    x->state = X_READING;
}

static void start_sending(transport_exchange *x)
{
    x->state = X_SENDING;
    x->sent = 0;
    try_send(x);
}

/* Reads what has arrived, until the answer is complete or nothing is left. */
static void try_read(transport_exchange *x)
{
    char chunk[READ_CHUNK];
    for (;;) {
        size_t n = 0;
        CURLcode code = curl_easy_recv(x->conn->curl, chunk, sizeof chunk, &n);
        if (code == CURLE_AGAIN)
            return;
        if (code != CURLE_OK) {
            curl_failure(x, "the connection failed while reading the answer", code);
            return;
        }
        size_t used = 0;
        http1_outcome outcome = n == 0 ? http1_end(&x->reader) : http1_feed(&x->reader, chunk, n, &used);
        if (outcome != HTTP1_MORE) {
            end_read(x, outcome, used < n);
            return;
        }
    }
}

static void end_read(transport_exchange *x, http1_outcome outcome, int extra_bytes)
{
    switch (outcome) {
    case HTTP1_DONE:
        end_exchange(x, TRANSPORT_OK, extra_bytes);
        return;
    case HTTP1_TOO_LARGE: {
        char message[TRANSPORT_MESSAGE_MAX];
        snprintf(message, sizeof message, "the answer is larger than max_body (%zu bytes)",
                 x->rs->body.limit);
        fail(x, TRANSPORT_TOO_LARGE, message);
        return;
    }
    case HTTP1_HEAD_TOO_LARGE:
        fail(x, TRANSPORT_HEAD_TOO_LARGE, x->reader.error);
        return;
    default:
        fail_on_connection(x, TRANSPORT_NETWORK, x->reader.error);
        return;
    }
}

/* ===== Exchanges ===== */

transport_exchange *transport_exchange_new(transport *t)
{
    transport_exchange *x = calloc(1, sizeof *x);
    if (x == NULL)
        return NULL;
    x->t = t;
    http1_init(&x->reader);
    x->reader.id_headers = t->id_headers;
    return x;
}

void transport_exchange_free(transport_exchange *x)
{
    if (x == NULL)
        return;
    forget_exchange(x->t, x);
    http1_free(&x->reader);
    free(x);
}

static void reset_response(http_response *rs)
{
    rs->result = TRANSPORT_OK;
    rs->request_sent = 0;
    rs->resent = 0;
    rs->status = 0;
    rs->retry_after[0] = '\0';
    rs->request_id[0] = '\0';
    rs->message[0] = '\0';
    buffer_reset(&rs->body);
}

void transport_start(transport_exchange *x, const http_request *rq, http_response *rs)
{
    transport *t = x->t;
    forget_exchange(t, x);
    reset_response(rs);
    x->rq = rq;
    x->rs = rs;
    x->sent = 0;
    x->resent = 0;
    x->sent_before = 0;
    x->deadline = monotonic_now() + rq->timeout;
    http1_begin(&x->reader, &rs->body);
    x->next = t->running;
    t->running = x;
    x->conn = take_idle(t);
    if (x->conn == NULL) {
        open_connection(x);
        return;
    }
    x->reused = 1;
    start_sending(x);
}

/* ===== Waiting ===== */

/* Hands the connections libcurl finished opening to their exchanges. */
static void drive_connects(transport *t)
{
    int still_running = 0;
    curl_multi_perform(t->multi, &still_running);
    int queued = 0;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(t->multi, &queued)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        transport_exchange *x = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x != NULL && x->state == X_CONNECTING && x->conn != NULL && x->conn->curl == msg->easy_handle)
            connected(x, msg->data.result);
    }
}

/* Exchanges past their deadline end as timeouts. */
static void expire(transport *t, double now)
{
    transport_exchange *x = t->running;
    while (x != NULL) {
        transport_exchange *next = x->next;
        if (now >= x->deadline) {
            if (x->state == X_CONNECTING)
                fail_timeout(x, "opening the connection");
            else if (x->state == X_SENDING)
                fail_timeout(x, "sending the request");
            else if (x->reader.received == 0)
                fail_timeout(x, "waiting for the answer");
            else
                fail_timeout(x, "reading the answer");
        }
        x = next;
    }
}

static int grow_poll_set(transport *t, size_t n)
{
    if (n <= t->fds_cap)
        return 0;
    size_t cap = n < 8 ? 8 : n * 2;
    struct pollfd *fds = realloc(t->fds, cap * sizeof *fds);
    if (fds != NULL)
        t->fds = fds;
    transport_exchange **owners = realloc(t->owners, cap * sizeof(transport_exchange *));
    if (owners != NULL)
        t->owners = owners;
    if (fds == NULL || owners == NULL)
        return -1;
    t->fds_cap = cap;
    return 0;
}

/* The sockets to wait for: sending ones until writable, reading ones until
 * readable. Returns how many, or -1 when memory runs out. */
static int poll_set(transport *t)
{
    size_t n = 0;
    for (transport_exchange *x = t->running; x != NULL; x = x->next)
        n++;
    if (grow_poll_set(t, n) != 0)
        return -1;
    n = 0;
    for (transport_exchange *x = t->running; x != NULL; x = x->next) {
        if (x->state != X_SENDING && x->state != X_READING)
            continue;
        t->fds[n] = (struct pollfd){x->conn->socket, x->state == X_SENDING ? POLLOUT : POLLIN, 0};
        t->owners[n] = x;
        n++;
    }
    return (int)n;
}

/* Waits up to timeout_ms for a socket to be ready or a connection to make
 * progress, then moves the ready exchanges on. */
static void wait_and_move(transport *t, int timeout_ms)
{
    int n = poll_set(t);
    if (n < 0) {
        while (t->running != NULL)
            fail(t->running, TRANSPORT_NETWORK, "out of memory waiting for answers");
        return;
    }
    if (t->connecting > 0) {
        /* libcurl's own sockets and ours in one wait. */
        struct curl_waitfd extra[64];
        int count = n < 64 ? n : 64;
        for (int i = 0; i < count; i++)
            extra[i] = (struct curl_waitfd){t->fds[i].fd, (short)t->fds[i].events, 0};
        if (count < n)
            timeout_ms = 0; /* more than fit: do not sleep on the rest */
        curl_multi_poll(t->multi, extra, (unsigned int)count, timeout_ms, NULL);
        for (int i = 0; i < count; i++)
            t->fds[i].revents = extra[i].revents;
        for (int i = count; i < n; i++)
            t->fds[i].revents = t->fds[i].events;
    } else if (n > 0) {
        if (poll(t->fds, (nfds_t)n, timeout_ms) < 0 && errno != EINTR) {
            for (int i = 0; i < n; i++)
                fail(t->owners[i], TRANSPORT_NETWORK, "could not wait for the connection");
            return;
        }
    } else {
        return;
    }
    for (int i = 0; i < n; i++) {
        transport_exchange *x = t->owners[i];
        if (t->fds[i].revents == 0)
            continue;
        if (x->state == X_SENDING)
            try_send(x);
        else if (x->state == X_READING)
            try_read(x);
    }
}

static transport_exchange *take_ended(transport *t)
{
    transport_exchange *x = t->ended;
    if (x != NULL) {
        t->ended = x->next;
        x->next = NULL;
        x->state = X_IDLE;
    }
    return x;
}

/* The soonest deadline of the running exchanges, at most `until`. */
static double next_deadline(const transport *t, double until)
{
    for (const transport_exchange *x = t->running; x != NULL; x = x->next)
        if (x->deadline < until)
            until = x->deadline;
    return until;
}

transport_exchange *transport_next(transport *t, int wait_ms)
{
    double until = monotonic_now() + wait_ms / 1000.0;
    for (;;) {
        if (t->connecting > 0)
            drive_connects(t);
        expire(t, monotonic_now());
        if (t->ended != NULL)
            return take_ended(t);
        if (t->running == NULL)
            return NULL;
        long left = remaining_ms(next_deadline(t, until));
        /* A due deadline expires on the next pass. */
        int pass_ms = left > INT_MAX ? INT_MAX : (int)left;
        if (pass_ms <= 0 && monotonic_now() >= until)
            return NULL;
        wait_and_move(t, pass_ms);
    }
}

transport_result transport_perform(transport *t, const http_request *rq, http_response *rs)
{
    if (t->single == NULL && (t->single = transport_exchange_new(t)) == NULL) {
        reset_response(rs);
        rs->result = TRANSPORT_NETWORK;
        snprintf(rs->message, sizeof rs->message, "out of memory");
        return rs->result;
    }
    transport_exchange *x = t->single;
    transport_start(x, rq, rs);
    /* Nothing else runs on this transport meanwhile: the next exchange to
     * end is this one. */
    while (transport_next(t, (int)milliseconds(rq->timeout) + 1000) != x) {
    }
    return rs->result;
}
