/* client.c: the client type and its call pipeline: Lua arguments ->
 * validate -> body -> sign -> transport -> answer. Every operation's
 * method is client_call, with the operation's row as its upvalue. */
#include "client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "compat.h"
#include "error.h"
#include "hooks.h"
#include "http1.h"
#include "version.h"

/* ===== Lifecycle ===== */

static char *copy_text(const lua_text *t)
{
    char *s = malloc(t->len + 1);
    if (s != NULL) {
        memcpy(s, t->ptr, t->len);
        s[t->len] = '\0';
    }
    return s;
}

/* Frees everything the client holds and wipes the secret. Safe to call
 * twice and on a partly built client. */
static void client_release(orbt_client *c)
{
    if (c->secret != NULL) {
        sign_wipe(c->secret, c->secret_len);
        free(c->secret);
    }
    sign_key_free(c->key);
    transport_free(c->transport);
    free(c->api_key);
    free(c->client_id);
    url_parts_free(&c->base);
    url_parts_free(&c->proxy);
    buffer_free(&c->path);
    buffer_free(&c->target);
    buffer_free(&c->request_body);
    buffer_free(&c->wire);
    buffer_free(&c->response.body);
    c->secret = c->api_key = c->client_id = NULL;
    c->key = NULL;
    c->transport = NULL;
    c->secret_len = 0;
    c->closed = 1;
    c->close_pending = 0;
}

/* Takes the parsed URLs over from o. */
static int client_fill(orbt_client *c, client_options *o)
{
    c->cosocket_refusal_field = client_options_cosocket_refusal(o, c->cosocket_refusal, sizeof c->cosocket_refusal);
    c->api_key = copy_text(&o->api_key);
    c->client_id = copy_text(&o->client_id);
    c->secret = copy_text(&o->secret);
    c->secret_len = o->secret.len;
    c->key = sign_key_new(o->secret.ptr, o->secret.len);
    c->base = o->base;
    memset(&o->base, 0, sizeof o->base);
    c->proxy = o->proxy_parts;
    memset(&o->proxy_parts, 0, sizeof o->proxy_parts);
    c->id_headers = o->id_headers;
    o->id_headers = NULL;
    c->send_request_id = o->send_request_id;
    c->pool_size = o->pool_size;
    c->pool_backlog = o->pool_backlog;
    transport_config config = {c->base.origin, o->ca_file.ptr, o->proxy, o->proxy_ca_file.ptr,
                               (const char *const *)c->id_headers};
    c->transport = transport_new(&config);
    c->timeout = o->timeout;
    c->connect_timeout = o->connect_timeout;
    c->transport_choice = o->transport;
    c->limits = (call_limits){o->max_retries, o->deadline};
    retry_random_seed(&c->random);
    buffer_init(&c->path, 0);
    buffer_init(&c->target, 0);
    buffer_init(&c->request_body, 0);
    buffer_init(&c->wire, 0);
    buffer_init(&c->response.body, o->max_body);
    c->closed = 0;
    return c->api_key && c->client_id && c->secret && c->key && c->transport ? 0 : -1;
}

orbt_client *client_check(lua_State *L, int idx)
{
    orbt_client *c = luaL_testudata(L, idx, CLIENT_METATABLE);
    if (c == NULL)
        luaL_error(L, "orbt: expected a client as self; call methods as client:method(...)");
    return c;
}

const operation *client_check_operation(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    const operation *op = operation_named(name);
    if (op == NULL)
        luaL_error(L, "orbt: no operation named '%s'", name);
    return op;
}

int client_invalid(lua_State *L, const validation_error *v, const char *method, const char *path)
{
    orbt_error e = {0};
    e.kind = "invalid";
    e.field = v->field;
    e.message = v->message;
    e.method = method;
    e.path = path;
    return error_return(L, &e);
}

/* Called after validation: a table's __index function may have closed the
 * client meanwhile. A call from inside one of the client's own calls (a
 * finalizer running while an answer is decoded) is refused, because the
 * answer being decoded lives in the client's buffers. */
int client_refuse_if_unusable(lua_State *L, const orbt_client *c, const char *method, const char *path)
{
    validation_error closed = {"client", "the client is closed"};
    validation_error busy = {"client", "the client is in use: it was called from inside one of its own calls"};
    if (c->closed)
        return client_invalid(L, &closed, method, path);
    if (c->busy)
        return client_invalid(L, &busy, method, path);
    return 0;
}

/* Cosockets exist only inside nginx, whose Lua has the global `ngx`. */
static int cosockets_possible(lua_State *L)
{
    orbt_raw_global(L, "ngx");
    int in_nginx = lua_istable(L, -1);
    lua_pop(L, 1);
    return in_nginx;
}

int client_new(lua_State *L)
{
    lua_settop(L, 1);
    /* The client exists (closed, with its __gc) before anything is
     * allocated for it: a Lua error half way cannot leak. */
    orbt_client *c = lua_newuserdata(L, sizeof *c);
    memset(c, 0, sizeof *c);
    c->closed = 1;
    luaL_setmetatable(L, CLIENT_METATABLE);
    client_options o;
    validation_error v = {"transport", "transport = \"cosocket\" works only inside nginx (OpenResty); "
                                       "use \"auto\" to let orbt choose"};
    int in_nginx = cosockets_possible(L); /* asked before anything is allocated */
    int valid = validate_client_options(L, 1, &o, &v)
                && (o.transport != TRANSPORT_CHOICE_COSOCKET || in_nginx);
    int filled = valid && client_fill(c, &o) == 0;
    client_options_free(&o);
    if (!valid)
        return client_invalid(L, &v, NULL, NULL);
    if (!filled) {
        client_release(c);
        return luaL_error(L, "orbt: out of memory creating the client");
    }
    hooks_keep(L, c, 2, 1);
    lua_settop(L, 2);
    return 1;
}

/* A close() deferred while the client was busy or had requests in flight
 * happens once neither holds. */
void client_release_if_pending(orbt_client *c)
{
    if (c->close_pending && !c->busy && c->in_flight == 0)
        client_release(c);
}

static int client_close(lua_State *L)
{
    orbt_client *c = client_check(L, 1);
    if (c->busy || c->in_flight > 0) {
        c->closed = 1;
        c->close_pending = 1; /* client_release_if_pending releases it */
        return 0;
    }
    client_release(c);
    return 0;
}

static int client_gc(lua_State *L)
{
    orbt_client *c = luaL_checkudata(L, 1, CLIENT_METATABLE);
    client_release(c);
    id_headers_free(c->id_headers);
    c->id_headers = NULL;
    return 0;
}

/* Shows who the client is, never what it knows. */
static int client_tostring(lua_State *L)
{
    orbt_client *c = luaL_checkudata(L, 1, CLIENT_METATABLE);
    if (c->closed)
        lua_pushliteral(L, "orbt.client (closed)");
    else
        lua_pushfstring(L, "orbt.client (client_id=%s, base_url=%s://%s%s)", c->client_id, c->base.scheme,
                        c->base.authority, c->base.prefix);
    return 1;
}

/* client:last_response() -> {status, request_id, attempts, duration,
 * operation} of the last call that ended, or nil before any. status and
 * request_id are absent when no answer came. */
static int client_last_response(lua_State *L)
{
    const orbt_client *c = client_check(L, 1);
    if (c->last.operation == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 5);
    if (c->last.status > 0) {
        orbt_push_int64(L, c->last.status);
        lua_setfield(L, -2, "status");
    }
    if (c->last.request_id[0] != '\0') {
        lua_pushstring(L, c->last.request_id);
        lua_setfield(L, -2, "request_id");
    }
    orbt_push_int64(L, c->last.attempts);
    lua_setfield(L, -2, "attempts");
    lua_pushnumber(L, c->last.seconds);
    lua_setfield(L, -2, "duration");
    lua_pushstring(L, c->last.operation);
    lua_setfield(L, -2, "operation");
    return 1;
}

void client_register(lua_State *L)
{
    static const luaL_Reg meta[] = {
        {"__gc", client_gc},
        {"__tostring", client_tostring},
        {NULL, NULL},
    };
    lua_pushcfunction(L, client_close);
    lua_setfield(L, -2, "close");
    lua_pushcfunction(L, client_last_response);
    lua_setfield(L, -2, "last_response");
    luaL_newmetatable(L, CLIENT_METATABLE);
    luaL_setfuncs(L, meta, 0);
    lua_pushliteral(L, CLIENT_METATABLE);
    lua_setfield(L, -2, "__metatable"); /* getmetatable(client) cannot reach __gc */
    lua_pushvalue(L, -2);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
}

/* ===== Reading and writing a call ===== */

/* client:request(method, path, opts): the call's own copy of the row. */
static int read_raw_call(lua_State *L, const operation *op, int first, call_plan *p)
{
    validation_error v;
    p->raw_op = *op;
    p->op = &p->raw_op;
    if (!validate_raw_request(L, first, &p->input.raw, &p->limits, &v))
        return client_invalid(L, &v, NULL, NULL);
    p->raw_op.method = p->input.raw.method;
    p->raw_op.path = p->input.raw.path.ptr;
    p->raw_op.retry = p->input.raw.retry;
    p->options = lua_istable(L, first + 2) ? lua_absindex(L, first + 2) : 0;
    return 0;
}

int client_read_call(lua_State *L, orbt_client *c, const operation *op, int first, call_plan *p)
{
    if (op->raw) {
        memset(p, 0, sizeof *p);
        p->limits = c->limits;
        return read_raw_call(L, op, first, p);
    }
    size_t nparams = operation_param_count(op);
    int args = first + (int)nparams;
    validation_error v;
    memset(p, 0, sizeof *p);
    p->op = op;
    p->limits = c->limits;
    if (!validate_call_limits(L, args + 1, &p->limits, &v))
        return client_invalid(L, &v, op->method, op->path);
    p->options = lua_istable(L, args + 1) ? lua_absindex(L, args + 1) : 0;
    for (size_t i = 0; i < nparams; i++) {
        if (!validate_path_param(L, first + (int)i, op->params[i].name, op->params[i].kind, &p->params[i], &v))
            return client_invalid(L, &v, op->method, op->path);
    }
    if (!op->validate(L, args, &p->input, &v))
        return client_invalid(L, &v, op->method, op->path);
    p->debit = op->takes_from_wallet != NULL && op->takes_from_wallet(&p->input);
    return 0;
}

int client_write_call(const orbt_client *c, const call_plan *p, buffer *path, buffer *target, buffer *body)
{
    const operation *op = p->op;
    buffer_reset(path);
    buffer_reset(target);
    buffer_reset(body);
    if (operation_fill_path(op, p->params, path) != 0 || buffer_append_str(target, c->base.prefix) != 0
        || buffer_append(target, path->data, path->len) != 0)
        return -1;
    if (op->write_query != NULL) {
        size_t before = target->len;
        if (buffer_append(target, "?", 1) != 0 || op->write_query(&p->input, target) != 0)
            return -1;
        if (target->len == before + 1) { /* no query after all */
            target->len = before;
            target->data[before] = '\0';
        }
    }
    return op->write_body != NULL && op->write_body(&p->input, body) != 0 ? -1 : 0;
}

/* ===== Signing and framing ===== */

/* The signed header lines of one request, "Name: value\r\n" each. */
typedef struct header_block {
    char text[1024];
    size_t len;
    int overflow;
} header_block;

static void add_header(header_block *h, const char *name, const char *value)
{
    int n = snprintf(h->text + h->len, sizeof h->text - h->len, "%s: %s\r\n", name, value);
    if (n < 0 || (size_t)n >= sizeof h->text - h->len)
        h->overflow = 1;
    else
        h->len += (size_t)n;
}

int client_frame(orbt_client *c, const char *method, const char *target, const buffer *body,
                 const char *user_agent, const char *request_id, buffer *wire)
{
    char timestamp[SIGN_TIMESTAMP_LEN + 1];
    char body_hash[SIGN_B64_LEN + 1];
    char signature[SIGN_B64_LEN + 1];
    if (sign_timestamp_now(timestamp) != 0 || sign_body_hash(body->data, body->len, body_hash) != 0
        || sign_signature(c->key, method, timestamp, c->client_id, body_hash, signature) != 0)
        return -1;
    header_block h = {.len = 0, .overflow = 0};
    add_header(&h, "x-api-key", c->api_key);
    add_header(&h, "x-client-id", c->client_id);
    add_header(&h, "x-timestamp", timestamp);
    add_header(&h, "x-body-hash", body_hash);
    add_header(&h, "x-signature", signature);
    add_header(&h, "Accept", "application/json");
    if (body->len > 0)
        add_header(&h, "Content-Type", "application/json");
    if (request_id != NULL)
        add_header(&h, "x-request-id", request_id);
    if (h.overflow)
        return -1;
    http1_request rq = {method,    target, c->base.authority, user_agent, h.text, h.len,
                        body->len > 0 ? body->data : "", body->len};
    buffer_reset(wire);
    return http1_frame_request(wire, &rq);
}

/* The timeout of one attempt: the client's, cut to what the deadline leaves. */
static double attempt_timeout(double timeout, double left, int *cut)
{
    *cut = left < timeout;
    return *cut ? (left > 0.001 ? left : 0.001) : timeout;
}

int client_prepare_attempt(orbt_client *c, const operation *op, const char *target, const buffer *body,
                           const char *request_id, buffer *wire, double left, http_request *rq, int *cut)
{
    int connect_cut = 0;
    if (client_frame(c, op->method, target, body, ORBT_USER_AGENT, request_id, wire) != 0)
        return -1;
    *rq = (http_request){
        .wire = wire->data,
        .wire_len = wire->len,
        .may_resend = op->retry != RETRY_CREATE,
        .timeout = attempt_timeout(c->timeout, left, cut),
        .connect_timeout = attempt_timeout(c->connect_timeout, left, &connect_cut),
    };
    return 0;
}

const char *client_request_id(const orbt_client *c, char out[SIGN_UUID_LEN + 1])
{
    if (!c->send_request_id)
        return NULL;
    return sign_uuid4(out) == 0 ? out : NULL;
}

void client_note_request_id(http_response *rs, const char *sent)
{
    if (sent != NULL && rs->request_id[0] == '\0')
        snprintf(rs->request_id, sizeof rs->request_id, "%s", sent);
}

void client_note_last(orbt_client *c, const operation *op, const http_response *rs, int attempts,
                      double seconds)
{
    c->last.operation = op->name;
    c->last.status = rs->status;
    memcpy(c->last.request_id, rs->request_id, sizeof c->last.request_id);
    c->last.attempts = attempts;
    c->last.seconds = seconds;
}

void client_note_deadline(http_response *rs, int cut, double deadline, int attempts)
{
    if (cut && rs->result == TRANSPORT_TIMEOUT)
        snprintf(rs->message, sizeof rs->message, "the call's deadline of %g s passed (attempt %d)",
                 deadline, attempts);
}

/* ===== Answers ===== */

int client_run_busy(lua_State *L, orbt_client *c, lua_CFunction fn, void *job)
{
    int base = lua_gettop(L);
    int was_busy = c->busy;
    c->busy = 1;
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, job);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    /* Inside a call that keeps the client busy to its end (perform_call),
     * it stays busy; an error ends that call too. */
    c->busy = status == 0 ? was_busy : 0;
    buffer_release(&c->response.body);
    buffer_release(&c->request_body);
    client_release_if_pending(c);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - base;
}

typedef struct answer_job {
    const call_info *call;
    const http_response *response;
} answer_job;

static int answer_protected(lua_State *L)
{
    const answer_job *job = lua_touserdata(L, 1);
    lua_pop(L, 1);
    return answer_push(L, job->call, job->response);
}

typedef struct coded_job {
    const http_response *response;
    int coded;
} coded_job;

static int coded_protected(lua_State *L)
{
    coded_job *job = lua_touserdata(L, 1);
    lua_pop(L, 1);
    job->coded = answer_error_coded(L, job->response);
    return 0;
}

int client_error_coded(lua_State *L, orbt_client *c, const call_info *call, const http_response *rs)
{
    if (!answer_code_matters(call, rs))
        return 0;
    coded_job job = {rs, 0};
    int was_busy = c->busy;
    c->busy = 1; /* a finalizer run by the decoding cannot close the client under us */
    lua_pushcfunction(L, coded_protected);
    lua_pushlightuserdata(L, &job);
    int status = lua_pcall(L, 1, 0, 0);
    c->busy = was_busy;
    if (status != 0)
        lua_pop(L, 1); /* out of memory: taken as no code, and the keyed call is tried again */
    return status == 0 && job.coded;
}

int client_finish_call(lua_State *L, orbt_client *c, const call_info *call, const http_response *rs)
{
    answer_job job = {call, rs};
    return client_run_busy(L, c, answer_protected, &job);
}

/* ===== One call through libcurl ===== */

/* The attempts of one call, with the retry policy of retry.h: each is
 * signed afresh. Everything from reading the call to client_finish_call
 * stays in C memory: a Lua allocation here could run a finalizer that
 * closes the client. */
/* The client is marked busy from the first byte written to the last hook:
 * a hook, a finalizer or an __index that closes it, or calls it, cannot
 * free what the call uses; a close() waits for the call's end. */
static int call_failed(lua_State *L, orbt_client *c, const char *why)
{
    c->busy = 0;
    client_release_if_pending(c);
    return luaL_error(L, "%s", why);
}

static int perform_call(lua_State *L, orbt_client *c, const call_plan *p)
{
    c->busy = 1;
    if (client_write_call(c, p, &c->path, &c->target, &c->request_body) != 0)
        return call_failed(L, c, "orbt: out of memory");
    double started = retry_clock();
    double deadline_at = started + p->limits.deadline;
    retry_verdict verdict;
    int cut = 0;
    call_info call = {p->op, c->path.data, c->secret, c->secret_len, 0, -1, p->debit, 0};
    int hooked = hooks_wanted(L, c, p->options);
    hook_attempt h = {1, p->options, p->op, c->path.data, 0, NULL};
    char sent_id[SIGN_UUID_LEN + 1];
    double attempt_started; /* set by every attempt */
    do {
        if (call.attempts > 0)
            retry_sleep(verdict.delay);
        h.attempt = call.attempts + 1;
        h.request_id = client_request_id(c, sent_id);
        if (hooked)
            hooks_before(L, c, &h);
        attempt_started = retry_clock();
        http_request rq;
        if (client_prepare_attempt(c, p->op, c->target.data, &c->request_body, h.request_id, &c->wire,
                                   deadline_at - attempt_started, &rq, &cut) != 0)
            return call_failed(L, c, "orbt: could not sign the request (OpenSSL failure)");
        transport_perform(c->transport, &rq, &c->response);
        client_note_request_id(&c->response, h.request_id);
        call.attempts++;
        int coded = client_error_coded(L, c, &call, &c->response);
        verdict = retry_decide(&c->random, p->op->retry, &c->response, coded, call.attempts,
                               p->limits.max_retries, deadline_at - retry_clock());
        /* A close() (from a hook) ends the retries: this attempt is the last. */
        verdict.again = verdict.again && !c->closed;
        if (verdict.again) {
            call.applied_before = call.applied_before || answer_attempt_applied(&c->response);
            if (hooked) {
                hook_outcome o = {&c->response, retry_clock() - attempt_started, c->response.body.len,
                                  &verdict, -1};
                hooks_after(L, c, &h, &o);
            }
        }
    } while (verdict.again);
    client_note_deadline(&c->response, cut, p->limits.deadline, call.attempts);
    call.retry_after = verdict.retry_after;
    hook_outcome last = {&c->response, retry_clock() - attempt_started, c->response.body.len, &verdict, 0};
    int n = client_finish_call(L, c, &call, &c->response);
    client_note_last(c, p->op, &c->response, call.attempts, retry_clock() - started);
    if (hooked) {
        last.error = n == 2 ? lua_gettop(L) : 0;
        hooks_after(L, c, &h, &last);
    }
    c->busy = 0;
    client_release_if_pending(c);
    return n;
}

int client_call(lua_State *L)
{
    orbt_client *c = client_check(L, 1);
    const operation *op = lua_touserdata(L, lua_upvalueindex(1));
    call_plan p;
    int refused = client_read_call(L, c, op, 2, &p);
    if (!refused)
        refused = client_refuse_if_unusable(L, c, p.op->method, p.op->path);
    return refused ? refused : perform_call(L, c, &p);
}
