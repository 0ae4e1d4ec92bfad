/* transport.h: the HTTP step. A transport keeps one connection, opened by
 * libcurl (DNS, connect, proxy tunnel, TLS with verification), and sends a
 * fully prepared request on it and collects the answer. Nothing here knows
 * about Lua, signing or JSON, so another transport can replace
 * transport_perform. */
#ifndef ORBT_TRANSPORT_H
#define ORBT_TRANSPORT_H

#include <stddef.h>

#include "buffer.h"

typedef enum transport_result {
    TRANSPORT_OK = 0,
    TRANSPORT_NETWORK,    /* DNS, connect, TLS, reset, partial answer */
    TRANSPORT_TIMEOUT,
    TRANSPORT_TOO_LARGE   /* the answer body passed max_body */
} transport_result;

typedef struct http_request {
    const char *method;           /* "GET" or "POST" */
    const char *url;
    const char *const *headers;   /* "Name: value" lines */
    size_t header_count;
    const char *body;             /* NULL for none */
    size_t body_len;
    double timeout;               /* seconds, whole exchange */
    double connect_timeout;       /* seconds */
} http_request;

#define TRANSPORT_MESSAGE_MAX 256

typedef struct http_response {
    transport_result result;
    int request_sent;             /* 0: it certainly never reached the server (DNS or
                                     connect failure, timeout before connecting) */
    long status;
    buffer body;                  /* bounded by the buffer's limit (max_body) */
    char retry_after[64];         /* the Retry-After header's value, or "" */
    char message[TRANSPORT_MESSAGE_MAX]; /* why it failed, when result != OK */
} http_response;

typedef struct transport transport;

/* ca_file: a PEM file of CAs to trust instead of the system's, or NULL. */
transport *transport_new(const char *ca_file);
void transport_free(transport *t);

/* Sends rq and fills rs (its body buffer is reset first). Returns rs->result. */
transport_result transport_perform(transport *t, const http_request *rq, http_response *rs);

/* A batch runs several transfers at once (libcurl's multi interface), each
 * on its own transport, sharing kept-alive connections. */
typedef struct transport_batch transport_batch;

transport_batch *transport_batch_new(int max_connections);
void transport_batch_free(transport_batch *b);
/* Starts rq on t; rq's strings and rs must live until t comes back from
 * transport_batch_next. Returns -1 (with rs filled) when it cannot start. */
int transport_batch_add(transport_batch *b, transport *t, const http_request *rq, http_response *rs);
/* Moves the transfers on, waiting up to wait_ms for one to end. Returns a
 * transport whose transfer ended (its response filled in), or NULL. */
transport *transport_batch_next(transport_batch *b, int wait_ms);
/* Stops t's transfer if it is still in the batch (before freeing either). */
void transport_batch_remove(transport_batch *b, transport *t);

/* Process-wide libcurl set-up, reference counted by libcurl itself. */
int transport_global_init(void);
void transport_global_cleanup(void);

#endif
