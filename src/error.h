/* error.h: orbt's error values, tables with kind/status/code/message/... and
 * a __tostring, returned as `nil, err`. */
#ifndef ORBT_ERROR_H
#define ORBT_ERROR_H

#include <stddef.h>

#include <lua.h>

/* Largest raw answer body kept in err.body. */
#define ERROR_BODY_MAX 4096

typedef struct orbt_error {
    const char *kind;     /* "invalid", "api", "network", "timeout", "decode" */
    long status;          /* HTTP status, 0 when there was no answer */
    const char *code;     /* the API's error code, or NULL */
    const char *message;  /* one human sentence */
    const char *field;    /* the offending field, for "invalid" */
    const char *body;     /* raw answer body, or NULL */
    size_t body_len;
    const char *reason;   /* api errors: what happened, read from status and code */
    int retryable;
    int maybe_applied;    /* the request reached the server and may have been applied */
    int attempts;         /* attempts made, 0 when none was (invalid) */
    double retry_after;   /* seconds the server asked to wait; ignored unless > 0 */
    const char *request_id; /* the answer's request id (x-request-id...), or NULL */
    const char *method;   /* the call this error belongs to, or NULL */
    const char *path;
} orbt_error;

/* Creates the shared metatable; call once from luaopen_orbt. */
void error_register(lua_State *L);

void error_push(lua_State *L, const orbt_error *e);

/* Makes the table at idx an error value (for errors built in Lua). */
void error_set_metatable(lua_State *L, int idx);

/* Whether the value at idx is one of orbt's error values. */
int error_is(lua_State *L, int idx);

/* Pushes nil and the error; returns 2 for `return error_return(L, &e);`. */
int error_return(lua_State *L, const orbt_error *e);

#endif
