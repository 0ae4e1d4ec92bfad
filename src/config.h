/* config.h: a client configured from the environment, as production
 * deployments set it (orbt.from_env). */
#ifndef ORBT_CONFIG_H
#define ORBT_CONFIG_H

#include <lua.h>

/* orbt.from_env{...overrides} -> client, or nil, err: orbt.new's options
 * from ORBT_API_KEY, ORBT_CLIENT_ID, ORBT_SECRET (required), ORBT_BASE_URL,
 * ORBT_TIMEOUT, ORBT_MAX_RETRIES and ORBT_PROXY, with the overrides on top.
 * An error names the variable, never its value. */
int config_from_env(lua_State *L);

#endif
