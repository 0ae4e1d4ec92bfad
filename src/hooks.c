/* hooks.c: the instrumentation hooks described in hooks.h. */
#include "hooks.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "compat.h"

static const char *const HOOK_NAMES[] = {"on_request", "on_response", "on_hook_error", NULL};

/* ===== Keeping them ===== */

void hooks_keep(lua_State *L, orbt_client *c, int client_idx, int idx)
{
    client_idx = lua_absindex(L, client_idx);
    idx = lua_absindex(L, idx);
    int any = 0;
    for (const char *const *name = HOOK_NAMES; *name != NULL; name++) {
        lua_getfield(L, idx, *name);
        any |= lua_isfunction(L, -1);
        lua_pop(L, 1);
    }
    if (!any)
        return; /* nothing allocated for a client without hooks */
    lua_createtable(L, 0, 3);
    for (const char *const *name = HOOK_NAMES; *name != NULL; name++) {
        lua_getfield(L, idx, *name);
        lua_setfield(L, -2, *name);
    }
    orbt_set_uservalue(L, client_idx);
    c->has_hooks = 1;
}

/* Pushes the hook `name` of the call (its own, else its client's) and
 * returns 1, or pushes nothing and returns 0. */
static int push_hook(lua_State *L, const orbt_client *c, int client, int options, const char *name)
{
    if (options != 0) {
        lua_getfield(L, options, name);
        if (lua_isfunction(L, -1))
            return 1;
        lua_pop(L, 1);
    }
    if (!c->has_hooks)
        return 0;
    orbt_push_uservalue(L, client);
    lua_getfield(L, -1, name);
    lua_remove(L, -2);
    if (lua_isfunction(L, -1))
        return 1;
    lua_pop(L, 1);
    return 0;
}

int hooks_wanted(lua_State *L, const orbt_client *c, int options)
{
    for (int i = 0; options != 0 && i < 2; i++) {
        lua_getfield(L, options, HOOK_NAMES[i]);
        int own = lua_isfunction(L, -1);
        lua_pop(L, 1);
        if (own)
            return 1;
    }
    return c->has_hooks;
}

void hooks_copy(lua_State *L, int from, int to)
{
    from = lua_absindex(L, from);
    to = lua_absindex(L, to);
    for (int i = 0; i < 2; i++) {
        lua_getfield(L, from, HOOK_NAMES[i]);
        if (lua_isfunction(L, -1))
            lua_setfield(L, to, HOOK_NAMES[i]);
        else
            lua_pop(L, 1);
    }
}

/* ===== Running them ===== */

static void set_text(lua_State *L, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0') {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

static void set_integer(lua_State *L, const char *key, int64_t value)
{
    orbt_push_int64(L, value);
    lua_setfield(L, -2, key);
}

/* {operation, method, path, attempt, idempotency[, request_id]} */
static void push_info(lua_State *L, const hook_attempt *a)
{
    lua_createtable(L, 0, 14);
    set_text(L, "operation", a->op->name);
    set_text(L, "method", a->op->method);
    set_text(L, "path", a->path);
    set_integer(L, "attempt", a->attempt);
    set_text(L, "idempotency", retry_class_name(a->op->retry));
    set_text(L, "request_id", a->request_id);
}

/* Where a hook's error goes when no on_hook_error takes it: nginx's error
 * log inside nginx, else stderr. */
static void report_plainly(lua_State *L, const char *text)
{
    int top = lua_gettop(L);
    orbt_raw_global(L, "ngx");
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "log");
        lua_getfield(L, -2, "ERR");
        lua_pushstring(L, text);
        if (lua_isfunction(L, -3) && lua_pcall(L, 2, 0, 0) == 0) {
            lua_settop(L, top);
            return;
        }
    }
    lua_settop(L, top);
    fprintf(stderr, "%s\n", text);
    fflush(stderr);
}

/* A hook raised (message at the top): says so once, through on_hook_error
 * when there is one. The info table is at info. Pops the message. */
static void report_hook_error(lua_State *L, const orbt_client *c, const hook_attempt *a, const char *hook,
                              int info)
{
    const char *raw = lua_tostring(L, -1);
    const char *why = raw != NULL ? raw : "(an error that is not a string)";
    const char *text;
    if (strstr(why, "yield across") != NULL)
        text = lua_pushfstring(L, "orbt: the %s hook tried to yield (ngx.sleep, a cosocket): hooks run "
                               "inside the call and cannot; do I/O from ngx.timer.at instead (%s)", hook, why);
    else
        text = lua_pushfstring(L, "orbt: the %s hook raised an error; the call went on: %s", hook, why);
    int top = lua_gettop(L);
    if (push_hook(L, c, a->client, 0, "on_hook_error")) {
        lua_pushstring(L, text);
        lua_pushvalue(L, info);
        if (lua_pcall(L, 2, 0, 0) == 0) {
            lua_settop(L, top - 2);
            return;
        }
        text = lua_pushfstring(L, "%s; and on_hook_error raised: %s", text,
                               lua_isstring(L, -1) ? lua_tostring(L, -1) : "(not a string)");
    }
    report_plainly(L, text);
    lua_settop(L, top - 2);
}

/* Calls the hook below the info table (both on top) and pops them. */
static void run_hook(lua_State *L, orbt_client *c, const hook_attempt *a, const char *hook)
{
    int info = lua_gettop(L);
    lua_pushvalue(L, info - 1);
    lua_pushvalue(L, info);
    if (lua_pcall(L, 1, 0, 0) != 0)
        report_hook_error(L, c, a, hook, info);
    lua_pop(L, 2);
}

static void before_in(lua_State *L, orbt_client *c, const hook_attempt *a)
{
    if (!push_hook(L, c, a->client, a->options, "on_request"))
        return;
    push_info(L, a);
    run_hook(L, c, a, "on_request");
}

static void after_in(lua_State *L, orbt_client *c, const hook_attempt *a, const hook_outcome *o)
{
    if (!push_hook(L, c, a->client, a->options, "on_response"))
        return;
    const http_response *rs = o->response;
    push_info(L, a);
    if (rs->status > 0)
        set_integer(L, "status", rs->status);
    lua_pushnumber(L, o->seconds);
    lua_setfield(L, -2, "duration");
    set_text(L, "request_id", rs->request_id);
    set_integer(L, "bytes", (int64_t)o->bytes);
    const char *kind = NULL, *reason = NULL;
    if (o->error > 0) {
        lua_getfield(L, o->error, "kind");
        lua_setfield(L, -2, "kind");
        lua_getfield(L, o->error, "reason");
        lua_setfield(L, -2, "reason");
    } else if (o->error < 0) {
        call_info call = {a->op, a->path, NULL, 0, a->attempt, -1, 0, 0};
        answer_attempt_kind(&call, rs, &kind, &reason);
        set_text(L, "kind", kind);
        set_text(L, "reason", reason);
    }
    int again = o->verdict != NULL && o->verdict->again;
    lua_pushboolean(L, again);
    lua_setfield(L, -2, "retry");
    if (again) {
        lua_pushnumber(L, o->verdict->delay);
        lua_setfield(L, -2, "delay");
    }
    run_hook(L, c, a, "on_response");
}

/* ===== Protected runs =====
 *
 * Everything the hooks do, finding them and building `info` included, runs
 * under lua_pcall with the client marked busy: no error escapes into the
 * call, a hook cannot make a call on the client, and a close() made by a
 * hook (or by a finalizer the allocations run) waits for the call's end.
 * The protected function gets the client, the call's own table and the
 * error as its arguments 2, 3 and 4. */

typedef struct hook_job {
    orbt_client *client;
    hook_attempt attempt;
    const hook_outcome *outcome; /* NULL: before the attempt */
} hook_job;

static int run_protected(lua_State *L)
{
    hook_job *job = lua_touserdata(L, 1);
    hook_attempt a = job->attempt;
    a.client = 2;
    a.options = lua_istable(L, 3) ? 3 : 0;
    if (job->outcome == NULL) {
        before_in(L, job->client, &a);
        return 0;
    }
    hook_outcome o = *job->outcome;
    if (o.error > 0)
        o.error = 4;
    after_in(L, job->client, &a, &o);
    return 0;
}

static void run_job(lua_State *L, hook_job *job, int error)
{
    orbt_client *c = job->client;
    const hook_attempt *a = &job->attempt;
    int was_busy = c->busy;
    c->busy = 1;
    if (lua_checkstack(L, 8)) {
        lua_pushcfunction(L, run_protected);
        lua_pushlightuserdata(L, job);
        lua_pushvalue(L, a->client);
        if (a->options != 0)
            lua_pushvalue(L, a->options);
        else
            lua_pushnil(L);
        if (error > 0)
            lua_pushvalue(L, error);
        else
            lua_pushnil(L);
        if (lua_pcall(L, 4, 0, 0) != 0) {
            /* Out of memory building `info`: said plainly, once. */
            report_plainly(L, lua_isstring(L, -1) ? lua_tostring(L, -1) : "orbt: a hook could not run");
            lua_pop(L, 1);
        }
    }
    c->busy = was_busy;
}

void hooks_before(lua_State *L, orbt_client *c, const hook_attempt *a)
{
    hook_job job = {c, *a, NULL};
    run_job(L, &job, 0);
}

void hooks_after(lua_State *L, orbt_client *c, const hook_attempt *a, const hook_outcome *o)
{
    hook_job job = {c, *a, o};
    run_job(L, &job, o->error);
}
