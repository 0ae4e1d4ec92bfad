/* compat.h: the one place that knows which Lua version we are built against.
 *
 * The core is written against the Lua 5.3/5.4 API. Lua 5.1 (and LuaJIT, which
 * speaks the 5.1 API) and 5.2 lack a few functions; they get small backports
 * here so that no other file needs a LUA_VERSION_NUM test. */
#ifndef ORBT_COMPAT_H
#define ORBT_COMPAT_H

#include <stdint.h>

#include <lua.h>
#include <lauxlib.h>

#if LUA_VERSION_NUM < 502
/* LuaJIT 2.1 speaks the 5.1 API but already has some of these, so each
 * backport has its own name and is mapped over the standard one. */
#ifndef lua_rawlen
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

/* luaL_setfuncs as in 5.2: register functions sharing `nup` upvalues. */
static inline void compat_setfuncs(lua_State *L, const luaL_Reg *reg, int nup)
{
    luaL_checkstack(L, nup, "too many upvalues");
    for (; reg->name != NULL; reg++) {
        for (int i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, reg->func, nup);
        lua_setfield(L, -(nup + 2), reg->name);
    }
    lua_pop(L, nup);
}
#define luaL_setfuncs compat_setfuncs

#ifndef luaL_newlib
#define luaL_newlib(L, reg) (lua_newtable(L), luaL_setfuncs((L), (reg), 0))
#endif

static inline void *compat_testudata(lua_State *L, int idx, const char *tname)
{
    void *p = lua_touserdata(L, idx);
    if (p == NULL || !lua_getmetatable(L, idx))
        return NULL;
    luaL_getmetatable(L, tname);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}
#define luaL_testudata compat_testudata

static inline void compat_setmetatable(lua_State *L, const char *tname)
{
    luaL_getmetatable(L, tname);
    lua_setmetatable(L, -2);
}
#define luaL_setmetatable compat_setmetatable

static inline int compat_absindex(lua_State *L, int idx)
{
    return (idx > 0 || idx <= LUA_REGISTRYINDEX) ? idx : lua_gettop(L) + idx + 1;
}
#define lua_absindex compat_absindex
#endif

/* Anchors the value at the top of the stack to the userdata at idx (its
 * user value; on 5.1 its environment table), and pops it: the value then
 * lives at least as long as the userdata. */
static inline void orbt_anchor_to(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
#if LUA_VERSION_NUM >= 502
    lua_setuservalue(L, idx);
#else
    lua_createtable(L, 1, 0);
    lua_insert(L, -2);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, idx);
#endif
}

/* Pops a table and makes it the uservalue (5.1: environment) of the
 * userdata at idx; orbt_push_uservalue pushes it back. */
static inline void orbt_set_uservalue(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
#if LUA_VERSION_NUM >= 502
    lua_setuservalue(L, idx);
#else
    lua_setfenv(L, idx);
#endif
}

static inline void orbt_push_uservalue(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 502
    lua_getuservalue(L, idx);
#else
    lua_getfenv(L, idx);
#endif
}

/* Pushes the global `name` without running a metamethod: programs that
 * guard their globals (strict.lua) raise on an undeclared read. */
static inline void orbt_raw_global(lua_State *L, const char *name)
{
#if LUA_VERSION_NUM >= 502
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
#else
    lua_pushvalue(L, LUA_GLOBALSINDEX);
#endif
    lua_pushstring(L, name);
    lua_rawget(L, -2);
    lua_remove(L, -2);
}

/* Runtimes with a separate integer subtype (5.3+) get integers; the others
 * get a double, which is exact for every integer up to 2^53. */
static inline void orbt_push_int64(lua_State *L, int64_t v)
{
#if LUA_VERSION_NUM >= 503
    lua_pushinteger(L, (lua_Integer)v);
#else
    lua_pushnumber(L, (lua_Number)v);
#endif
}

/* True when the value at idx is of type number with an integral value that
 * fits in int64. Strings that look like numbers are not accepted. */
static inline int orbt_to_int64(lua_State *L, int idx, int64_t *out)
{
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, idx)) {
        *out = (int64_t)lua_tointeger(L, idx);
        return 1;
    }
#endif
    lua_Number n = lua_tonumber(L, idx);
    /* -2^63 <= n < 2^63, and no fractional part (NaN fails both tests). */
    if (!(n >= -9223372036854775808.0 && n < 9223372036854775808.0))
        return 0;
    if ((lua_Number)(int64_t)n != n)
        return 0;
    *out = (int64_t)n;
    return 1;
}

/* True when the number at idx is stored as an integer (always false before 5.3). */
static inline int orbt_is_integer(lua_State *L, int idx)
{
#if LUA_VERSION_NUM >= 503
    return lua_isinteger(L, idx);
#else
    (void)L;
    (void)idx;
    return 0;
#endif
}

#endif
