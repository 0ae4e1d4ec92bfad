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

/* client:_bulk_plan(operation, list, options) -> concurrency, calls,
 * refused, refusals; or nil, err: what a bulk call sends, read and written
 * by the core for a transport written in Lua (the nginx one runs the calls
 * itself). calls[i] is list[i]'s call, written once and not yet signed, as
 * client:_prepare gives it without its wire: each attempt is a
 * client:_again (bridge.h). refusals[i] is instead the `invalid` error of
 * list[i] when it is not to be sent (it failed validation, or shares its
 * idempotency key with an item of another payload); `refused` counts them.
 * Each call carries the options' max_retries and deadline. */
int bulk_plan(lua_State *L);

#endif
