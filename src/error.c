/* error.c: orbt's error values. */
#include "error.h"

#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "compat.h"

#define ERROR_METATABLE "orbt.error"

static void set_string(lua_State *L, const char *key, const char *value)
{
    if (value != NULL && value[0] != '\0') {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

void error_push(lua_State *L, const orbt_error *e)
{
    lua_createtable(L, 0, 13);
    set_string(L, "kind", e->kind);
    set_string(L, "code", e->code);
    set_string(L, "message", e->message);
    set_string(L, "field", e->field);
    set_string(L, "method", e->method);
    set_string(L, "path", e->path);
    set_string(L, "reason", e->reason);
    if (e->request_id != NULL && e->request_id[0] != '\0')
        set_string(L, "request_id", e->request_id);
    if (e->status > 0) {
        orbt_push_int64(L, e->status);
        lua_setfield(L, -2, "status");
    }
    if (e->body != NULL) {
        lua_pushlstring(L, e->body, e->body_len > ERROR_BODY_MAX ? ERROR_BODY_MAX : e->body_len);
        lua_setfield(L, -2, "body");
    }
    lua_pushboolean(L, e->retryable);
    lua_setfield(L, -2, "retryable");
    lua_pushboolean(L, e->maybe_applied);
    lua_setfield(L, -2, "maybe_applied");
    if (e->attempts > 0) {
        orbt_push_int64(L, e->attempts);
        lua_setfield(L, -2, "attempts");
    }
    if (e->retry_after > 0) {
        if (e->retry_after == floor(e->retry_after))
            orbt_push_int64(L, (int64_t)e->retry_after);
        else
            lua_pushnumber(L, e->retry_after);
        lua_setfield(L, -2, "retry_after");
    }
    error_set_metatable(L, -1);
}

void error_set_metatable(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    luaL_getmetatable(L, ERROR_METATABLE);
    lua_setmetatable(L, idx);
}

int error_return(lua_State *L, const orbt_error *e)
{
    lua_pushnil(L);
    error_push(L, e);
    return 2;
}

static const char *field_string(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the table still holds the string */
    return s;
}

/* API errors read "orbt: 402 BUSINESS_RULE_ERROR: insufficient funds (POST /path)";
 * the others "orbt: <kind>: <message> (POST /path)", with "HTTP <status>, "
 * before the call when there was an answer; ", request id <id>" ends the
 * parenthesis when the answer carried one. */
static int error_tostring(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *kind = field_string(L, 1, "kind");
    const char *code = field_string(L, 1, "code");
    const char *message = field_string(L, 1, "message");
    const char *method = field_string(L, 1, "method");
    const char *path = field_string(L, 1, "path");
    const char *request_id = field_string(L, 1, "request_id");
    lua_getfield(L, 1, "status");
    int status = lua_type(L, -1) == LUA_TNUMBER ? (int)lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    int is_api = kind != NULL && strcmp(kind, "api") == 0;

    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "orbt: ");
    if (is_api && status > 0) {
        lua_pushfstring(L, "%d ", status);
        luaL_addvalue(&b);
    } else {
        luaL_addstring(&b, kind != NULL ? kind : "error");
        luaL_addstring(&b, ": ");
    }
    if (code != NULL) {
        luaL_addstring(&b, code);
        luaL_addstring(&b, ": ");
    }
    luaL_addstring(&b, message != NULL ? message : "unknown error");
    if (!is_api && status > 0 && method != NULL && path != NULL)
        lua_pushfstring(L, " (HTTP %d, %s %s", status, method, path);
    else if (method != NULL && path != NULL)
        lua_pushfstring(L, " (%s %s", method, path);
    else
        lua_pushliteral(L, "");
    luaL_addvalue(&b);
    if (request_id != NULL)
        lua_pushfstring(L, "%srequest id %s)", method != NULL && path != NULL ? ", " : " (", request_id);
    else
        lua_pushstring(L, method != NULL && path != NULL ? ")" : "");
    luaL_addvalue(&b);
    luaL_pushresult(&b);
    return 1;
}

int error_is(lua_State *L, int idx)
{
    if (!lua_getmetatable(L, idx))
        return 0;
    luaL_getmetatable(L, ERROR_METATABLE);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same;
}

void error_register(lua_State *L)
{
    luaL_newmetatable(L, ERROR_METATABLE);
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}
