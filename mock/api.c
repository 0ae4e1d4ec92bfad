/* The partner API endpoints (after authentication): create and list consumers. */
#include "api.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store.h"
#include "util.h"

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
    if (!cJSON_IsNumber(funds) || !isfinite(funds->valuedouble) || funds->valuedouble < 0)
        return "initialFunds must be a number >= 0";
    if (funds->valuedouble > (double)MONEY_MAX_WHOLE)
        return "initialFunds must not exceed 1000000000000";
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

static void create_from(const cJSON *doc, struct reply *out)
{
    const char *why = check_fields(doc);
    if (why) {
        validation_error(out, why);
        return;
    }
    const char *name = cJSON_GetObjectItemCaseSensitive(doc, "fullName")->valuestring;
    const char *email = cJSON_GetObjectItemCaseSensitive(doc, "email")->valuestring;
    const char *currency = cJSON_GetObjectItemCaseSensitive(doc, "currency")->valuestring;
    double amount = cJSON_GetObjectItemCaseSensitive(doc, "initialFunds")->valuedouble;
    int64_t funds = llround(amount * (double)MICRO), id = 0, balance = 0;
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

static void create_customer(const struct request *rq, struct reply *out)
{
    if (rq->content_type == NULL || strncasecmp(rq->content_type, "application/json", 16) != 0) {
        reply_error(out, 415, "UNSUPPORTED_MEDIA_TYPE", "Content-Type must be application/json");
        return;
    }
    if (rq->body_too_large) {
        reply_error(out, 413, "PAYLOAD_TOO_LARGE", "request body exceeds 1 MiB");
        return;
    }
    /* cJSON stops at a NUL byte, which would hide trailing garbage. */
    cJSON *doc = memchr(rq->body, '\0', rq->body_len) ? NULL
                                                      : cJSON_ParseWithOpts(rq->body, NULL, 1);
    if (!cJSON_IsObject(doc))
        validation_error(out, "body must be a JSON object");
    else
        create_from(doc, out);
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
    cJSON_AddNumberToObject(item, "totalStandardWallets", 1);
    cJSON_AddNumberToObject(item, "totalCampaignWallets", 0);
    return item;
}

static void list_customers(const struct request *rq, struct reply *out)
{
    unsigned long long page = 0, size = SIZE_DEFAULT;
    if (!query_uint(rq, "page", 0, PAGE_MAX, &page)) {
        reply_error(out, 422, "INVALID_QUERY_PARAMETER", "page must be an integer >= 0");
        return;
    }
    if (!query_uint(rq, "size", 1, SIZE_MAX_ALLOWED, &size)) {
        reply_error(out, 422, "INVALID_QUERY_PARAMETER",
                    "size must be an integer between 1 and 50");
        return;
    }
    struct consumer *items;
    size_t total, n = store_page(page, size, &items, &total);
    cJSON *doc = cJSON_CreateObject();
    cJSON *content = cJSON_AddArrayToObject(doc, "content");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(content, consumer_json(&items[i]));
    store_free_page(items, n);
    cJSON_AddNumberToObject(doc, "page", (double)page);
    cJSON_AddNumberToObject(doc, "size", (double)size);
    cJSON_AddBoolToObject(doc, "hasNext", (page + 1) * size < total);
    reply_json(out, 200, doc);
}

void api_handle(const struct request *rq, struct reply *out)
{
    if (strcmp(rq->path, CUSTOMER_PATH) != 0) {
        reply_error(out, 404, "NOT_FOUND", "no such endpoint");
    } else if (strcmp(rq->method, "GET") == 0) {
        list_customers(rq, out);
    } else if (strcmp(rq->method, "POST") == 0) {
        create_customer(rq, out);
    } else {
        reply_error(out, 405, "METHOD_NOT_ALLOWED", "method not allowed; use GET or POST");
        out->allow = "GET, POST";
    }
}
