/* bridge.h: the core's side of a transport written in Lua (nginx
 * cosockets): _prepare, _answer, _settings and _tunnel (bridge.c). */
#ifndef ORBT_BRIDGE_H
#define ORBT_BRIDGE_H

#include <lua.h>

#include "client.h"

/* Pushes a call written but not yet signed, as client:_prepare returns one
 * without its wire: each attempt, the first included, is a client:_again.
 * The client is at stack index 1 (not from inside a lua_pcall). For the
 * bulk plan (bulk.c). */
void bridge_push_call(lua_State *L, orbt_client *c, const operation *op, const call_limits *limits,
                      const char *path, const buffer *target, const buffer *body, int debit);

/* Adds the bridge's methods to the client method table at the top of the stack. */
void bridge_register(lua_State *L);

#endif
