/* The partner API endpoints (after authentication): create and list
 * consumers, and the routing to the wallet endpoints (wallets.c). */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "store.h"
#include "util.h"
#include "wallets.h"

#define PAGE_MAX 2147483647ULL
#define SIZE_DEFAULT 20
#define SIZE_MAX_ALLOWED 50

static void validation_error(struct reply *out, const char *message)
{
    reply_error(out, 400, "VALIDATION_ERROR", message);
}

static bool is_currency(const char *s)
{
    for (int i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    return s[3] == '\0';
}

/* Returns the message for the first invalid field, or NULL. */
static const char *check_fields(const cJSON *doc)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(doc, "fullName");
    const cJSON *email = cJSON_GetObjectItemCaseSensitive(doc, "email");
    const cJSON *currency = cJSON_GetObjectItemCaseSensitive(doc, "currency");
    const cJSON *funds = cJSON_GetObjectItemCaseSensitive(doc, "initialFunds");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return "fullName must be a non-empty string";
    if (!cJSON_IsString(email) || strchr(email->valuestring, '@') == NULL)
        return "email must be a string containing '@'";
    if (!cJSON_IsString(currency) || !is_currency(currency->valuestring))
        return "currency must be three upper-case letters (ISO 4217)";
    if (!cJSON_IsNumber(funds))
        return "initialFunds must be a number >= 0";
    return NULL;
}

static void created(struct reply *out, int64_t id, const char *name, const char *email,
                    const char *currency, int64_t funds)
{
    char id_text[24], money[MONEY_BUF];
    snprintf(id_text, sizeof id_text, "%lld", (long long)id);
    money_format(funds, money);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddTrueToObject(doc, "success");
    cJSON *data = cJSON_AddObjectToObject(doc, "data");
    cJSON_AddNumberToObject(data, "id", (double)id);
    cJSON_AddStringToObject(data, "walletId", id_text);
    cJSON_AddStringToObject(data, "fullName", name);
    cJSON_AddStringToObject(data, "email", email);
    cJSON_AddRawToObject(data, "walletBalance", money);   /* 50.00, not 50 */
    cJSON_AddStringToObject(data, "currency", currency);
    reply_json(out, 200, doc);
}

static void create_from(const struct request *rq, const cJSON *doc, struct reply *out)
{
    const char *why = check_fields(doc);
    int64_t funds = 0, id = 0, balance = 0;
    if (why == NULL && !money_member(rq->body, rq->body_len, "initialFunds", &funds))
        why = "initialFunds must be a number >= 0 with at most 6 decimals, at most 1000000000000";
    if (why) {
        validation_error(out, why);
        return;
    }
    const char *name = cJSON_GetObjectItemCaseSensitive(doc, "fullName")->valuestring;
    const char *email = cJSON_GetObjectItemCaseSensitive(doc, "email")->valuestring;
    const char *currency = cJSON_GetObjectItemCaseSensitive(doc, "currency")->valuestring;
    char message[160], have[MONEY_BUF], want[MONEY_BUF];
    switch (store_create(name, email, currency, funds, &id, &balance)) {
    case STORE_OK:
        created(out, id, name, email, currency, funds);
        break;
    case STORE_DUPLICATE:
        snprintf(message, sizeof message, "this email already has a wallet in %s", currency);
        validation_error(out, message);
        break;
    case STORE_INSUFFICIENT:
        money_format(balance, have);
        money_format(funds, want);
        snprintf(message, sizeof message,
                 "insufficient funds: partner balance %s cannot cover %s", have, want);
        reply_error(out, 402, "BUSINESS_RULE_ERROR", message);
        break;
    }
}

cJSON *api_json_body(const struct request *rq, struct reply *out)
{
    if (rq->content_type == NULL || strncasecmp(rq->content_type, "application/json", 16) != 0) {
        reply_error(out, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
        return NULL;
    }
    if (rq->body_too_large) {
        reply_error(out, 413, "PAYLOAD_TOO_LARGE", "request body exceeds 1 MiB");
        return NULL;
    }
    /* cJSON stops at a NUL byte, which would hide trailing garbage. */
    cJSON *doc = memchr(rq->body, '\0', rq->body_len) ? NULL
                                                      : cJSON_ParseWithOpts(rq->body, NULL, 1);
    if (!cJSON_IsObject(doc)) {
        validation_error(out, "body must be a JSON object");
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

static void create_customer(const struct request *rq, struct reply *out)
{
    cJSON *doc = api_json_body(rq, out);
    if (doc != NULL)
        create_from(rq, doc, out);
    cJSON_Delete(doc);
}

/* Reads an optional integer query argument; false when present but invalid. */
static bool query_uint(const struct request *rq, const char *key, unsigned long long min,
                       unsigned long long max, unsigned long long *value)
{
    const char *text;
    if (!request_arg(rq, key, &text))
        return true;
    return parse_uint(text, max, value) && *value >= min;
}

static cJSON *consumer_json(const struct consumer *c)
{
    cJSON *item = cJSON_CreateObject();
    cJSON_AddNumberToObject(item, "consumerId", (double)c->id);
    cJSON_AddStringToObject(item, "consumerName", c->name);
    cJSON_AddStringToObject(item, "consumerEmail", c->email);
    cJSON_AddNumberToObject(item, "totalStandardWallets", (double)c->standard);
    cJSON_AddNumberToObject(item, "totalCampaignWallets", (double)c->campaign);
    return item;
}

bool api_page_query(const struct request *rq, struct reply *out, unsigned long long *page,
                    unsigned long long *size)
{
    *page = 0;
    *size = SIZE_DEFAULT;
    if (!query_uint(rq, "page", 0, PAGE_MAX, page)) {
        reply_error(out, 422, "INVALID_QUERY_PARAMETER", "page must be an integer >= 0");
        return false;
    }
    if (!query_uint(rq, "size", 1, SIZE_MAX_ALLOWED, size)) {
        reply_error(out, 422, "INVALID_QUERY_PARAMETER",
                    "size must be an integer between 1 and 50");
        return false;
    }
    return true;
}

void api_reply_page(struct reply *out, cJSON *content, unsigned long long page, unsigned long long size,
                    size_t total)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "content", content);
    cJSON_AddNumberToObject(doc, "page", (double)page);
    cJSON_AddNumberToObject(doc, "size", (double)size);
    cJSON_AddBoolToObject(doc, "hasNext", (page + 1) * size < total);
    reply_json(out, 200, doc);
}

static void list_customers(const struct request *rq, struct reply *out)
{
    unsigned long long page, size;
    if (!api_page_query(rq, out, &page, &size))
        return;
    struct consumer *items;
    size_t total, n = store_page(page, size, &items, &total);
    cJSON *content = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(content, consumer_json(&items[i]));
    store_free_page(items, n);
    api_reply_page(out, content, page, size, total);
}

static void method_not_allowed(struct reply *out, const char *allow)
{
    reply_error(out, 405, "METHOD_NOT_ALLOWED", "method not allowed");
    out->allow = allow;
}

/* What lies between prefix and suffix in path: one non-empty segment, or NULL. */
static char *path_segment(const char *path, const char *prefix, const char *suffix)
{
    size_t plen = strlen(prefix), slen = strlen(suffix), len = strlen(path);
    if (len <= plen + slen || strncmp(path, prefix, plen) != 0 || strcmp(path + len - slen, suffix) != 0)
        return NULL;
    const char *start = path + plen;
    size_t n = len - plen - slen;
    if (memchr(start, '/', n) != NULL)
        return NULL;
    return xmemdup(start, n);
}

void api_handle(const struct request *rq, struct reply *out)
{
    bool get = strcmp(rq->method, "GET") == 0, post = strcmp(rq->method, "POST") == 0;
    char *customer = path_segment(rq->path, CUSTOMER_PATH "/", "/wallets");
    char *wallet = path_segment(rq->path, WALLETS_PATH "/", "/transactions");
    if (strcmp(rq->path, CUSTOMER_PATH) == 0) {
        if (get)
            list_customers(rq, out);
        else if (post)
            create_customer(rq, out);
        else
            method_not_allowed(out, "GET, POST");
    } else if (customer != NULL) {
        if (get)
            wallets_list(rq, customer, out);
        else
            method_not_allowed(out, "GET");
    } else if (wallet != NULL) {
        if (post)
            wallets_transact(rq, wallet, out);
        else
            method_not_allowed(out, "POST");
    } else {
        reply_error(out, 404, "NOT_FOUND", "no such endpoint");
    }
    free(customer);
    free(wallet);
}
