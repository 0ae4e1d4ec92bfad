/* hooks.h: the instrumentation hooks. on_request(info) runs before every
 * attempt of a call, on_response(info) after it, on every transport
 * (libcurl one call at a time, the bulk engine, the nginx transport through
 * the bridge). A client's hooks come from orbt.new; a call's own, given in
 * its limits table (or a bulk call's options), replace them for that call.
 *
 * `info` holds what the call is and how the attempt went, and nothing that
 * was sent or received: no header value, no body, no credential. A hook
 * that raises does not break the call: the error goes to on_hook_error
 * (default: stderr, or ngx.log in nginx), once, and the call goes on. Hooks
 * run from C, so a hook cannot yield (ngx.sleep or a cosocket in nginx):
 * that is reported as its error. */
#ifndef ORBT_HOOKS_H
#define ORBT_HOOKS_H

#include <lua.h>

#include "answer.h"
#include "client.h"
#include "retry.h"

/* One attempt as the hooks see it. */
typedef struct hook_attempt {
    int client;               /* the client's stack index */
    int options;              /* a table with the call's own hooks, or 0 */
    const operation *op;
    const char *path;         /* as sent */
    int attempt;              /* 1, 2, ... */
    const char *request_id;   /* the id orbt sends with it (send_request_id), or NULL */
} hook_attempt;

/* What the attempt came to, for on_response. */
typedef struct hook_outcome {
    const http_response *response;
    double seconds;           /* the attempt's duration */
    size_t bytes;             /* of the answer's body */
    const retry_verdict *verdict;
    int error;                /* the final attempt: the stack index of its error, or 0 when it
                                 succeeded; -1 for an attempt a retry follows */
} hook_outcome;

/* Keeps the hooks of orbt.new's options (at idx) with the client at
 * client_idx; sets c->has_hooks. */
void hooks_keep(lua_State *L, orbt_client *c, int client_idx, int idx);

/* Whether an on_request or an on_response would run for this call. */
int hooks_wanted(lua_State *L, const orbt_client *c, int options);

void hooks_before(lua_State *L, orbt_client *c, const hook_attempt *a);
void hooks_after(lua_State *L, orbt_client *c, const hook_attempt *a, const hook_outcome *o);

/* Copies a call's own hooks from the table at from into the table at to
 * (the nginx transport's call table). */
void hooks_copy(lua_State *L, int from, int to);

#endif
