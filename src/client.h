/* client.h: the client type and its call pipeline: Lua arguments ->
 * validate -> body -> sign -> transport -> answer. The bulk engine
 * (bulk.c) and the bridge for transports written in Lua (bridge.c) use the
 * same steps. */
#ifndef ORBT_CLIENT_H
#define ORBT_CLIENT_H

#include <stddef.h>

#include <lua.h>

#include "answer.h"
#include "buffer.h"
#include "operations.h"
#include "retry.h"
#include "sign.h"
#include "transport.h"
#include "url.h"
#include "validate.h"

#define CLIENT_METATABLE "orbt.client"

typedef struct orbt_client {
    char *api_key;
    char *client_id;
    url_parts base;            /* base_url's parts: origin, Host, path prefix */
    char *secret;              /* kept only to scrub it from server text; wiped on close */
    size_t secret_len;
    sign_key *key;
    transport *transport;
    double timeout, connect_timeout;
    transport_choice transport_choice;
    url_parts proxy;           /* the proxy's parts; proxy.host NULL: none */
    const char *cosocket_refusal_field; /* why cosockets cannot carry this client, or NULL */
    char cosocket_refusal[VALIDATION_MESSAGE_MAX];
    char **id_headers;         /* where answers carry a request id; freed by __gc only, as
                                  readers of calls in flight point at it */
    int send_request_id;       /* a fresh x-request-id with each attempt */
    int has_hooks;             /* orbt.new gave hooks: they are the userdata's uservalue */
    int pool_size, pool_backlog; /* nginx's keep-alive pool (cosockets); backlog -1: none */
    struct {                   /* the last call that ended, for last_response() */
        const char *operation; /* the row's name (static); NULL: none yet */
        long status;
        char request_id[HTTP1_REQUEST_ID_MAX + 1];
        int attempts;
        double seconds;
    } last;
    call_limits limits;        /* max_retries and deadline, unless a call gives its own */
    retry_random random;       /* the backoff's jitter */
    buffer path;               /* the call's path, as errors show it */
    buffer target;             /* prefix, path and query: the request line's target */
    buffer request_body;
    buffer wire;               /* the framed request */
    http_response response;    /* its body is bounded by max_body */
    int closed;
    int busy;                  /* decoding an answer: user code may run (finalizers) */
    int in_flight;             /* requests prepared for a Lua transport, not yet answered */
    int close_pending;         /* close() was called while busy or in flight */
} orbt_client;

/* What one call of an operation sends, once its arguments are read. */
typedef struct call_plan {
    const operation *op;
    call_limits limits;
    op_input input;                        /* points into the Lua stack */
    param_value params[OP_PARAMS_MAX];
    int debit;                             /* it takes money from a consumer's wallet */
    int options;                           /* the call's limits table (its own hooks), or 0 */
    operation raw_op;                      /* op for a raw request (client:request): the row
                                              with this call's method, path and retry class */
} call_plan;

/* The client at idx; raises on misuse (not a client). */
orbt_client *client_check(lua_State *L, int idx);

/* The operation named by the string at idx; raises on misuse (no such
 * operation), as the internal methods taking a name are for orbt's own
 * Lua layer. */
const operation *client_check_operation(lua_State *L, int idx);

/* orbt.new{...} -> client, or nil, err. */
int client_new(lua_State *L);

/* Creates the client metatable with __gc, __tostring and, in the table
 * at the top of the stack, the lifecycle methods (close). */
void client_register(lua_State *L);

/* Pushes nil and an `invalid` error for the call; returns 2. */
int client_invalid(lua_State *L, const validation_error *v, const char *method, const char *path);

/* Pushes nil and an error and returns 2 when the client is closed or busy
 * (a call from inside one of its own calls); else returns 0. */
int client_refuse_if_unusable(lua_State *L, const orbt_client *c, const char *method, const char *path);

/* Reads a call of op whose arguments start at stack index `first`: the
 * path parameters, the arguments table, the call options. Returns 0, or
 * pushes `nil, err` and returns 2. Reading can run Lua code (__index):
 * check the client's usability after it. */
int client_read_call(lua_State *L, orbt_client *c, const operation *op, int first, call_plan *p);

/* Writes the call's path, target and body. Returns 0, or -1 out of memory. */
int client_write_call(const orbt_client *c, const call_plan *p, buffer *path, buffer *target, buffer *body);

/* Signs afresh (a new timestamp) and frames the request into wire, with
 * an x-request-id (not signed) when request_id is not NULL. Returns 0, or
 * -1 when OpenSSL or memory fails. */
int client_frame(orbt_client *c, const char *method, const char *target, const buffer *body,
                 const char *user_agent, const char *request_id, buffer *wire);

/* A fresh id into out for the attempt about to be framed, when the client
 * sends one (send_request_id); returns out, or NULL when it sends none. */
const char *client_request_id(const orbt_client *c, char out[SIGN_UUID_LEN + 1]);

/* The answer reports the id orbt sent when it carries none of its own. */
void client_note_request_id(http_response *rs, const char *sent);

/* Remembers a finished call for client:last_response(). */
void client_note_last(orbt_client *c, const operation *op, const http_response *rs, int attempts,
                      double seconds);

/* One attempt's request for the libcurl transport: framed afresh, with the
 * client's timeouts cut to what the deadline leaves (`left` seconds);
 * *cut says whether it did. Returns -1 when signing fails. */
int client_prepare_attempt(orbt_client *c, const operation *op, const char *target, const buffer *body,
                           const char *request_id, buffer *wire, double left, http_request *rq, int *cut);

/* A timeout the deadline caused says so. */
void client_note_deadline(http_response *rs, int cut, double deadline, int attempts);

/* Runs fn(job) under lua_pcall with the client marked busy, then releases
 * the call's buffers, and the client when a close() waited. Returns fn's
 * results, or raises its error again. */
int client_run_busy(lua_State *L, orbt_client *c, lua_CFunction fn, void *job);

/* Whether a keyed call's 500 answer is a JSON error with a code, which is
 * lasting (retry.h); 0 for every other answer. Decodes with the client
 * marked busy, and leaves the stack as it was. */
int client_error_coded(lua_State *L, orbt_client *c, const call_info *call, const http_response *rs);

/* Decodes the answer into the call's results, with the client busy. */
int client_finish_call(lua_State *L, orbt_client *c, const call_info *call, const http_response *rs);

/* Releases the client if a close() waited for it to be idle. */
void client_release_if_pending(orbt_client *c);

/* A method of the client for an operation: upvalue 1 is its row. */
int client_call(lua_State *L);

#endif
