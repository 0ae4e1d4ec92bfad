/* host.c: a C program that embeds Lua and links orbt statically, the way a
 * game or app backend would. It registers orbt in package.preload, so that
 * require("orbt") needs no orbt.so on disk, then runs a Lua script.
 *
 *   orbt-embed SCRIPT.lua
 *
 * orbt's pure-Lua layer (the files in lua/orbt/) is found on package.path, as any
 * Lua module is: ship those files with the program and point LUA_PATH (or
 * package.path, set from C) at them. Build: `make embed` (see Makefile). */
#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

/* The one function orbt exports (liborbt.a). */
int luaopen_orbt(lua_State *L);

/* package.preload works on every Lua from 5.1 and LuaJIT on; with 5.2+ a
 * host can instead call luaL_requiref(L, "orbt", luaopen_orbt, 0) to load
 * it at once. */
static void register_orbt(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_orbt);
    lua_setfield(L, -2, "orbt");
    lua_pop(L, 2);
}

/* Adds a traceback to an error (debug.traceback: luaL_traceback is 5.2+). */
static int traceback(lua_State *L)
{
    if (!lua_isstring(L, 1)) {
        lua_settop(L, 1);
        lua_getglobal(L, "tostring");
        lua_insert(L, 1);
        lua_call(L, 1, 1);
    }
    lua_getglobal(L, "debug");
    lua_getfield(L, -1, "traceback");
    lua_pushvalue(L, 1);
    lua_pushinteger(L, 2);
    lua_call(L, 2, 1);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCRIPT.lua\n", argv[0]);
        return 2;
    }
    lua_State *L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "orbt-embed: cannot create a Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
    register_orbt(L);

    lua_pushcfunction(L, traceback);
    int status = luaL_loadfile(L, argv[1]);
    if (status == 0)
        status = lua_pcall(L, 0, 0, -2);
    if (status != 0)
        fprintf(stderr, "orbt-embed: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return status == 0 ? 0 : 1;
}
