/* answer.h: turning what the transport brought back into the call's result,
 * a Lua table or `nil, err`. Status, body and transport outcome in; nothing
 * else is consulted, so another transport can feed it too. */
#ifndef ORBT_ANSWER_H
#define ORBT_ANSWER_H

#include <stddef.h>

#include <lua.h>

#include "operations.h"
#include "transport.h"

typedef struct call_info {
    const operation *op;  /* its method, answer shape and retry class */
    const char *path;     /* the path as sent, for messages */
    const char *secret;   /* scrubbed from anything the server sent back */
    size_t secret_len;
    int attempts;         /* how many were made: err.attempts */
    double retry_after;   /* seconds the server asked to wait, or -1: err.retry_after */
    int debit;            /* the call takes money from a consumer's wallet (the row says) */
    int applied_before;   /* an earlier attempt reached the server and may have been applied */
} call_info;

/* Pushes the result table and returns 1, or pushes nil and an error and returns 2. */
int answer_push(lua_State *L, const call_info *call, const http_response *rs);

/* Whether this attempt's request reached the server and may have been
 * applied (whatever the call's class): the loops that retry OR it into
 * call->applied_before, so the final error still says so when a later
 * attempt never reached the server or was refused. */
int answer_attempt_applied(const http_response *rs);

/* The kind and reason an attempt that failed would have as an error,
 * without decoding anything (for the hooks of an attempt a retry follows:
 * a transport failure, or a status the retry rules resend). Both NULL for
 * a 2xx. */
void answer_attempt_kind(const call_info *call, const http_response *rs, const char **kind,
                         const char **reason);

/* Whether the retry rules ask if this answer has an error code: only a
 * keyed call's 500 (retry.h). Decodes nothing. */
static inline int answer_code_matters(const call_info *call, const http_response *rs)
{
    return call->op->retry == RETRY_KEYED && rs->result == TRANSPORT_OK && rs->status == 500;
}

/* Whether the answer's body is a JSON error with a machine code: a `code`
 * or `errorCode` member, or `error.code` (a bare "error": "Internal Server
 * Error" is a status text, not a code). Pushes nothing; decoding
 * allocates, so the client must be marked busy. */
int answer_error_coded(lua_State *L, const http_response *rs);

#endif
