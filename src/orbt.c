/* orbt.c: the Lua module. luaopen_orbt registers what the other files
 * offer: a method per operation row (client.c), the bulk methods (bulk.c),
 * the bridge for transports written in Lua (bridge.c), orbt.sign
 * (sign_lua.c), and the pure-Lua layer, which reads the same rows. */
#include <lauxlib.h>
#include <lua.h>

#include "bridge.h"
#include "bulk.h"
#include "client.h"
#include "compat.h"
#include "config.h"
#include "error.h"
#include "json.h"
#include "operations.h"
#include "sign_lua.h"
#include "transport.h"
#include "version.h"

/* ===== The operations, for the Lua layer ===== */

static void set_optional(lua_State *L, const char *key, const char *value)
{
    if (value != NULL) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

/* orbt's rows as Lua tables: {name, method, path, params = {...}, retry,
 * answer ("data", "page" or "any"), key, items, pages, bulk, bulk_list}. */
static void push_operations(lua_State *L)
{
    lua_createtable(L, (int)orbt_operation_count, 0);
    for (size_t i = 0; i < orbt_operation_count; i++) {
        const operation *op = &orbt_operations[i];
        lua_createtable(L, 0, 11);
        set_optional(L, "name", op->name);
        set_optional(L, "method", op->method);
        set_optional(L, "path", op->path);
        set_optional(L, "retry", retry_class_name(op->retry));
        set_optional(L, "answer", op->answer == ANSWER_PAGE ? "page" : op->answer == ANSWER_ANY ? "any"
                                  : op->answer == ANSWER_JSON ? "json" : "data");
        set_optional(L, "key", op->key_name);
        set_optional(L, "items", op->items);
        set_optional(L, "pages", op->pages);
        set_optional(L, "bulk", op->bulk);
        set_optional(L, "bulk_list", op->bulk_list);
        size_t nparams = operation_param_count(op);
        lua_createtable(L, (int)nparams, 0);
        for (size_t k = 0; k < nparams; k++) {
            lua_pushstring(L, op->params[k].name);
            lua_rawseti(L, -2, (int)k + 1);
        }
        lua_setfield(L, -2, "params");
        lua_rawseti(L, -2, (int)i + 1);
    }
}

/* ===== The client's methods ===== */

/* A method per operation, and a bulk method for those that have one; each
 * closes over its row. */
static void register_operations(lua_State *L)
{
    for (size_t i = 0; i < orbt_operation_count; i++) {
        const operation *op = &orbt_operations[i];
        lua_pushlightuserdata(L, (void *)op);
        lua_pushcclosure(L, client_call, 1);
        lua_setfield(L, -2, op->name);
        if (op->bulk != NULL) {
            lua_pushlightuserdata(L, (void *)op);
            lua_pushcclosure(L, bulk_call, 1);
            lua_setfield(L, -2, op->bulk);
        }
    }
}

/* Gives a table of error fields the error metatable, so that errors made in
 * the Lua layer print and behave like the core's. */
static int make_error(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    error_set_metatable(L, 1);
    return 1;
}

/* Calls require(name).install(methods, make_error, operations); the table
 * of methods is at -2 and the operations at -1. */
static void install_lua_module(lua_State *L, const char *name)
{
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "install");
    lua_pushvalue(L, -4);
    lua_pushcfunction(L, make_error);
    lua_pushvalue(L, -5);
    lua_call(L, 3, 0);
    lua_pop(L, 1);
}

/* ===== Module functions ===== */

/* orbt.is_error(v): whether v is one of orbt's error values, for telling
 * apart the results of create_customers. */
static int orbt_is_error(lua_State *L)
{
    lua_pushboolean(L, lua_istable(L, 1) && error_is(L, 1));
    return 1;
}

static const luaL_Reg module_functions[] = {
    {"new", client_new},
    {"from_env", config_from_env},
    {"is_error", orbt_is_error},
    {NULL, NULL},
};

/* ===== Initialisation ===== */

/* The one exported symbol: everything else is hidden (-fvisibility=hidden),
 * so our helper names cannot clash with a host program's. */
__attribute__((visibility("default"))) int luaopen_orbt(lua_State *L);

int luaopen_orbt(lua_State *L)
{
    if (transport_global_init() != 0)
        return luaL_error(L, "orbt: libcurl failed to initialise");
    error_register(L);

    lua_newtable(L); /* the client's methods */
    register_operations(L);
    lua_pushcfunction(L, bulk_any);
    lua_setfield(L, -2, "_bulk");
    lua_pushcfunction(L, bulk_plan);
    lua_setfield(L, -2, "_bulk_plan");
    bridge_register(L);
    push_operations(L);
    /* The nginx transport (lua/orbt/cosocket.lua) wraps the operations'
     * methods when running inside nginx; the pager (lua/orbt/pager.lua)
     * adds an iterator pair for every page operation. */
    install_lua_module(L, "orbt.cosocket");
    install_lua_module(L, "orbt.pager");
    lua_pop(L, 1);
    client_register(L);
    lua_pop(L, 1);

    luaL_newlib(L, module_functions);
    sign_lua_register(L);
    json_push_null(L);
    lua_setfield(L, -2, "null");
    lua_pushliteral(L, ORBT_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushliteral(L, "orbt");
    lua_setfield(L, -2, "_NAME");
    return 1;
}
