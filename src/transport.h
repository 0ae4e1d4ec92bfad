/* transport.h: moving a framed request to the server and its answer back,
 * on connections libcurl opens (DNS, connect, proxies, TLS with
 * verification) and orbt keeps alive. The answer is read by http1.c. One
 * exchange at a time (transport_perform), or many at once on the same
 * connections (transport_start and transport_next). Nothing here knows
 * about Lua, signing or JSON. */
#ifndef ORBT_TRANSPORT_H
#define ORBT_TRANSPORT_H

#include <stddef.h>

#include "buffer.h"
#include "http1.h"

typedef enum transport_result {
    TRANSPORT_OK = 0,
    TRANSPORT_NETWORK,      /* DNS, connect, proxy, TLS handshake, reset, broken framing */
    TRANSPORT_TIMEOUT,
    TRANSPORT_TOO_LARGE,    /* the answer body passed max_body */
    TRANSPORT_CERTIFICATE,  /* the server's or the proxy's certificate was refused: lasting */
    TRANSPORT_HEAD_TOO_LARGE /* the answer's header passed the header limits: malformed, not retried */
} transport_result;

typedef struct transport_config {
    const char *origin;         /* "scheme://host:port" */
    const char *ca_file;        /* CAs to trust instead of the system's, or NULL */
    const char *proxy;          /* the proxy's URL, or NULL for none (the caller chose) */
    const char *proxy_ca_file;  /* CAs to trust for an https:// proxy, or NULL */
    const char *const *id_headers; /* where answers carry a request id (http1.h); kept, not copied */
} transport_config;

typedef struct http_request {
    const char *wire;           /* the request as framed by http1_frame_request */
    size_t wire_len;
    int may_resend;             /* it may go again on a new connection when a kept-alive
                                   one turns out dead before any answer (not a create) */
    double timeout;             /* seconds, the whole exchange */
    double connect_timeout;     /* seconds */
} http_request;

#define TRANSPORT_MESSAGE_MAX 256

typedef struct http_response {
    transport_result result;
    int request_sent;             /* 0: not one byte of it left orbt (DNS, connect, proxy
                                     or TLS failure, a timeout before sending) */
    long status;
    buffer body;                  /* bounded by the buffer's limit (max_body) */
    int resent;                   /* bytes of it went on a kept-alive connection that died
                                     before any answer, and it was sent again on a new one:
                                     the first may have reached the server */
    char retry_after[64];         /* the Retry-After header's value, or "" */
    char request_id[HTTP1_REQUEST_ID_MAX + 1]; /* the answer's request id (http1.h), or "" */
    char message[TRANSPORT_MESSAGE_MAX]; /* why it failed, when result != OK */
} http_response;

typedef struct transport transport;
typedef struct transport_exchange transport_exchange;

transport *transport_new(const transport_config *config);
void transport_free(transport *t);

/* Sends rq and reads its answer into rs (whose body is reset first).
 * Returns rs->result. */
transport_result transport_perform(transport *t, const http_request *rq, http_response *rs);

/* Many at once: an exchange object per request in flight, each on its own
 * connection. rq's bytes and rs must live until the exchange comes back
 * from transport_next. */
transport_exchange *transport_exchange_new(transport *t);
void transport_exchange_free(transport_exchange *x);   /* stops it if it runs */
void transport_start(transport_exchange *x, const http_request *rq, http_response *rs);
/* Moves every started exchange on, waiting up to wait_ms for one to end;
 * returns one that ended (its response filled in), or NULL. */
transport_exchange *transport_next(transport *t, int wait_ms);

/* Closes kept-alive connections beyond the `keep` most recently used. */
void transport_trim(transport *t, int keep);

/* Process-wide libcurl set-up. */
int transport_global_init(void);

#endif
