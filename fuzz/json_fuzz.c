/* json_fuzz.c: libFuzzer target for JSON -> Lua conversion.
 *
 * Feeds the input, as is (no NUL terminator: json_push_document takes a
 * length), to json_push_document inside a real Lua 5.4 state, and checks
 * its contract: on success exactly one value is pushed, on failure nothing
 * is pushed and the reason is a non-empty string. Each run gets a fresh
 * state, closed at the end, so memory stays bounded. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "json_fuzz: invariant broken: %s\n", what);
        abort();
    }
}

/* Walks a decoded value: every key is a string, every value one of the
 * types the conversion produces, and array tables run 1..n without holes. */
static void check_value(lua_State *L, int idx, int depth)
{
    check(depth <= 1001, "decoded value nested deeper than cJSON allows");
    luaL_checkstack(L, 3, "json_fuzz");
    int type = lua_type(L, idx);
    if (type == LUA_TLIGHTUSERDATA) {
        check(lua_touserdata(L, idx) == NULL, "a light userdata other than orbt.null");
        return;
    }
    if (type == LUA_TNUMBER || type == LUA_TSTRING || type == LUA_TBOOLEAN)
        return;
    check(type == LUA_TTABLE, "a value of an unexpected Lua type");
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int ktype = lua_type(L, -2);
        check(ktype == LUA_TSTRING || (ktype == LUA_TNUMBER && lua_isinteger(L, -2)),
              "a table key that is neither a string nor an integer");
        check_value(L, -1, depth + 1);
        lua_pop(L, 1);
    }
}

static int run(lua_State *L)
{
    const uint8_t *data = lua_touserdata(L, 1);
    size_t size = (size_t)lua_tointeger(L, 2);
    lua_settop(L, 0);
    char err[128];
    memset(err, 0, sizeof err);
    int rc = json_push_document(L, (const char *)data, size, err, sizeof err);
    if (rc == 0) {
        check(lua_gettop(L) == 1, "success did not push exactly one value");
        check_value(L, 1, 0);
    } else {
        check(rc == -1, "failure did not return -1");
        check(lua_gettop(L) == 0, "failure left values on the stack");
        check(err[0] != '\0', "failure without a reason");
        check(memchr(err, '\0', sizeof err) != NULL, "reason not terminated");
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lua_State *L = luaL_newstate();
    check(L != NULL, "luaL_newstate failed");
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, (void *)data);
    lua_pushinteger(L, (lua_Integer)size);
    /* A Lua error raised inside json_push_document (it re-raises memory
     * errors) must not be taken for a crash of the target itself. */
    if (lua_pcall(L, 2, 0, 0) != 0) {
        const char *msg = lua_tostring(L, -1);
        check(msg != NULL && strstr(msg, "not enough memory") != NULL,
              "json_push_document raised an error other than out of memory");
    }
    lua_close(L);
    return 0;
}
