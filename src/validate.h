/* validate.h: every rule checked before a request leaves the process. Each
 * validator reads a Lua argument table into a C struct or says which field
 * is wrong and why. Strings in the structs point at values the validator
 * leaves on the Lua stack, so they stay valid until the calling C function
 * returns (and not after). */
#ifndef ORBT_VALIDATE_H
#define ORBT_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include <lua.h>

#include "json.h"
#include "retry.h"
#include "url.h"

#define VALIDATION_MESSAGE_MAX 192

typedef struct validation_error {
    char field[64];
    char message[VALIDATION_MESSAGE_MAX];
} validation_error;

typedef struct lua_text {
    const char *ptr;
    size_t len;
} lua_text;

/* Which byte transport a client uses: libcurl, nginx cosockets, or cosockets
 * wherever nginx allows them and libcurl elsewhere. */
typedef enum transport_choice {
    TRANSPORT_CHOICE_AUTO = 0,
    TRANSPORT_CHOICE_CURL,
    TRANSPORT_CHOICE_COSOCKET
} transport_choice;

typedef struct client_options {
    lua_text api_key, client_id, secret;
    url_parts base;            /* base_url, read (free with client_options_free) */
    double timeout, connect_timeout;
    size_t max_body;
    int allow_insecure_http;
    transport_choice transport;
    int max_retries;
    double deadline;
    lua_text ca_file;          /* ptr NULL: the system's CAs */
    char *proxy;               /* the proxy URL from the option or the environment, or NULL */
    url_parts proxy_parts;     /* its parts, when proxy is not NULL */
    lua_text proxy_ca_file;    /* ptr NULL: the system's CAs */
    char **id_headers;         /* where answers carry a request id: request_id_headers, then
                                  http1's defaults; lower case, NULL-terminated, owned */
    int send_request_id;       /* send a fresh x-request-id with each attempt */
    int pool_size;             /* cosockets: connections per keep-alive pool, per worker */
    int pool_backlog;          /* cosockets: calls that wait for a pooled connection; -1: none wait */
} client_options;

/* Frees a list of request-id header names from client_options. */
void id_headers_free(char **names);

/* Why a client with these options cannot use nginx cosockets (a CA file, a
 * SOCKS proxy, TLS inside TLS...): writes the message into `message` and
 * returns the option it names, or returns NULL when cosockets can carry it.
 * transport = "cosocket" is refused at orbt.new for it; "auto" at the call. */
const char *client_options_cosocket_refusal(const client_options *o, char *message, size_t size);

/* Frees what validate_client_options allocated (safe after a failure). */
void client_options_free(client_options *o);

/* Per-call limits: the client's, or a call's own second argument. */
typedef struct call_limits {
    int max_retries;
    double deadline;       /* seconds for the whole call, retries included */
} call_limits;

typedef struct customer_input {
    lua_text full_name, email, currency;
    char initial_funds[JSON_NUMBER_MAX + 32]; /* JSON number text, sent verbatim */
} customer_input;

typedef struct page_query {
    int64_t page, size;
    int has_page, has_size;
} page_query;

typedef struct transaction_input {
    char amount[JSON_NUMBER_MAX + 32];  /* JSON number text, sent verbatim */
    const char *type;                   /* "CREDIT" or "DEBIT" */
    lua_text reference_id;
    lua_text description;               /* ptr NULL: none */
} transaction_input;

/* What an operation's arguments table says, read by its validator: one
 * member per kind of operation (operations.h). */
/* client:request(method, path, opts): what the caller gives, checked. The
 * query and a table body stay Lua tables on the stack until written. */
typedef struct raw_input {
    lua_State *L;
    const char *method;        /* "GET", "POST", "PUT", "PATCH" or "DELETE" */
    lua_text path;             /* /api/partner/..., as given */
    int query;                 /* stack index of opts.query, or 0 */
    lua_text body_text;        /* opts.body as JSON text, or ptr NULL */
    int body_table;            /* stack index of opts.body as a table, or 0 */
    retry_class retry;         /* opts.idempotency, or read for GET and create for the rest */
} raw_input;

typedef union op_input {
    customer_input customer;
    page_query page;
    transaction_input transaction;
    raw_input raw;
} op_input;

/* The kinds of value a path parameter takes. */
typedef enum param_kind {
    PARAM_ID,      /* {customerId}: an integer >= 1, or a string of its digits */
    PARAM_KEY      /* {walletId}: 1..PARAM_KEY_MAX of [A-Za-z0-9._-] (not only dots), or an
                      integer, sent as its digits */
} param_kind;

#define PARAM_KEY_MAX 64

typedef struct param_value {
    int64_t id;                   /* PARAM_ID */
    char key[PARAM_KEY_MAX + 1];  /* PARAM_KEY */
} param_value;

typedef struct sign_input {
    lua_text method, body, client_id, api_key, secret, timestamp; /* timestamp.ptr NULL: now */
} sign_input;

/* Each returns 1 when valid, else 0 with err filled in. `idx` is the argument
 * table's stack index. */
int validate_client_options(lua_State *L, int idx, client_options *out, validation_error *err);
int validate_customer(lua_State *L, int idx, op_input *in, validation_error *err);
int validate_page_query(lua_State *L, int idx, op_input *in, validation_error *err);
/* A credit or debit: create_transaction's table names its transactionType;
 * credit's and debit's must not, as the method says which. */
int validate_transaction(lua_State *L, int idx, op_input *in, validation_error *err);
int validate_credit(lua_State *L, int idx, op_input *in, validation_error *err);
int validate_debit(lua_State *L, int idx, op_input *in, validation_error *err);
/* A method's positional path parameter. */
int validate_path_param(lua_State *L, int idx, const char *name, param_kind kind, param_value *out,
                        validation_error *err);
int validate_sign_input(lua_State *L, int idx, sign_input *out, validation_error *err);
/* out holds the client's limits on entry; a call's options override them.
 * Nothing (none or nil) at idx keeps them. */
int validate_call_limits(lua_State *L, int idx, call_limits *out, validation_error *err);

/* client:request's method (at idx), path (idx + 1) and options (idx + 2):
 * {query, body, idempotency, max_retries, deadline, on_request,
 * on_response}. The path must start with /api/partner/ and hold only path
 * characters: no scheme, host, query, fragment, "." or ".." segment, so
 * credentials cannot be sent elsewhere. Limits go into *limits. */
int validate_raw_request(lua_State *L, int idx, raw_input *out, call_limits *limits, validation_error *err);
/* create_customers' options: concurrency (1..BULK_CONCURRENCY_MAX, default
 * BULK_CONCURRENCY_DEFAULT) and the call limits, which apply to each item. */
int validate_bulk_options(lua_State *L, int idx, int *concurrency, call_limits *limits,
                          validation_error *err);

#define BULK_CONCURRENCY_DEFAULT 8
#define BULK_CONCURRENCY_MAX 64

/* Largest page size of the list endpoints. */
#define PAGE_SIZE_MAX 50

/* A transaction's referenceId: 1..REFERENCE_ID_MAX printable ASCII
 * characters, no spaces. Its description: at most DESCRIPTION_MAX
 * characters (code points) of UTF-8 text. */
#define REFERENCE_ID_MAX 128
#define DESCRIPTION_MAX 255

/* Longest credential or header value accepted. */
#define HEADER_VALUE_MAX 200

#endif
