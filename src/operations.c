/* operations.c: the rows of the partner API, and how each writes its
 * query and body. */
#include "operations.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include <curl/curl.h>

#include "json.h"

/* ===== Query strings and bodies ===== */

static int write_page_query(const op_input *in, buffer *query)
{
    const page_query *q = &in->page;
    char text[64];
    int n = 0;
    if (q->has_page)
        n = snprintf(text, sizeof text, "page=%" PRId64, q->page);
    if (q->has_size)
        n += snprintf(text + n, sizeof text - (size_t)n, "%ssize=%" PRId64, n ? "&" : "", q->size);
    return n > 0 ? buffer_append(query, text, (size_t)n) : 0;
}

static int write_customer_body(const op_input *in, buffer *b)
{
    const customer_input *c = &in->customer;
    return buffer_append_str(b, "{\"fullName\":") || json_append_string(b, c->full_name.ptr, c->full_name.len)
           || buffer_append_str(b, ",\"email\":") || json_append_string(b, c->email.ptr, c->email.len)
           || buffer_append_str(b, ",\"currency\":") || json_append_string(b, c->currency.ptr, c->currency.len)
           || buffer_append_str(b, ",\"initialFunds\":") || buffer_append_str(b, c->initial_funds)
           || buffer_append_str(b, "}");
}

static int write_transaction_body(const op_input *in, buffer *b)
{
    const transaction_input *t = &in->transaction;
    int rc = buffer_append_str(b, "{\"amount\":") || buffer_append_str(b, t->amount)
             || buffer_append_str(b, ",\"transactionType\":") || json_append_string(b, t->type, strlen(t->type))
             || buffer_append_str(b, ",\"referenceId\":")
             || json_append_string(b, t->reference_id.ptr, t->reference_id.len);
    if (rc == 0 && t->description.ptr != NULL)
        rc = buffer_append_str(b, ",\"description\":")
             || json_append_string(b, t->description.ptr, t->description.len);
    return rc || buffer_append_str(b, "}");
}

/* client:request's query: its names sorted, names and values
 * percent-encoded (every byte but the unreserved ones). */
static int append_escaped(buffer *out, const char *s, size_t len)
{
    char *escaped = curl_easy_escape(NULL, s, (int)len);
    int rc = escaped != NULL ? buffer_append_str(out, escaped) : -1;
    curl_free(escaped);
    return rc;
}

typedef struct query_name {
    const char *ptr;
    size_t len;
} query_name;

static int compare_names(const void *a, const void *b)
{
    const query_name *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->ptr, y->ptr, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* A checked value: a string, a finite number or a boolean. */
static int append_query_value(lua_State *L, int idx, buffer *q)
{
    char why[64];
    size_t len = 0;
    switch (lua_type(L, idx)) {
    case LUA_TBOOLEAN:
        return buffer_append_str(q, lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TNUMBER: {
        /* As JSON writes it ("1e+21" included), then escaped like any value. */
        buffer number;
        buffer_init(&number, 0);
        int rc = json_append_value(L, idx, &number, why, sizeof why) != 0
                 || append_escaped(q, number.data, number.len) != 0;
        buffer_free(&number);
        return rc ? -1 : 0;
    }
    default: {
        const char *s = lua_tolstring(L, idx, &len); /* a string: no conversion */
        return append_escaped(q, s, len);
    }
    }
}

static int write_raw_query(const op_input *in, buffer *q)
{
    const raw_input *r = &in->raw;
    lua_State *L = r->L;
    if (r->query == 0)
        return 0;
    size_t count = 0;
    lua_pushnil(L);
    while (lua_next(L, r->query) != 0) {
        lua_pop(L, 1);
        count++;
    }
    if (count == 0)
        return 0;
    query_name *names = malloc(count * sizeof *names);
    if (names == NULL)
        return -1;
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, r->query) != 0) {
        lua_pop(L, 1);
        if (i < count) {
            names[i].ptr = lua_tolstring(L, -1, &names[i].len); /* string keys, checked: no conversion */
            i++;
        }
    }
    count = i;
    qsort(names, count, sizeof *names, compare_names);
    int rc = 0;
    for (i = 0; rc == 0 && i < count; i++) {
        lua_pushlstring(L, names[i].ptr, names[i].len);
        lua_rawget(L, r->query);
        rc = (i > 0 && buffer_append(q, "&", 1) != 0) || append_escaped(q, names[i].ptr, names[i].len) != 0
                     || buffer_append(q, "=", 1) != 0 || append_query_value(L, lua_gettop(L), q) != 0
                 ? -1
                 : 0;
        lua_pop(L, 1);
    }
    free(names);
    return rc;
}

static int write_raw_body(const op_input *in, buffer *b)
{
    const raw_input *r = &in->raw;
    char why[128];
    if (r->body_text.ptr != NULL)
        return buffer_append(b, r->body_text.ptr, r->body_text.len);
    return r->body_table != 0 ? json_append_value(r->L, r->body_table, b, why, sizeof why) : 0;
}

static const lua_text *transaction_key(const op_input *in)
{
    return &in->transaction.reference_id;
}

static int is_debit(const op_input *in)
{
    return strcmp(in->transaction.type, "DEBIT") == 0;
}

/* ===== The rows ===== */

/* A credit or a debit, as create_transaction, credit and debit send it. */
#define TRANSACTION_ROW                                                    \
    .method = "POST",                                                      \
    .path = "/api/partner/v1/wallets/{walletId}/transactions",             \
    .params = {{"walletId", PARAM_KEY}},                                   \
    .write_body = write_transaction_body,                                  \
    .answer = ANSWER_ANY,                                                  \
    .retry = RETRY_KEYED,                                                  \
    .key_name = "referenceId",                                             \
    .key_of = transaction_key,                                             \
    .takes_from_wallet = is_debit

const operation orbt_operations[] = {
    {
        .name = "create_customer",
        .method = "POST",
        .path = "/api/partner/v1/customer",
        .validate = validate_customer,
        .write_body = write_customer_body,
        .answer = ANSWER_DATA,
        .answer_id = "id",
        .retry = RETRY_CREATE,
        .bulk = "create_customers",
        .bulk_list = "customers",
    },
    {
        .name = "list_customers",
        .method = "GET",
        .path = "/api/partner/v1/customer",
        .validate = validate_page_query,
        .write_query = write_page_query,
        .answer = ANSWER_PAGE,
        .retry = RETRY_READ,
        .items = "customers",
        .pages = "customer_pages",
    },
    {
        .name = "list_wallets",
        .method = "GET",
        .path = "/api/partner/v1/customer/{customerId}/wallets",
        .params = {{"customerId", PARAM_ID}},
        .validate = validate_page_query,
        .write_query = write_page_query,
        .answer = ANSWER_PAGE,
        .retry = RETRY_READ,
        .items = "wallets",
        .pages = "wallet_pages",
    },
    {
        .name = "create_transaction",
        TRANSACTION_ROW,
        .validate = validate_transaction,
        .bulk = "create_transactions",
        .bulk_list = "transactions",
    },
    {
        .name = "credit",
        TRANSACTION_ROW,
        .validate = validate_credit,
    },
    {
        .name = "debit",
        TRANSACTION_ROW,
        .validate = validate_debit,
    },
    {
        /* Any call under /api/partner/, for endpoints orbt has no row for
         * yet: method, path and retry class come with each call. */
        .name = "request",
        .write_query = write_raw_query,
        .write_body = write_raw_body,
        .answer = ANSWER_JSON,
        .retry = RETRY_READ,
        .key_name = "request body",
        .raw = 1,
    },
};

const size_t orbt_operation_count = sizeof orbt_operations / sizeof orbt_operations[0];

const operation *operation_named(const char *name)
{
    for (size_t i = 0; i < orbt_operation_count; i++)
        if (strcmp(orbt_operations[i].name, name) == 0)
            return &orbt_operations[i];
    return NULL;
}

size_t operation_param_count(const operation *op)
{
    size_t n = 0;
    while (n < OP_PARAMS_MAX && op->params[n].name != NULL)
        n++;
    return n;
}

const char *retry_class_name(retry_class retry)
{
    switch (retry) {
    case RETRY_READ: return "read";
    case RETRY_KEYED: return "keyed";
    default: return "create";
    }
}

/* ===== Paths ===== */

static int append_param(buffer *out, const op_param *p, const param_value *v)
{
    if (p->kind == PARAM_ID) {
        char digits[24];
        int n = snprintf(digits, sizeof digits, "%" PRId64, v->id);
        return n > 0 ? buffer_append(out, digits, (size_t)n) : -1;
    }
    /* Every byte but the unreserved ones is percent-encoded, '/' included,
     * so a value stays one path segment (the validator allows none of
     * them, and no value of only dots: this is the second fence). */
    char *escaped = curl_easy_escape(NULL, v->key, (int)strlen(v->key));
    int rc = escaped != NULL ? buffer_append_str(out, escaped) : -1;
    curl_free(escaped);
    return rc;
}

int operation_fill_path(const operation *op, const param_value *params, buffer *out)
{
    const char *p = op->path;
    while (*p != '\0') {
        const char *open = strchr(p, '{');
        if (open == NULL)
            return buffer_append_str(out, p);
        const char *close = strchr(open, '}');
        if (close == NULL || buffer_append(out, p, (size_t)(open - p)) != 0)
            return -1;
        size_t name_len = (size_t)(close - open - 1);
        size_t i = 0;
        while (i < OP_PARAMS_MAX && op->params[i].name != NULL
               && !(strlen(op->params[i].name) == name_len && memcmp(op->params[i].name, open + 1, name_len) == 0))
            i++;
        if (i == OP_PARAMS_MAX || op->params[i].name == NULL
            || append_param(out, &op->params[i], &params[i]) != 0)
            return -1;
        p = close + 1;
    }
    return 0;
}
