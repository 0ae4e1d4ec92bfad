/* operations.h: the partner API's operations as data. Each row says what
 * an operation sends and how its answer and its failures are read; the
 * client's methods, the nginx transport's list of operations, the
 * iterators of the pure-Lua layer and the retry rules all come from these
 * rows. A new endpoint is a row, its validator (validate.c), its body
 * writer (operations.c) if it has a body, orbt-mock's handler and specs. */
#ifndef ORBT_OPERATIONS_H
#define ORBT_OPERATIONS_H

#include <stddef.h>

#include "buffer.h"
#include "retry.h"
#include "validate.h"

/* How a 2xx answer is read. */
typedef enum answer_shape {
    ANSWER_DATA,    /* {"success": true, "data": {...}}: the call returns data */
    ANSWER_PAGE,    /* {"content": [...], "hasNext": bool, ...}: the call returns the page */
    ANSWER_ANY,     /* undocumented: `data` of a {"success": true, "data": {...}} envelope,
                       else the object itself; an empty body is an empty table */
    ANSWER_JSON     /* client:request: the document as it is, of any shape; an empty body
                       is an empty table */
} answer_shape;

#define OP_PARAMS_MAX 2

typedef struct op_param {
    const char *name;          /* as in the path template: {customerId} */
    param_kind kind;
} op_param;

typedef struct operation {
    const char *name;          /* the client's method: "list_customers" */
    const char *method;        /* "GET" or "POST" */
    const char *path;          /* template: "/api/partner/v1/customer/{customerId}/wallets" */
    op_param params[OP_PARAMS_MAX];   /* the template's parameters, in argument order */
    int (*validate)(lua_State *L, int idx, op_input *in, validation_error *err);
    /* Appends the query string (without '?'), or NULL for none. */
    int (*write_query)(const op_input *in, buffer *query);
    /* Appends the JSON body, byte for byte as it is signed and sent, or NULL for none. */
    int (*write_body)(const op_input *in, buffer *body);
    answer_shape answer;
    const char *answer_id;     /* ANSWER_DATA: a number `data` must have, or NULL */
    retry_class retry;
    /* RETRY_KEYED: the body field that is the idempotency key ("referenceId"),
     * and where the validator put its value. */
    const char *key_name;
    const lua_text *(*key_of)(const op_input *in);
    /* Whether a call takes money out of a consumer's wallet (a debit), for
     * the error reasons (Orbt answers 500 when the wallet cannot cover it);
     * NULL: never. */
    int (*takes_from_wallet)(const op_input *in);
    const char *items;         /* page operations: the iterator over items ("customers") */
    const char *pages;         /* and the one over pages ("customer_pages") */
    const char *bulk;          /* many at once: the method ("create_customers") */
    const char *bulk_list;     /* and what its list holds ("customers"), for errors */
    int raw;                   /* client:request: each call gives its method, path, query, body
                                  and retry class (validate_raw_request); the row is a template */
} operation;

extern const operation orbt_operations[];
extern const size_t orbt_operation_count;

/* The row named `name`, or NULL. */
const operation *operation_named(const char *name);

size_t operation_param_count(const operation *op);

/* Appends the path with each {name} replaced by its value (params in the
 * row's order), percent-encoded. Returns 0, or -1 when out cannot grow. */
int operation_fill_path(const operation *op, const param_value *params, buffer *out);

/* The retry class's name, as the Lua layer sees it. */
const char *retry_class_name(retry_class retry);

#endif
