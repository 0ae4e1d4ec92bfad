/* answer_fuzz.c: libFuzzer target for answer handling: what the transport
 * brought back in, a result table or `nil, err` out.
 *
 * Input layout (missing bytes read as 0):
 *   byte 0      bits 0-2: transport result, modulo 5 (OK, NETWORK, TIMEOUT,
 *               TOO_LARGE, CERTIFICATE)
 *               bit 3: request_sent
 *               bit 4: the call is a debit (rows that can take from a wallet)
 *               bit 5: the request was resent after a kept-alive connection died
 *               bit 6: an earlier attempt may have been applied
 *   bytes 1-2   HTTP status, big-endian, modulo 1000 (libcurl reports 3 digits)
 *   bytes 3..   the answer body
 *
 * Each input goes through answer_push once per operation row (each with its
 * answer shape and retry class), with a secret in call_info, and the result
 * is checked against the contract in SPEC.md and the README.
 *
 * Headers: answer handling today takes only the status, the body and the
 * transport outcome; no header reaches it. When it grows header inputs
 * (Retry-After, Content-Type), they get a place in this layout. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "answer.h"
#include "buffer.h"
#include "error.h"
#include "json.h"
#include "operations.h"
#include "transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "sk-fuzz-7c1e4a9b2d5f8e03b6a1c4d7"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "answer_fuzz: invariant broken: %s\n", what);
        abort();
    }
}

static int contains_secret(const char *s, size_t len)
{
    return memmem(s, len, SECRET, sizeof SECRET - 1) != NULL;
}

/* What the transport would have written: it never sees the secret. */
static const char *transport_message(transport_result result)
{
    switch (result) {
    case TRANSPORT_NETWORK: return "Recv failure: Connection reset by peer";
    case TRANSPORT_TIMEOUT: return "Operation timed out after 30000 milliseconds with 0 bytes received";
    case TRANSPORT_TOO_LARGE: return "the answer is larger than max_body (8388608 bytes)";
    case TRANSPORT_CERTIFICATE: return "SSL certificate problem: self-signed certificate";
    case TRANSPORT_HEAD_TOO_LARGE: return "the answer has more than 200 header lines or 65536 bytes of headers";
    default: return "";
    }
}

/* Whether a field of the table at t is a non-empty string or a number. */
static int has_text(lua_State *L, int t, const char *key)
{
    lua_getfield(L, t, key);
    int type = lua_type(L, -1);
    int ok = (type == LUA_TSTRING && lua_rawlen(L, -1) > 0) || type == LUA_TNUMBER;
    lua_pop(L, 1);
    return ok;
}

/* Whether the body is a JSON error with a machine code, as the README says:
 * `code`, `errorCode` or `error.code`. Leaves the stack as it was. */
static int body_has_code(lua_State *L, const buffer *body)
{
    char why[128];
    int top = lua_gettop(L), coded = 0;
    if (body->len > 0 && json_push_document(L, body->data, body->len, why, sizeof why) == 0
        && lua_istable(L, -1)) {
        coded = has_text(L, -1, "code") || has_text(L, -1, "errorCode");
        lua_getfield(L, -1, "error");
        coded = coded || (lua_istable(L, -1) && has_text(L, -1, "code"));
    }
    lua_settop(L, top);
    return coded;
}

/* retryable as the README states it, written out independently of retry.c.
 * `has_code`: the body has a machine code (a keyed call's 500 with one is lasting). */
static int expected_retryable(retry_class retry, transport_result result, int sent, long status,
                              const char *kind, int has_code)
{
    if (strcmp(kind, "decode") == 0 || result == TRANSPORT_TOO_LARGE || result == TRANSPORT_CERTIFICATE
        || result == TRANSPORT_HEAD_TOO_LARGE)
        return 0;
    if (result == TRANSPORT_NETWORK || result == TRANSPORT_TIMEOUT)
        return retry == RETRY_CREATE ? !sent : 1;
    if (status == 429)
        return 1;
    if (retry == RETRY_CREATE)
        return 0;
    return status == 502 || status == 503 || status == 504
           || (status == 500 && (retry == RETRY_READ || (retry == RETRY_KEYED && !has_code)));
}

/* maybe_applied as the README states it: a call that changes something
 * reached the server, and its connection broke or timed out, or it got a
 * 2xx it could not read or a 5xx that is not a known refusal. */
static int expected_maybe_applied(retry_class retry, const http_response *rs, const char *reason,
                                  int applied_before)
{
    if (retry == RETRY_READ)
        return 0;
    if (applied_before)
        return 1;
    if (!rs->request_sent || rs->result == TRANSPORT_CERTIFICATE)
        return 0;
    if (rs->resent || (rs->status >= 200 && rs->status < 300) || rs->result == TRANSPORT_NETWORK
        || rs->result == TRANSPORT_TIMEOUT || rs->result == TRANSPORT_HEAD_TOO_LARGE)
        return 1;
    return rs->status >= 500 && (reason == NULL || strcmp(reason, "insufficient_wallet_funds") != 0);
}

static int is_known_reason(const char *reason)
{
    static const char *const reasons[] = {
        "authentication", "idempotency_conflict", "insufficient_partner_funds", "insufficient_wallet_funds",
        "duplicate_customer", "not_found", "invalid_request", "rate_limited", "server", NULL,
    };
    for (const char *const *r = reasons; *r != NULL; r++)
        if (strcmp(*r, reason) == 0)
            return 1;
    return 0;
}

/* Whether the body's top JSON value is an object (its first byte after
 * whitespace is '{'). */
static int starts_object(const buffer *body)
{
    size_t i = 0;
    while (i < body->len && strchr(" \t\r\n", body->data[i]) != NULL && body->data[i] != '\0')
        i++;
    return i < body->len && body->data[i] == '{';
}

/* The string field `key` of the table at idx, or NULL when absent; any other
 * type is a broken invariant. */
static const char *string_field(lua_State *L, int idx, const char *key, size_t *len)
{
    lua_getfield(L, idx, key);
    int type = lua_type(L, -1);
    const char *s = NULL;
    if (type == LUA_TSTRING)
        s = lua_tolstring(L, -1, len);
    else
        check(type == LUA_TNIL, "an error field that is neither a string nor absent");
    lua_pop(L, 1); /* the table still holds the string */
    return s;
}

typedef struct job {
    const call_info *call;
    const http_response *rs;
} job;

static int call_answer(lua_State *L)
{
    const job *j = lua_touserdata(L, 1);
    lua_pop(L, 1);
    return answer_push(L, j->call, j->rs);
}

static void check_success(lua_State *L, const operation *op, const http_response *rs)
{
    check(rs->result == TRANSPORT_OK, "a result table for a failed transfer");
    check(rs->status >= 200 && rs->status < 300, "a result table for a non-2xx status");
    check(lua_gettop(L) == 1, "success did not leave exactly one value");
    if (op->answer == ANSWER_JSON) {
        /* client:request: the document as it is; an empty body, an empty table. */
        check(rs->body.len > 0 || lua_type(L, 1) == LUA_TTABLE, "an empty answer that is not an empty table");
        check(!lua_isnil(L, 1), "a request's answer decoded to nil");
        return;
    }
    check(lua_type(L, 1) == LUA_TTABLE, "success without a table");
    if (op->answer == ANSWER_ANY) {
        /* The envelope's data or the object itself; an empty body, an empty table. */
        check(rs->body.len == 0 || starts_object(&rs->body), "an undocumented answer that is not an object");
    } else if (op->answer == ANSWER_DATA) {
        check(starts_object(&rs->body), "data from an answer that is not an object");
        if (op->answer_id != NULL) {
            lua_getfield(L, 1, op->answer_id);
            check(lua_type(L, -1) == LUA_TNUMBER, "data without its numeric id");
        }
    } else {
        lua_getfield(L, 1, "content");
        check(lua_type(L, -1) == LUA_TTABLE, "a page without a content table");
        lua_getfield(L, 1, "hasNext");
        check(lua_type(L, -1) == LUA_TBOOLEAN, "a page without a boolean hasNext");
    }
}

static void check_failure(lua_State *L, const call_info *call, const http_response *rs)
{
    check(lua_gettop(L) == 2, "failure did not leave exactly two values");
    check(lua_isnil(L, 1), "failure whose first value is not nil");
    check(lua_type(L, 2) == LUA_TTABLE, "failure without an error table");
    check(lua_getmetatable(L, 2) != 0, "an error without a metatable");
    luaL_getmetatable(L, "orbt.error");
    check(lua_rawequal(L, -1, -2), "an error without the orbt.error metatable");
    lua_pop(L, 2);

    int is_2xx = rs->status >= 200 && rs->status < 300;
    size_t kind_len = 0, message_len = 0, code_len = 0, body_len = 0, len = 0;
    const char *kind = string_field(L, 2, "kind", &kind_len);
    check(kind != NULL, "an error without a kind");
    const char *expected = rs->result == TRANSPORT_TIMEOUT ? "timeout"
                           : rs->result == TRANSPORT_NETWORK || rs->result == TRANSPORT_CERTIFICATE ? "network"
                           : rs->result == TRANSPORT_TOO_LARGE ? (is_2xx ? "decode" : "api")
                           : rs->result == TRANSPORT_HEAD_TOO_LARGE ? "decode"
                           : is_2xx ? "decode" : "api";
    check(strcmp(kind, expected) == 0, "an error of the wrong kind");

    const char *message = string_field(L, 2, "message", &message_len);
    check(message != NULL && message_len > 0, "an error without a message");
    check(!contains_secret(message, message_len), "the secret in err.message");
    const char *code = string_field(L, 2, "code", &code_len);
    if (code != NULL) {
        check(rs->result == TRANSPORT_OK && !is_2xx, "a code outside an api answer");
        check(code_len <= 64, "err.code longer than 64 bytes");
        check(!contains_secret(code, code_len), "the secret in err.code");
    }

    const char *body = string_field(L, 2, "body", &body_len);
    if (rs->result == TRANSPORT_OK) {
        check(body != NULL, "an api or decode error without the raw body");
        check(body_len <= ERROR_BODY_MAX, "err.body longer than ERROR_BODY_MAX");
        check(!contains_secret(body, body_len), "the secret in err.body");
        /* Without the secret to scrub, err.body is the raw body's first 4 KiB. */
        if (!contains_secret(rs->body.data, rs->body.len)) {
            size_t want = rs->body.len < ERROR_BODY_MAX ? rs->body.len : ERROR_BODY_MAX;
            check(body_len == want && memcmp(body, rs->body.data, want) == 0,
                  "err.body is not the raw body");
        }
    } else {
        check(body == NULL, "err.body for a failed transfer");
    }

    lua_getfield(L, 2, "status");
    if (rs->status > 0)
        check(lua_isinteger(L, -1) && lua_tointeger(L, -1) == rs->status, "err.status is not the status");
    else
        check(lua_isnil(L, -1), "err.status without an answer");
    lua_pop(L, 1);

    lua_getfield(L, 2, "retryable");
    check(lua_type(L, -1) == LUA_TBOOLEAN, "err.retryable is not a boolean");
    check(lua_toboolean(L, -1) == expected_retryable(call->op->retry, rs->result, rs->request_sent,
                                                     rs->status, kind, body_has_code(L, &rs->body)),
          "err.retryable disagrees with the README");
    lua_pop(L, 1);

    const char *reason = string_field(L, 2, "reason", &len);
    if (strcmp(kind, "api") == 0) {
        check(reason != NULL && is_known_reason(reason), "an api error without a known reason");
        check(strcmp(reason, "insufficient_wallet_funds") != 0
                  || (call->debit && rs->status == 500 && code != NULL && strcmp(code, "SYSTEM_ERROR") == 0),
              "insufficient_wallet_funds for an answer other than a debit's 500 SYSTEM_ERROR");
        check(strcmp(reason, "idempotency_conflict") != 0 || call->op->retry == RETRY_KEYED,
              "idempotency_conflict for a call without an idempotency key");
    } else {
        check(reason == NULL, "a reason on an error that is not an api error");
    }
    lua_getfield(L, 2, "maybe_applied");
    check(lua_type(L, -1) == LUA_TBOOLEAN, "err.maybe_applied is not a boolean");
    int maybe_applied = lua_toboolean(L, -1);
    lua_pop(L, 1);
    check(maybe_applied == expected_maybe_applied(call->op->retry, rs, reason, call->applied_before),
          "err.maybe_applied disagrees with the README");
    check(!maybe_applied || strstr(message, "may have been applied") != NULL,
          "an error that may have been applied does not say so");

    const char *method = string_field(L, 2, "method", &len);
    check(method != NULL && strcmp(method, call->op->method) == 0, "err.method is not the call's");
    const char *path = string_field(L, 2, "path", &len);
    check(path != NULL && strcmp(path, call->path) == 0, "err.path is not the call's");
    const char *field = string_field(L, 2, "field", &len);
    check(field == NULL, "err.field outside an invalid error");

    const char *text = luaL_tolstring(L, 2, &len);
    check(strncmp(text, "orbt: ", 6) == 0, "tostring(err) does not start with \"orbt: \"");
    check(!contains_secret(text, len), "the secret in tostring(err)");
    lua_pop(L, 1);
}

static void run_operation(lua_State *L, const operation *op, const http_response *rs, int debit,
                          int applied_before)
{
    call_info call = {op, op->path, SECRET, sizeof SECRET - 1, 1, -1, debit && op->takes_from_wallet != NULL,
                      applied_before};
    job j = {&call, rs};
    lua_settop(L, 0);
    lua_pushcfunction(L, call_answer);
    lua_pushlightuserdata(L, &j);
    if (lua_pcall(L, 1, LUA_MULTRET, 0) != 0) {
        const char *msg = lua_tostring(L, -1);
        check(msg != NULL && strstr(msg, "not enough memory") != NULL,
              "answer_push raised an error other than out of memory");
        return;
    }
    int n = lua_gettop(L);
    check(n == 1 || n == 2, "answer_push returned neither 1 nor 2 values");
    if (n == 1)
        check_success(L, op, rs);
    else
        check_failure(L, &call, rs);
    lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t head[3] = {0, 0, 0};
    size_t skip = size < sizeof head ? size : sizeof head;
    memcpy(head, data, skip);

    http_response rs;
    memset(&rs, 0, sizeof rs);
    rs.result = (transport_result)((head[0] & 7) % 6);
    rs.request_sent = (head[0] >> 3) & 1;
    rs.resent = rs.request_sent && ((head[0] >> 5) & 1);
    rs.status = (long)(((unsigned)head[1] << 8 | head[2]) % 1000);
    snprintf(rs.message, sizeof rs.message, "%s", transport_message(rs.result));
    /* The transport collects the body in a buffer, which keeps it NUL-terminated. */
    buffer_init(&rs.body, 0);
    check(buffer_append(&rs.body, data + skip, size - skip) == 0, "buffer_append failed");

    lua_State *L = luaL_newstate();
    check(L != NULL, "luaL_newstate failed");
    error_register(L);
    for (size_t i = 0; i < orbt_operation_count; i++) {
        operation op = orbt_operations[i];
        if (op.raw) {
            /* client:request's row is a template: each call gives its
             * method, path and class, here one of each class in turn. */
            op.method = "POST";
            op.path = "/api/partner/v9/unknown";
            op.retry = (retry_class)(head[2] % 3);
        }
        run_operation(L, &op, &rs, (head[0] >> 4) & 1, (head[0] >> 6) & 1);
    }
    lua_close(L);
    buffer_free(&rs.body);
    return 0;
}
