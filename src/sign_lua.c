/* sign_lua.c: orbt.sign{method=, body=, client_id=, api_key=, secret=,
 * timestamp=} -> the five authentication headers, for users with an HTTP
 * client of their own. */
#include "sign_lua.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <openssl/crypto.h>

#include "client.h"
#include "compat.h"
#include "sign.h"
#include "validate.h"

static void set_header_field(lua_State *L, const char *name, const char *value, size_t len)
{
    lua_pushlstring(L, value, len);
    lua_setfield(L, -2, name);
}

/* orbt.sign keeps the HMAC key of the last secret it was given, so that
 * signing many requests with one secret derives the key once. It lives in an
 * upvalue of orbt.sign (one per Lua state) and is wiped when the secret
 * changes and when the state closes. */
#define SIGN_CACHE_METATABLE "orbt.sign_cache"

typedef struct sign_cache {
    char *secret;
    size_t secret_len;
    sign_key *key;
} sign_cache;

static void sign_cache_clear(sign_cache *cache)
{
    if (cache->secret != NULL) {
        sign_wipe(cache->secret, cache->secret_len);
        free(cache->secret);
    }
    sign_key_free(cache->key);
    cache->secret = NULL;
    cache->secret_len = 0;
    cache->key = NULL;
}

static int sign_cache_gc(lua_State *L)
{
    sign_cache_clear(luaL_checkudata(L, 1, SIGN_CACHE_METATABLE));
    return 0;
}

/* The key for this secret, from the cache or derived and cached. */
static sign_key *sign_cache_key(sign_cache *cache, const lua_text *secret)
{
    if (cache->key != NULL && cache->secret_len == secret->len
        && CRYPTO_memcmp(cache->secret, secret->ptr, secret->len) == 0)
        return cache->key;
    sign_cache_clear(cache);
    cache->secret = malloc(secret->len + 1);
    cache->key = sign_key_new(secret->ptr, secret->len);
    if (cache->secret == NULL || cache->key == NULL) {
        sign_cache_clear(cache);
        return NULL;
    }
    memcpy(cache->secret, secret->ptr, secret->len);
    cache->secret_len = secret->len;
    return cache->key;
}

/* orbt.sign{method=, body=, client_id=, api_key=, secret=, timestamp=} ->
 * the five authentication headers, for users with an HTTP client of their own. */
static int orbt_sign(lua_State *L)
{
    sign_cache *cache = lua_touserdata(L, lua_upvalueindex(1));
    sign_input in;
    validation_error v;
    if (!validate_sign_input(L, 1, &in, &v))
        return client_invalid(L, &v, NULL, NULL);
    char method[17];
    for (size_t i = 0; i <= in.method.len; i++)
        method[i] = (char)toupper((unsigned char)in.method.ptr[i]);
    char timestamp[SIGN_TIMESTAMP_LEN + 1];
    if (in.timestamp.ptr != NULL)
        memcpy(timestamp, in.timestamp.ptr, SIGN_TIMESTAMP_LEN + 1);
    else if (sign_timestamp_now(timestamp) != 0)
        return luaL_error(L, "orbt: cannot read the clock");
    char body_hash[SIGN_B64_LEN + 1];
    char signature[SIGN_B64_LEN + 1];
    sign_key *key = sign_cache_key(cache, &in.secret);
    if (key == NULL || sign_body_hash(in.body.ptr, in.body.len, body_hash) != 0
        || sign_signature(key, method, timestamp, in.client_id.ptr, body_hash, signature) != 0)
        return luaL_error(L, "orbt: could not sign (OpenSSL failure)");
    lua_createtable(L, 0, 5);
    set_header_field(L, "x-api-key", in.api_key.ptr, in.api_key.len);
    set_header_field(L, "x-client-id", in.client_id.ptr, in.client_id.len);
    set_header_field(L, "x-timestamp", timestamp, SIGN_TIMESTAMP_LEN);
    set_header_field(L, "x-body-hash", body_hash, SIGN_B64_LEN);
    set_header_field(L, "x-signature", signature, SIGN_B64_LEN);
    return 1;
}

/* orbt.reference_id() -> a fresh random UUID, an idempotency key for a
 * caller whose own domain has none. */
static int orbt_reference_id(lua_State *L)
{
    char id[SIGN_UUID_LEN + 1];
    if (sign_uuid4(id) != 0)
        return luaL_error(L, "orbt: OpenSSL could not give random bytes for a reference id");
    lua_pushlstring(L, id, SIGN_UUID_LEN);
    return 1;
}

void sign_lua_register(lua_State *L)
{
    lua_pushcfunction(L, orbt_reference_id);
    lua_setfield(L, -2, "reference_id");
    sign_cache *cache = lua_newuserdata(L, sizeof *cache);
    memset(cache, 0, sizeof *cache);
    luaL_newmetatable(L, SIGN_CACHE_METATABLE);
    lua_pushcfunction(L, sign_cache_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_pushcclosure(L, orbt_sign, 1);
    lua_setfield(L, -2, "sign");
}
