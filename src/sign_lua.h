/* sign_lua.h: orbt.sign, signing for an HTTP client of the user's own. */
#ifndef ORBT_SIGN_LUA_H
#define ORBT_SIGN_LUA_H

#include <lua.h>

/* Sets orbt.sign and orbt.reference_id in the module table at the top of the stack. */
void sign_lua_register(lua_State *L);

#endif
