/* answer.c: turning what the transport brought back into the call's result. */
#include "answer.h"

#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "ascii.h"
#include "compat.h"
#include "error.h"
#include "json.h"
#include "retry.h"

#define MESSAGE_MAX 512
#define CODE_MAX 64
#define REDACTED "[REDACTED]"

/* ===== Server text ===== */

/* A secret at least this long is scrubbed wherever it appears; a shorter
 * one (a test secret, say "s") only where it stands as a whole token, so
 * that it does not turn every "s" of an error body into the marker. */
#define SCRUB_ANYWHERE_MIN 16

/* Letters, digits, '_' and any byte of a UTF-8 sequence, whatever the C
 * locale of the host program. */
static int is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ascii_is_digit((char)c) || c == '_' || c >= 0x80;
}

/* The next occurrence of the secret in s that is to be scrubbed, or NULL. */
static const char *find_secret(const char *s, size_t len, const call_info *call)
{
    size_t n = call->secret_len;
    const char *from = s;
    while (n > 0 && (size_t)(s + len - from) >= n) {
        const char *hit = memmem(from, (size_t)(s + len - from), call->secret, n);
        if (hit == NULL || n >= SCRUB_ANYWHERE_MIN)
            return hit;
        const unsigned char *first = (const unsigned char *)call->secret;
        int glued_before = hit > s && is_word_byte(first[0]) && is_word_byte((unsigned char)hit[-1]);
        int glued_after = hit + n < s + len && is_word_byte(first[n - 1]) && is_word_byte((unsigned char)hit[n]);
        if (!glued_before && !glued_after)
            return hit;
        from = hit + 1;
    }
    return NULL;
}

/* Pushes at most `limit` bytes of s, with every occurrence of the secret
 * replaced first: a misbehaving server or proxy that echoes it must not put
 * it into an error. Scrubbing before cutting means a cut cannot leave a
 * recognisable piece of the secret at the end. */
static const char *push_scrubbed(lua_State *L, const char *s, size_t len, size_t limit,
                                 const call_info *call)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    size_t n = call->secret_len;
    while (len > 0) {
        const char *hit = find_secret(s, len, call);
        size_t keep = hit != NULL ? (size_t)(hit - s) : len;
        luaL_addlstring(&b, s, keep);
        if (hit == NULL)
            break;
        luaL_addstring(&b, REDACTED);
        s = hit + n;
        len -= keep + n;
    }
    luaL_pushresult(&b);
    /* The marker next to leftover text can spell the secret again (secret
     * "]x": "]]xx" -> "][REDACTED]x"). Such text is dropped whole. */
    size_t out_len = 0;
    const char *out = lua_tolstring(L, -1, &out_len);
    if (find_secret(out, out_len, call) != NULL) {
        lua_pop(L, 1);
        lua_pushliteral(L, "");
    }
    if (lua_rawlen(L, -1) > limit) {
        lua_pushlstring(L, lua_tostring(L, -1), limit);
        lua_remove(L, -2);
    }
    return lua_tostring(L, -1);
}

/* Leaves the first of t[k1], t[k2]... that is a non-empty string or a number
 * on the stack and returns it, or pushes nothing and returns NULL. */
static const char *first_text_field(lua_State *L, int t, const char *const *keys)
{
    for (; *keys != NULL; keys++) {
        lua_getfield(L, t, *keys);
        int type = lua_type(L, -1);
        if ((type == LUA_TSTRING && lua_rawlen(L, -1) > 0) || type == LUA_TNUMBER)
            return lua_tostring(L, -1);
        lua_pop(L, 1);
    }
    return NULL;
}

/* The error body's shape is undocumented: look in the usual places. Leaves
 * the found strings (scrubbed) on the stack. */
static void read_error_fields(lua_State *L, const char *body, size_t len, const call_info *call,
                              const char **code, const char **message)
{
    static const char *const code_keys[] = {"code", "errorCode", "error", NULL};
    static const char *const message_keys[] = {"message", "errorMessage", "detail", NULL};
    static const char *const nested_code[] = {"code", NULL};
    static const char *const nested_message[] = {"message", NULL};
    char reason[128];
    *code = *message = NULL;
    if (len == 0 || json_push_document(L, body, len, reason, sizeof reason) != 0)
        return;
    int doc = lua_gettop(L);
    if (lua_type(L, doc) != LUA_TTABLE)
        return;
    lua_getfield(L, doc, "error");
    int nested = lua_gettop(L);
    int has_nested = lua_type(L, nested) == LUA_TTABLE;
    const char *found = first_text_field(L, doc, code_keys);
    if (found == NULL && has_nested)
        found = first_text_field(L, nested, nested_code);
    if (found != NULL)
        *code = push_scrubbed(L, found, lua_rawlen(L, -1), CODE_MAX, call);
    found = first_text_field(L, doc, message_keys);
    if (found == NULL && has_nested)
        found = first_text_field(L, nested, nested_message);
    if (found != NULL)
        *message = push_scrubbed(L, found, lua_rawlen(L, -1), MESSAGE_MAX, call);
    /* Text dropped whole by the scrubbing is no code or message at all. */
    if (*code != NULL && (*code)[0] == '\0')
        *code = NULL;
    if (*message != NULL && (*message)[0] == '\0')
        *message = NULL;
}

/* The raw answer body as kept in err.body: scrubbed, at most ERROR_BODY_MAX bytes. */
static const char *push_body(lua_State *L, const http_response *rs, const call_info *call)
{
    return push_scrubbed(L, rs->body.data != NULL ? rs->body.data : "", rs->body.len,
                         ERROR_BODY_MAX, call);
}

static const char *reason_phrase(long status)
{
    switch (status) {
    case 400: return "bad request";
    case 401: return "unauthorized";
    case 402: return "payment required";
    case 403: return "forbidden (authentication failed)";
    case 404: return "not found";
    case 409: return "conflict";
    case 422: return "unprocessable request";
    case 429: return "too many requests";
    case 500: return "internal server error";
    case 502: return "bad gateway";
    case 503: return "service unavailable";
    case 504: return "gateway timeout";
    default: return "unexpected HTTP status";
    }
}

static int text_equals(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* Orbt overloads its statuses (a 403 is an authentication failure or a
 * reused referenceId, a 500 a fault or a debit the wallet cannot cover), so
 * what happened is read from the status and the code together. */
static const char *api_reason(const call_info *call, long status, const char *code)
{
    retry_class retry = call->op->retry;
    if (status == 403 && retry == RETRY_KEYED && text_equals(code, "BUSINESS_RULE_ERROR"))
        return "idempotency_conflict";
    if (status == 401 || status == 403)
        return "authentication";
    if (status == 402)
        return "insufficient_partner_funds";
    if (status == 500 && call->debit && text_equals(code, "SYSTEM_ERROR"))
        return "insufficient_wallet_funds";
    if (status == 400 && retry == RETRY_CREATE && text_equals(code, "VALIDATION_ERROR"))
        return "duplicate_customer";
    if (status == 404)
        return "not_found";
    if (status == 429)
        return "rate_limited";
    if (status >= 400 && status < 500)
        return "invalid_request";
    return "server";
}

/* ===== Outcomes ===== */

/* Whether an attempt reached the server and may have been applied: its
 * connection broke or timed out after sending (or broke unanswered on a
 * kept-alive connection before it was sent again), its 2xx answer was
 * unreadable, or it got a 5xx that is not a known refusal. A 4xx or a 429
 * alone is a refusal. */
static int attempt_applied(const http_response *rs, const char *reason)
{
    if (!rs->request_sent || rs->result == TRANSPORT_CERTIFICATE)
        return 0;
    if (rs->resent || (rs->status >= 200 && rs->status < 300))
        return 1;
    if (rs->result == TRANSPORT_NETWORK || rs->result == TRANSPORT_TIMEOUT
        || rs->result == TRANSPORT_HEAD_TOO_LARGE) /* nothing of a malformed answer is trusted */
        return 1;
    return rs->status >= 500 && !text_equals(reason, "insufficient_wallet_funds");
}

int answer_attempt_applied(const http_response *rs)
{
    return attempt_applied(rs, NULL);
}

/* Whether a call that changes something (not a read) may have been applied
 * although it failed: by its last attempt, or by an earlier one. Money errs
 * on the side of "may have": the advice that follows (send it again with
 * the same key, or look before creating again) is safe either way. */
static int may_have_applied(const call_info *call, const http_response *rs, const char *reason)
{
    return call->op->retry != RETRY_READ && (call->applied_before || attempt_applied(rs, reason));
}

/* The message, with what a call that may have been applied asks of the
 * caller, said the same way on every path. */
static const char *note_applied(lua_State *L, const call_info *call, const char *message)
{
    if (strstr(message, "may have been applied") != NULL)
        return message;
    if (call->op->retry == RETRY_KEYED)
        return lua_pushfstring(L, "%s; the request reached the server and may have been applied: sending it "
                               "again with the same %s is safe", message, call->op->key_name);
    return lua_pushfstring(L, "%s; the create reached the server and may have been applied, so it was not "
                           "sent again", message);
}

static void fill_call(orbt_error *e, const call_info *call, const http_response *rs)
{
    e->status = rs->status;
    e->method = call->op->method;
    e->path = call->path;
    e->attempts = call->attempts;
    e->retry_after = call->retry_after;
    e->request_id = rs->request_id;
}

static const char *failure_kind(const http_response *rs)
{
    int is_2xx = rs->status >= 200 && rs->status < 300;
    return rs->result == TRANSPORT_TIMEOUT ? "timeout"
           : rs->result == TRANSPORT_TOO_LARGE ? (is_2xx ? "decode" : "api")
           : rs->result == TRANSPORT_HEAD_TOO_LARGE ? "decode"
           : "network";
}

void answer_attempt_kind(const call_info *call, const http_response *rs, const char **kind,
                         const char **reason)
{
    *kind = NULL;
    *reason = NULL;
    if (rs->result != TRANSPORT_OK)
        *kind = failure_kind(rs);
    else if (rs->status < 200 || rs->status >= 300)
        *kind = "api";
    if (*kind != NULL && strcmp(*kind, "api") == 0)
        *reason = api_reason(call, rs->status, NULL);
}

static int push_failure(lua_State *L, const call_info *call, const http_response *rs)
{
    int is_2xx = rs->status >= 200 && rs->status < 300;
    orbt_error e = {0};
    e.kind = failure_kind(rs);
    /* A status means the server answered: a create cut off after "200" was
     * applied even though its answer was lost. */
    fill_call(&e, call, rs);
    e.message = rs->message; /* written by the transport, which never sees the secret */
    if (rs->result == TRANSPORT_NETWORK && is_2xx)
        e.message = lua_pushfstring(L, "the server answered %d but the answer was cut off (%s)",
                                    (int)rs->status, rs->message);
    else if (rs->result == TRANSPORT_CERTIFICATE)
        e.message = lua_pushfstring(L, "%s; the certificate was not trusted, so nothing was sent, and "
                                    "trying again will not help", rs->message);
    if (strcmp(e.kind, "api") == 0)
        e.reason = api_reason(call, rs->status, NULL);
    e.maybe_applied = may_have_applied(call, rs, e.reason);
    if (e.maybe_applied)
        e.message = note_applied(L, call, e.message);
    e.retryable = retry_allowed(call->op->retry, rs->result, rs->request_sent, rs->status, 0);
    return error_return(L, &e);
}

static int push_api_error(lua_State *L, const call_info *call, const http_response *rs)
{
    orbt_error e = {0};
    e.kind = "api";
    fill_call(&e, call, rs);
    read_error_fields(L, rs->body.data, rs->body.len, call, &e.code, &e.message);
    int coded = answer_code_matters(call, rs) && answer_error_coded(L, rs);
    e.retryable = retry_allowed(call->op->retry, TRANSPORT_OK, 1, rs->status, coded);
    e.reason = api_reason(call, rs->status, e.code);
    if (e.message == NULL)
        e.message = reason_phrase(rs->status);
    e.maybe_applied = may_have_applied(call, rs, e.reason);
    if (e.maybe_applied)
        e.message = note_applied(L, call, e.message);
    e.body = push_body(L, rs, call);
    e.body_len = lua_rawlen(L, -1);
    return error_return(L, &e);
}

static int push_decode_error(lua_State *L, const call_info *call, const http_response *rs,
                             const char *why)
{
    orbt_error e = {0};
    e.kind = "decode";
    fill_call(&e, call, rs);
    e.message = why;
    e.maybe_applied = may_have_applied(call, rs, NULL);
    if (e.maybe_applied)
        e.message = note_applied(L, call, e.message);
    e.body = push_body(L, rs, call);
    e.body_len = lua_rawlen(L, -1);
    return error_return(L, &e);
}

int answer_error_coded(lua_State *L, const http_response *rs)
{
    static const char *const code_keys[] = {"code", "errorCode", NULL};
    static const char *const nested_code[] = {"code", NULL};
    char why[128];
    int top = lua_gettop(L);
    int coded = 0;
    if (rs->body.len > 0 && json_push_document(L, rs->body.data, rs->body.len, why, sizeof why) == 0
        && lua_type(L, -1) == LUA_TTABLE) {
        int doc = lua_gettop(L);
        lua_getfield(L, doc, "error");
        coded = first_text_field(L, doc, code_keys) != NULL
                || (lua_type(L, doc + 1) == LUA_TTABLE && first_text_field(L, doc + 1, nested_code) != NULL);
    }
    lua_settop(L, top);
    return coded;
}

static int field_has_type(lua_State *L, int t, const char *key, int type)
{
    lua_getfield(L, t, key);
    int ok = lua_type(L, -1) == type;
    lua_pop(L, 1);
    return ok;
}

/* An undocumented answer: the envelope's data, else the object itself. */
static void take_any(lua_State *L, int doc)
{
    lua_getfield(L, doc, "success");
    int enveloped = lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1);
    lua_pop(L, 1);
    lua_getfield(L, doc, "data");
    if (enveloped && lua_type(L, -1) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
}

/* Whether a JSON document's top value is an object: arrays decode to
 * tables too, so the text tells. */
static int is_object_text(const char *text, size_t len)
{
    size_t i = 0;
    if (text == NULL)
        return 0;
    while (i < len && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
        i++;
    return i < len && text[i] == '{';
}

/* Checks the documented shape and leaves the call's result on top. */
static const char *take_result(lua_State *L, const operation *op, const buffer *body)
{
    int doc = lua_gettop(L);
    if (op->answer == ANSWER_JSON)
        return NULL;
    if (lua_type(L, doc) != LUA_TTABLE || !is_object_text(body->data, body->len))
        return "the answer is not a JSON object";
    if (op->answer == ANSWER_ANY) {
        take_any(L, doc);
        return NULL;
    }
    if (op->answer == ANSWER_DATA) {
        lua_getfield(L, doc, "data");
        if (lua_type(L, -1) != LUA_TTABLE)
            return "the answer has no \"data\" object";
        if (op->answer_id != NULL && !field_has_type(L, -1, op->answer_id, LUA_TNUMBER))
            return lua_pushfstring(L, "the answer's data has no numeric \"%s\"", op->answer_id);
        return NULL;
    }
    if (!field_has_type(L, doc, "content", LUA_TTABLE))
        return "the answer has no \"content\" array";
    if (!field_has_type(L, doc, "hasNext", LUA_TBOOLEAN))
        return "the answer has no boolean \"hasNext\"";
    return NULL;
}

static int push_success(lua_State *L, const call_info *call, const http_response *rs)
{
    char why[128];
    int base = lua_gettop(L);
    if ((call->op->answer == ANSWER_ANY || call->op->answer == ANSWER_JSON) && rs->body.len == 0) {
        lua_newtable(L); /* nothing to read, and nothing assumed */
        return 1;
    }
    if (json_push_document(L, rs->body.data != NULL ? rs->body.data : "", rs->body.len, why, sizeof why) != 0)
        return push_decode_error(L, call, rs, why);
    const char *bad_shape = take_result(L, call->op, &rs->body);
    if (bad_shape != NULL) {
        /* The reason may live on the stack: copied before the stack is cut. */
        char reason[160];
        snprintf(reason, sizeof reason, "%s", bad_shape);
        lua_settop(L, base);
        return push_decode_error(L, call, rs, reason);
    }
    return 1;
}

int answer_push(lua_State *L, const call_info *call, const http_response *rs)
{
    if (rs->result != TRANSPORT_OK)
        return push_failure(L, call, rs);
    if (rs->status < 200 || rs->status >= 300)
        return push_api_error(L, call, rs);
    return push_success(L, call, rs);
}
