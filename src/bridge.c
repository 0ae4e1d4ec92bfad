/* bridge.c: the core's side of a transport written in Lua (the nginx one,
 * lua/orbt/cosocket.lua). Such a transport only moves bytes:
 *
 *   local rq, err = client:_prepare(operation, ...)  -- the method's arguments
 *   -- rq = {wire =, method =, target =, deadline =, max_retries =,
 *   --       may_resend =, reader =}: send rq.wire, then feed the reader
 *   local rq, err = client:_again(rq)                  -- the next attempt: the same
 *   --       bytes of body and target, signed afresh into rq.wire
 *   local state, keep = rq.reader:feed(bytes)          -- "more", "done", "bad", "too_large"
 *   local state = rq.reader:close()                    -- the server closed the connection
 *   local result, err, delay = client:_answer{ reader = rq.reader,
 *     failure = nil | "network" | "timeout" | "certificate", message =,
 *     sent =, resent =, attempt =, seconds_left =, applied_before = }
 *   -- resent: sent on a kept-alive connection that died unanswered, then
 *   -- again; applied_before: an earlier attempt's err.maybe_applied
 *
 * Validation, signing, framing, reading the answer (http1.c, the same
 * reader as libcurl's connections) and the retry decision all stay here.
 * Every successful _prepare or _again is followed by one _answer. A call is
 * validated and written once: every attempt sends the same body, however
 * the caller's tables change meanwhile, and is signed afresh. The bulk
 * plan (bulk.c, client:_bulk_plan) hands out calls written but not yet
 * signed: each attempt, the first included, is an _again. */
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pthread.h>

#include <lauxlib.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "compat.h"
#include "hooks.h"
#include "http1.h"
#include "version.h"

#define READER_METATABLE "orbt.reader"

/* The answer to a CONNECT is read whole but kept small. */
#define TUNNEL_BODY_MAX ((size_t)64 * 1024)

typedef struct bridge_reader {
    http1_reader http;
    buffer body;
    const operation *op;       /* NULL: the answer to a CONNECT */
    char *path;                /* the call's path, for errors */
    buffer target;             /* what the call sends, kept for its next attempt: */
    buffer request;            /* request target and body, as written once */
    int debit;                 /* the call takes money from a consumer's wallet */
    http1_outcome outcome;
    int extra;                 /* bytes came after the answer */
    int attempt;               /* of the call: 1 after _prepare, one more each _again */
    double call_started, started; /* when the call and its latest attempt began */
    char sent_id[SIGN_UUID_LEN + 1]; /* the x-request-id the attempt carries (send_request_id) */
    int has_sent_id;
    operation own_op;          /* a raw request's row (client:request), as op points to */
    orbt_client *in_flight_of; /* the client counting this call in flight until
                                  _answer, or until the reader is collected
                                  (a call abandoned half way); anchored to the
                                  reader, so it outlives it */
} bridge_reader;

/* The call is no longer in flight: a close() that waited for it may happen. */
static void end_in_flight(bridge_reader *r)
{
    orbt_client *c = r->in_flight_of;
    r->in_flight_of = NULL;
    if (c != NULL && c->in_flight > 0) {
        c->in_flight--;
        client_release_if_pending(c);
    }
}

/* ===== The reader ===== */

static bridge_reader *check_reader(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, READER_METATABLE);
}

static int reader_gc(lua_State *L)
{
    bridge_reader *r = check_reader(L, 1);
    end_in_flight(r);
    http1_free(&r->http);
    buffer_free(&r->body);
    buffer_free(&r->target);
    buffer_free(&r->request);
    free(r->path);
    r->path = NULL;
    return 0;
}

static const char *outcome_name(http1_outcome outcome)
{
    switch (outcome) {
    case HTTP1_MORE: return "more";
    case HTTP1_DONE: return "done";
    case HTTP1_TOO_LARGE: return "too_large";
    default: return "bad";
    }
}

/* The state, and on "done" whether the connection may carry another request. */
static int push_state(lua_State *L, const bridge_reader *r)
{
    lua_pushstring(L, outcome_name(r->outcome));
    lua_pushboolean(L, r->outcome == HTTP1_DONE && r->http.keep_alive && !r->extra);
    return 2;
}

/* reader:feed(bytes) -> state, keep */
static int reader_feed(lua_State *L)
{
    bridge_reader *r = check_reader(L, 1);
    size_t len = 0;
    const char *data = luaL_checklstring(L, 2, &len);
    if (r->outcome == HTTP1_MORE) {
        size_t used = 0;
        r->outcome = http1_feed(&r->http, data, len, &used);
        r->extra = used < len;
    } else if (len > 0) {
        r->extra = 1;
    }
    return push_state(L, r);
}

/* reader:close() -> state: the server closed the connection. */
static int reader_close(lua_State *L)
{
    bridge_reader *r = check_reader(L, 1);
    if (r->outcome == HTTP1_MORE)
        r->outcome = http1_end(&r->http);
    return push_state(L, r);
}

/* reader:reset(): reads the answer afresh, for a request sent once more. */
static void reader_restart(bridge_reader *r)
{
    http1_begin(&r->http, &r->body);
    r->outcome = HTTP1_MORE;
    r->extra = 0;
}

static int reader_reset(lua_State *L)
{
    reader_restart(check_reader(L, 1));
    return 0;
}

/* reader:status() -> the answer's status (0 before the status line). */
static int reader_status(lua_State *L)
{
    orbt_push_int64(L, check_reader(L, 1)->http.status);
    return 1;
}

/* reader:received() -> bytes of the answer fed so far. */
static int reader_received(lua_State *L)
{
    orbt_push_int64(L, (int64_t)check_reader(L, 1)->http.received);
    return 1;
}

/* reader:message() -> why the answer was refused, or nil. */
static int reader_message(lua_State *L)
{
    const bridge_reader *r = check_reader(L, 1);
    if ((r->outcome == HTTP1_BAD || r->outcome == HTTP1_HEAD_TOO_LARGE) && r->http.error != NULL)
        lua_pushstring(L, r->http.error);
    else
        lua_pushnil(L);
    return 1;
}

static bridge_reader *push_reader(lua_State *L, const operation *op, size_t max_body)
{
    bridge_reader *r = lua_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    http1_init(&r->http);
    buffer_init(&r->body, max_body);
    buffer_init(&r->target, 0);
    buffer_init(&r->request, 0);
    r->op = op;
    if (luaL_newmetatable(L, READER_METATABLE)) {
        static const luaL_Reg methods[] = {
            {"feed", reader_feed},         {"close", reader_close},     {"status", reader_status},
            {"received", reader_received}, {"message", reader_message}, {"reset", reader_reset},
            {NULL, NULL},
        };
        lua_pushcfunction(L, reader_gc);
        lua_setfield(L, -2, "__gc");
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_setmetatable(L, -2);
    if (op == NULL)
        http1_begin_tunnel(&r->http, &r->body);
    else
        http1_begin(&r->http, &r->body);
    r->outcome = HTTP1_MORE;
    return r;
}

/* ===== _prepare, _again ===== */

static void set_string(lua_State *L, const char *key, const char *value, size_t len)
{
    lua_pushlstring(L, value, len);
    lua_setfield(L, -2, key);
}

/* What a call sends, written once. */
typedef struct written_call {
    const operation *op;
    call_limits limits;
    const char *path;
    const buffer *target, *body;
    int debit;
} written_call;

/* Pushes {method, target, deadline, max_retries, may_resend, reader} for a
 * written call; its reader keeps the bytes for every attempt. */
static bridge_reader *push_call(lua_State *L, orbt_client *c, const written_call *w)
{
    const operation *op = w->op;
    lua_createtable(L, 0, 7);
    lua_pushstring(L, op->method);
    lua_setfield(L, -2, "method");
    set_string(L, "target", w->target->data, w->target->len);
    lua_pushnumber(L, w->limits.deadline);
    lua_setfield(L, -2, "deadline");
    orbt_push_int64(L, w->limits.max_retries);
    lua_setfield(L, -2, "max_retries");
    lua_pushboolean(L, op->retry != RETRY_CREATE);
    lua_setfield(L, -2, "may_resend");
    bridge_reader *r = push_reader(L, op, c->response.body.limit);
    r->http.id_headers = (const char *const *)c->id_headers;
    r->path = strdup(w->path != NULL ? w->path : op->path);
    if (op->raw && r->path != NULL) {
        /* The call's own row, pointing at the reader's copy of its path. */
        r->own_op = *op;
        r->own_op.path = r->path;
        r->op = &r->own_op;
    }
    r->debit = w->debit;
    if (r->path == NULL || buffer_append(&r->target, w->target->data, w->target->len) != 0
        || (w->body->len > 0 && buffer_append(&r->request, w->body->data, w->body->len) != 0))
        luaL_error(L, "orbt: out of memory");
    lua_setfield(L, -2, "reader");
    return r;
}

/* The call table at the top of the stack: its reader keeps the client (at
 * stack index 1) alive, as its __gc may end the call. */
static void anchor_client(lua_State *L)
{
    lua_getfield(L, -1, "reader");
    lua_pushvalue(L, 1);
    orbt_anchor_to(L, -2);
    lua_pop(L, 1);
}

typedef struct prepared_job {
    orbt_client *client;
    const call_plan *plan;
    const char *sent_id;
} prepared_job;

static int push_prepared(lua_State *L)
{
    const prepared_job *job = lua_touserdata(L, 1);
    orbt_client *c = job->client;
    lua_pop(L, 1);
    written_call w = {job->plan->op, job->plan->limits, c->path.data, &c->target, &c->request_body,
                      job->plan->debit};
    bridge_reader *r = push_call(L, c, &w);
    set_string(L, "wire", c->wire.data, c->wire.len);
    r->attempt = 1;
    r->call_started = r->started = retry_clock();
    r->has_sent_id = job->sent_id != NULL;
    if (job->sent_id != NULL)
        memcpy(r->sent_id, job->sent_id, sizeof r->sent_id);
    /* From here a close() waits for the _answer, or for the reader to go. */
    r->in_flight_of = c;
    c->in_flight++;
    return 1;
}

static int client_prepare(lua_State *L)
{
    orbt_client *c = client_check(L, 1);
    const operation *op = client_check_operation(L, 2);
    call_plan p;
    if (client_read_call(L, c, op, 3, &p) != 0 || client_refuse_if_unusable(L, c, p.op->method, p.op->path) != 0)
        return 2;
    op = p.op; /* a raw request's own row */
    char sent_id[SIGN_UUID_LEN + 1];
    const char *id = client_request_id(c, sent_id);
    /* Busy while the call is written, its on_request runs and it is signed:
     * nothing that runs Lua meanwhile can free what it uses. */
    c->busy = 1;
    int written = client_write_call(c, &p, &c->path, &c->target, &c->request_body) == 0;
    if (written && hooks_wanted(L, c, p.options)) {
        hook_attempt h = {1, p.options, op, c->path.data, 1, id};
        hooks_before(L, c, &h);
    }
    int framed = written && client_frame(c, op->method, c->target.data, &c->request_body,
                                         ORBT_USER_AGENT_COSOCKET, id, &c->wire) == 0;
    c->busy = 0;
    if (!framed) {
        client_release_if_pending(c);
        return luaL_error(L, "orbt: could not sign the request (OpenSSL failure or out of memory)");
    }
    if (c->closed) { /* by its on_request */
        validation_error closed = {"client", "the client was closed before the call was sent"};
        client_release_if_pending(c);
        return client_invalid(L, &closed, op->method, op->path);
    }
    prepared_job job = {c, &p, id};
    client_run_busy(L, c, push_prepared, &job);
    anchor_client(L);
    int call = lua_gettop(L);
    if (p.options != 0)
        hooks_copy(L, p.options, call);
    lua_settop(L, call);
    return 1;
}

static int push_wire(lua_State *L)
{
    const orbt_client *c = lua_touserdata(L, 1);
    lua_pop(L, 1);
    lua_pushlstring(L, c->wire.data, c->wire.len);
    return 1;
}

/* client:_again(rq) -> rq with a fresh wire, or nil, err (the client closed). */
static int client_again(lua_State *L)
{
    orbt_client *c = client_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    lua_getfield(L, 2, "reader");
    bridge_reader *r = check_reader(L, 3);
    if (r->op == NULL)
        return luaL_argerror(L, 2, "the reader of a CONNECT has no call to send");
    if (r->in_flight_of != NULL)
        return luaL_argerror(L, 2, "the call is in flight: give its outcome to _answer first");
    if (client_refuse_if_unusable(L, c, r->op->method, r->path))
        return 2;
    char sent_id[SIGN_UUID_LEN + 1];
    const char *id = client_request_id(c, sent_id);
    if (hooks_wanted(L, c, 2)) {
        hook_attempt h = {1, 2, r->op, r->path, r->attempt + 1, id};
        hooks_before(L, c, &h);
        if (c->closed) { /* by its on_request */
            client_release_if_pending(c);
            return client_refuse_if_unusable(L, c, r->op->method, r->path);
        }
    }
    if (client_frame(c, r->op->method, r->target.data, &r->request, ORBT_USER_AGENT_COSOCKET, id, &c->wire) != 0)
        return luaL_error(L, "orbt: could not sign the request (OpenSSL failure or out of memory)");
    client_run_busy(L, c, push_wire, c);
    /* A finalizer run by that allocation may have closed the client. */
    if (client_refuse_if_unusable(L, c, r->op->method, r->path))
        return 2;
    lua_setfield(L, 2, "wire");
    reader_restart(r);
    r->attempt++;
    r->started = retry_clock();
    if (r->attempt == 1)
        r->call_started = r->started;
    r->has_sent_id = id != NULL;
    if (id != NULL)
        memcpy(r->sent_id, id, sizeof r->sent_id);
    r->in_flight_of = c;
    c->in_flight++;
    lua_settop(L, 2);
    return 1;
}

void bridge_push_call(lua_State *L, orbt_client *c, const operation *op, const call_limits *limits,
                      const char *path, const buffer *target, const buffer *body, int debit)
{
    written_call w = {op, *limits, path, target, body, debit};
    push_call(L, c, &w);
    anchor_client(L);
}

/* ===== _answer ===== */

static transport_result failure_named(lua_State *L, int table)
{
    static const char *const names[] = {"network", "timeout", "certificate", NULL};
    static const transport_result results[] = {TRANSPORT_NETWORK, TRANSPORT_TIMEOUT, TRANSPORT_CERTIFICATE};
    lua_getfield(L, table, "failure");
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return TRANSPORT_OK;
    }
    transport_result result = results[luaL_checkoption(L, -1, NULL, names)];
    lua_pop(L, 1);
    return result;
}

static lua_Number number_field(lua_State *L, int table, const char *key, lua_Number otherwise)
{
    lua_getfield(L, table, key);
    lua_Number v = lua_isnumber(L, -1) ? lua_tonumber(L, -1) : otherwise;
    lua_pop(L, 1);
    return v;
}

/* What the transport and the reader say, as the libcurl transport says it. */
static void read_outcome(lua_State *L, int table, const bridge_reader *r, http_response *rs)
{
    memset(rs, 0, sizeof *rs);
    rs->status = r->http.status;
    rs->body = r->body; /* read only; the reader keeps it */
    memcpy(rs->retry_after, r->http.retry_after, sizeof rs->retry_after);
    memcpy(rs->request_id, r->http.request_id, sizeof rs->request_id);
    lua_getfield(L, table, "sent");
    rs->request_sent = lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, table, "resent");
    rs->resent = lua_toboolean(L, -1);
    lua_pop(L, 1);
    rs->result = failure_named(L, table);
    if (rs->result != TRANSPORT_OK) {
        lua_getfield(L, table, "message");
        snprintf(rs->message, sizeof rs->message, "%s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "the transport failed");
        lua_pop(L, 1);
        return;
    }
    switch (r->outcome) {
    case HTTP1_DONE:
        return;
    case HTTP1_TOO_LARGE:
        rs->result = TRANSPORT_TOO_LARGE;
        snprintf(rs->message, sizeof rs->message, "the answer is larger than max_body (%zu bytes)", r->body.limit);
        return;
    case HTTP1_HEAD_TOO_LARGE:
        rs->result = TRANSPORT_HEAD_TOO_LARGE;
        snprintf(rs->message, sizeof rs->message, "%s", r->http.error);
        return;
    case HTTP1_BAD:
        rs->result = TRANSPORT_NETWORK;
        snprintf(rs->message, sizeof rs->message, "%s", r->http.error);
        return;
    default:
        rs->result = TRANSPORT_NETWORK;
        snprintf(rs->message, sizeof rs->message, "the connection closed before the answer was complete");
        return;
    }
}

_Static_assert(sizeof(((http_response *)0)->retry_after) == sizeof(((http1_reader *)0)->retry_after),
               "Retry-After is copied whole from the reader to the response");

static int client_answer(lua_State *L)
{
    orbt_client *c = client_check(L, 1);
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "reader");
    bridge_reader *r = check_reader(L, -1);
    if (r->op == NULL)
        return luaL_argerror(L, 2, "the reader of a CONNECT has no call to answer");
    int attempt = (int)number_field(L, 2, "attempt", 1);
    int max_retries = (int)number_field(L, 2, "max_retries", 0);
    double seconds_left = (double)number_field(L, 2, "seconds_left", 0);
    http_response rs;
    read_outcome(L, 2, r, &rs);
    client_note_request_id(&rs, r->has_sent_id ? r->sent_id : NULL);
    size_t bytes = rs.body.len;
    double seconds = retry_clock() - r->started;
    if (r->in_flight_of == c) {
        /* Not end_in_flight: the client must not be released before this
         * answer is decoded. */
        r->in_flight_of = NULL;
        c->in_flight--;
    }
    if (c->closed && !c->close_pending) {
        validation_error closed = {"client", "the client was closed while this call was in flight"};
        return client_invalid(L, &closed, r->op->method, r->path);
    }
    lua_getfield(L, 2, "applied_before");
    int applied_before = lua_toboolean(L, -1);
    lua_pop(L, 1);
    call_info call = {r->op, r->path, c->secret, c->secret_len, attempt, -1, r->debit, applied_before};
    int coded = client_error_coded(L, c, &call, &rs);
    retry_verdict verdict = retry_decide(&c->random, r->op->retry, &rs, coded, attempt, max_retries, seconds_left);
    int again = verdict.again && !c->closed;
    call.retry_after = verdict.retry_after;
    int n = client_finish_call(L, c, &call, &rs);
    buffer_release(&r->body);
    if (!again)
        client_note_last(c, r->op, &rs, attempt, retry_clock() - r->call_started);
    if (hooks_wanted(L, c, 2)) {
        retry_verdict told = verdict;
        told.again = again;
        hook_outcome o = {&rs, seconds, bytes, &told, n == 2 ? lua_gettop(L) : 0};
        hook_attempt h = {1, 2, r->op, r->path, attempt, r->has_sent_id ? r->sent_id : NULL};
        hooks_after(L, c, &h, &o);
        client_release_if_pending(c); /* a close() its on_response made */
    }
    if (again && n == 2) {
        lua_pushnumber(L, verdict.delay);
        n++;
    }
    return n;
}

/* ===== _settings and _tunnel ===== */

static void set_field_string(lua_State *L, const char *key, const char *value)
{
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

static void set_field_integer(lua_State *L, const char *key, int64_t value)
{
    orbt_push_int64(L, value);
    lua_setfield(L, -2, key);
}

/* Cosockets resolve names through nginx's `resolver`, which does not read
 * /etc/hosts; localhost is loopback by definition (RFC 6761). */
static const char *connect_address(const char *host)
{
    size_t n = strlen(host);
    static const char suffix[] = ".localhost";
    if (strcasecmp(host, "localhost") == 0
        || (n > sizeof suffix - 1 && strcasecmp(host + n - (sizeof suffix - 1), suffix) == 0))
        return "127.0.0.1";
    return host;
}

/* A random salt, once per process, so that a pool name's digest of the
 * proxy's credentials cannot be matched against guessed passwords. */
static unsigned char pool_salt[32];
static pthread_once_t pool_salt_once = PTHREAD_ONCE_INIT;

static void make_pool_salt(void)
{
    if (RAND_bytes(pool_salt, sizeof pool_salt) != 1)
        memset(pool_salt, 0, sizeof pool_salt); /* names then still tell proxies apart */
}

/* A name for the route: one origin through one proxy (named by a salted
 * digest, never its credentials). Its connections share a pool, and its
 * TLS handshakes a session to resume. */
static void push_route_name(lua_State *L, const orbt_client *c)
{
    if (c->proxy.host == NULL) {
        lua_pushfstring(L, "orbt:%s:%s:%d", c->base.scheme, c->base.host, c->base.port);
        return;
    }
    pthread_once(&pool_salt_once, make_pool_salt);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char hex[17];
    const char *parts[] = {c->proxy.origin, c->proxy.user, c->proxy.password};
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
             && EVP_DigestUpdate(ctx, pool_salt, sizeof pool_salt) == 1;
    for (size_t i = 0; ok && i < 3; i++)
        ok = parts[i] == NULL || EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]) + 1) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, digest, &len) == 1;
    EVP_MD_CTX_free(ctx);
    for (size_t i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", ok ? digest[i] : 0);
    lua_pushfstring(L, "orbt:%s:%s:%d:via:%s", c->base.scheme, c->base.host, c->base.port, hex);
}

/* The keep-alive pool's name: the route's, and its sizes, since nginx
 * sizes a pool once, when it is first used, and the cosocket transport
 * keeps one waiting line (pool_backlog) per pool: clients that ask for
 * other sizes get a pool of their own. */
static void push_pool_name(lua_State *L, const orbt_client *c)
{
    push_route_name(L, c);
    lua_pushfstring(L, "%s:pool:%d:%d", lua_tostring(L, -1), c->pool_size, c->pool_backlog);
    lua_remove(L, -2);
}

/* A URL's scheme, host, connect address, port and tls, into the table on top. */
static void set_address_fields(lua_State *L, const url_parts *u)
{
    set_field_string(L, "scheme", u->scheme);
    set_field_string(L, "host", u->host);
    set_field_string(L, "address", connect_address(u->host));
    set_field_integer(L, "port", u->port);
    lua_pushboolean(L, u->tls);
    lua_setfield(L, -2, "tls");
}

static int push_proxy(lua_State *L, const orbt_client *c)
{
    lua_createtable(L, 0, 7);
    set_address_fields(L, &c->proxy);
    /* The CONNECT request, credentials included: built here, once. */
    buffer connect;
    buffer_init(&connect, 0);
    char *credentials = NULL;
    if (c->proxy.user != NULL) {
        size_t n = strlen(c->proxy.user) + (c->proxy.password ? strlen(c->proxy.password) : 0) + 2;
        credentials = malloc(n);
        if (credentials != NULL)
            snprintf(credentials, n, "%s:%s", c->proxy.user, c->proxy.password ? c->proxy.password : "");
    }
    int ok = (c->proxy.user == NULL || credentials != NULL)
             && http1_frame_connect(&connect, c->base.host_port, ORBT_USER_AGENT_COSOCKET, credentials) == 0;
    if (credentials != NULL) {
        sign_wipe(credentials, strlen(credentials));
        free(credentials);
    }
    if (ok)
        lua_pushlstring(L, connect.data, connect.len);
    if (connect.data != NULL)
        sign_wipe(connect.data, connect.len);
    buffer_free(&connect);
    if (!ok)
        return luaL_error(L, "orbt: out of memory");
    lua_setfield(L, -2, "connect");
    return 1;
}

/* client:_settings() -> {scheme, host, address, port, tls, authority,
 * timeout, connect_timeout, max_body, transport ("auto", "curl" or
 * "cosocket"), refusal_field and refusal (why cosockets cannot carry this
 * client) or nil, route, pool, pool_size, pool_backlog (or nil), proxy =
 * {scheme, host, address, port, tls, connect} or nil}, or nil, err once
 * closed. */
static int client_settings(lua_State *L)
{
    static const char *const choices[] = {"auto", "curl", "cosocket"};
    orbt_client *c = client_check(L, 1);
    if (client_refuse_if_unusable(L, c, NULL, NULL))
        return 2;
    lua_createtable(L, 0, 14);
    set_address_fields(L, &c->base);
    set_field_string(L, "authority", c->base.authority);
    lua_pushnumber(L, c->timeout);
    lua_setfield(L, -2, "timeout");
    lua_pushnumber(L, c->connect_timeout);
    lua_setfield(L, -2, "connect_timeout");
    set_field_integer(L, "max_body", (int64_t)c->response.body.limit);
    set_field_string(L, "transport", choices[c->transport_choice]);
    if (c->cosocket_refusal_field != NULL) {
        set_field_string(L, "refusal_field", c->cosocket_refusal_field);
        set_field_string(L, "refusal", c->cosocket_refusal);
    }
    push_route_name(L, c);
    lua_setfield(L, -2, "route");
    push_pool_name(L, c);
    lua_setfield(L, -2, "pool");
    set_field_integer(L, "pool_size", c->pool_size);
    if (c->pool_backlog >= 0)
        set_field_integer(L, "pool_backlog", c->pool_backlog);
    if (c->proxy.host != NULL) {
        push_proxy(L, c);
        lua_setfield(L, -2, "proxy");
    }
    return 1;
}

/* client:_tunnel() -> a reader for the proxy's answer to CONNECT. */
static int client_tunnel(lua_State *L)
{
    client_check(L, 1);
    push_reader(L, NULL, TUNNEL_BODY_MAX);
    return 1;
}

void bridge_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"_prepare", client_prepare},
        {"_again", client_again},
        {"_answer", client_answer},
        {"_settings", client_settings},
        {"_tunnel", client_tunnel},
        {NULL, NULL},
    };
    luaL_setfuncs(L, methods, 0);
}
