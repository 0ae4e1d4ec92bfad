/* bridge.h: the core's side of a transport written in Lua (nginx
 * cosockets): _prepare, _answer, _settings and _tunnel (bridge.c). */
#ifndef ORBT_BRIDGE_H
#define ORBT_BRIDGE_H

#include <lua.h>

#include "client.h"

/* Adds the bridge's methods to the client method table at the top of the stack. */
void bridge_register(lua_State *L);

#endif
