/* config.c: orbt.from_env, described in config.h. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <lauxlib.h>

#include "client.h"
#include "compat.h"

typedef enum env_type { ENV_TEXT, ENV_SECONDS, ENV_COUNT } env_type;

typedef struct env_setting {
    const char *variable;
    const char *option;
    env_type type;
    int required;
} env_setting;

static const env_setting SETTINGS[] = {
    {"ORBT_API_KEY", "api_key", ENV_TEXT, 1},
    {"ORBT_CLIENT_ID", "client_id", ENV_TEXT, 1},
    {"ORBT_SECRET", "secret", ENV_TEXT, 1},
    {"ORBT_BASE_URL", "base_url", ENV_TEXT, 0},
    {"ORBT_TIMEOUT", "timeout", ENV_SECONDS, 0},
    {"ORBT_MAX_RETRIES", "max_retries", ENV_COUNT, 0},
    {"ORBT_PROXY", "proxy", ENV_TEXT, 0},
};

#define SETTING_COUNT (sizeof SETTINGS / sizeof SETTINGS[0])

static int refuse(lua_State *L, const char *variable, const char *message)
{
    validation_error v;
    snprintf(v.field, sizeof v.field, "%s", variable);
    snprintf(v.message, sizeof v.message, "%s", message);
    return client_invalid(L, &v, NULL, NULL);
}

/* Pushes the variable's value as the option wants it; returns 0, or 1 when
 * the text is not a value of its type (its text is never repeated). */
static int push_value(lua_State *L, const env_setting *s, const char *text)
{
    char *end = NULL;
    errno = 0;
    switch (s->type) {
    case ENV_SECONDS: {
        double seconds = strtod(text, &end);
        if (end == text || *end != '\0' || errno != 0 || !isfinite(seconds))
            return 1;
        lua_pushnumber(L, seconds);
        return 0;
    }
    case ENV_COUNT: {
        long count = strtol(text, &end, 10);
        if (end == text || *end != '\0' || errno != 0)
            return 1;
        orbt_push_int64(L, count);
        return 0;
    }
    default:
        lua_pushstring(L, text);
        return 0;
    }
}

int config_from_env(lua_State *L)
{
    lua_settop(L, 1);
    if (!lua_isnil(L, 1) && !lua_istable(L, 1))
        return refuse(L, "overrides", "orbt.from_env takes a table of orbt.new's options to use instead");
    lua_newtable(L); /* the options, at 2 */
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const env_setting *s = &SETTINGS[i];
        const char *text = getenv(s->variable);
        if (text == NULL || text[0] == '\0')
            continue;
        if (push_value(L, s, text) != 0)
            return refuse(L, s->variable,
                          lua_pushfstring(L, "%s must be %s", s->variable,
                                          s->type == ENV_SECONDS ? "a number of seconds" : "a whole number"));
        lua_setfield(L, 2, s->option);
    }
    if (lua_istable(L, 1)) {
        lua_pushnil(L);
        while (lua_next(L, 1) != 0) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_settable(L, 2);
        }
    }
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        const env_setting *s = &SETTINGS[i];
        lua_getfield(L, 2, s->option);
        int missing = s->required && lua_isnil(L, -1);
        lua_pop(L, 1);
        if (missing)
            return refuse(L, s->variable,
                          lua_pushfstring(L, "%s is not set: orbt.from_env reads the %s from it (or from its "
                                          "overrides; in nginx, pass it with an `env %s;` line)",
                                          s->variable, s->option, s->variable));
    }
    lua_replace(L, 1);
    return client_new(L);
}
