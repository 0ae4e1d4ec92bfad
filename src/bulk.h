/* bulk.h: many calls of one operation at once (create_customers). */
#ifndef ORBT_BULK_H
#define ORBT_BULK_H

#include <lua.h>

#include "client.h"

/* client:<op.bulk>(list, {concurrency =, max_retries =, deadline =}) ->
 * results, failures. Upvalue 1 is the operation's row. */
int bulk_call(lua_State *L);

/* client:_bulk(operation, list, options): the same for any operation, by
 * name (the specs run every operation's cases through the bulk engine). */
int bulk_any(lua_State *L);

/* client:_bulk_plan(operation, list, options) -> concurrency, {max_retries
 * =, deadline =}, refusals, refused; or nil, err: what a bulk call would
 * send, read by the core for a transport written in Lua (the nginx one runs
 * the calls itself). refusals[i] is the `invalid` error of list[i] when it
 * is not to be sent (it failed validation, or shares its idempotency key
 * with an item of another payload); `refused` counts them. */
int bulk_plan(lua_State *L);

#endif
