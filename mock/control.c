/* The loopback-only /__mock control path: stats, reset, recent requests,
 * faults, and campaign wallets. */
#include "control.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "fault.h"
#include "generation.h"
#include "stats.h"
#include "store.h"
#include "util.h"
#include "wallets.h"

#define RECENT_DEFAULT 64
#define CAMPAIGN_WALLETS_MAX 10000

static const struct mock_config *cfg;

void control_init(const struct mock_config *c)
{
    cfg = c;
}

bool control_path(const char *path)
{
    return strcmp(path, "/__mock") == 0 || strncmp(path, "/__mock/", 8) == 0;
}

static void bad_request(struct reply *out, const char *message)
{
    reply_error(out, 400, "VALIDATION_ERROR", message);
}

/* Requests as stats.c counts them, and the money as the store keeps it:
 * movements are transactions applied, so "exactly once" can be checked. */
static void get_stats(struct reply *out)
{
    struct store_summary sum;
    char money[MONEY_BUF];
    cJSON *doc = stats_json();
    store_summary(&sum);
    money_format(sum.balance, money);
    cJSON_AddNumberToObject(doc, "consumers", (double)sum.consumers);
    cJSON_AddStringToObject(doc, "balance", money);
    cJSON_AddNumberToObject(doc, "wallets", (double)sum.wallets);
    cJSON_AddNumberToObject(doc, "movements", (double)sum.movements);
    cJSON_AddNumberToObject(doc, "credits", (double)sum.credits);
    cJSON_AddNumberToObject(doc, "debits", (double)sum.debits);
    cJSON_AddNumberToObject(doc, "replays", (double)sum.replays);
    reply_json(out, 200, doc);
}

static void post_reset(const struct request *rq, struct reply *out)
{
    int64_t balance = cfg->balance;
    const char *text;
    if (request_arg(rq, "balance", &text) && (text == NULL || !money_parse(text, &balance))) {
        bad_request(out, "balance must be a decimal amount like 123.45");
        return;
    }
    /* One step for every request: each sees all of the old state or all of
     * the new, and the old ones still pending are dropped (see server.c). */
    generation_reset_begin();
    store_reset(balance);
    stats_reset();
    fault_clear();
    generation_reset_end();
    reply_ok(out);
}

static void get_requests(const struct request *rq, struct reply *out)
{
    unsigned long long limit = RECENT_DEFAULT;
    const char *text;
    if (request_arg(rq, "limit", &text) && !parse_uint(text, 1000000, &limit)) {
        bad_request(out, "limit must be a non-negative integer");
        return;
    }
    reply_json(out, 200, stats_recent_json((size_t)limit));
}

static void post_fault(const struct request *rq, struct reply *out)
{
    if (rq->body_too_large) {
        reply_error(out, 413, "PAYLOAD_TOO_LARGE", "request body exceeds 1 MiB");
        return;
    }
    cJSON *doc = memchr(rq->body, '\0', rq->body_len) ? NULL
                                                      : cJSON_ParseWithOpts(rq->body, NULL, 1);
    struct fault f;
    const char *why;
    if (doc == NULL)
        bad_request(out, "fault must be a JSON object");
    else if (!fault_parse(doc, &f, &why))
        bad_request(out, why);
    else if (!fault_push(&f)) {
        fault_free(&f);
        bad_request(out, "too many queued faults");
    } else
        reply_ok(out);
    cJSON_Delete(doc);
}

static const char *optional_text(const cJSON *doc, const char *key, const char *otherwise)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(doc, key);
    return cJSON_IsString(it) ? it->valuestring : it == NULL ? otherwise : NULL;
}

/* {"customerId": 101, "currency": "USD", "campaignId": "C1", "campaignName":
 * "Spring", "balance": "10.00", "count": 1}: adds `count` CAMPAIGN wallets
 * (campaign ids and names get "-2", "-3"... after the first) and answers
 * {"walletIds": [...]}. The balance is given, not drawn from the partner. */
static void post_wallets(const struct request *rq, struct reply *out)
{
    cJSON *doc = memchr(rq->body, '\0', rq->body_len) ? NULL : cJSON_ParseWithOpts(rq->body, NULL, 1);
    const cJSON *customer = cJSON_GetObjectItemCaseSensitive(doc, "customerId");
    const cJSON *count_item = cJSON_GetObjectItemCaseSensitive(doc, "count");
    const char *currency = optional_text(doc, "currency", "USD");
    const char *campaign = optional_text(doc, "campaignId", "CAMPAIGN-1");
    const char *name = optional_text(doc, "campaignName", "Campaign");
    const char *balance_text = optional_text(doc, "balance", "0.00");
    double count = count_item == NULL ? 1 : cJSON_IsNumber(count_item) ? count_item->valuedouble : 0;
    int64_t balance = 0;
    if (!cJSON_IsObject(doc) || !cJSON_IsNumber(customer) || customer->valuedouble < 1
        || customer->valuedouble > 9007199254740992.0 || customer->valuedouble != floor(customer->valuedouble))
        bad_request(out, "customerId must be a consumer's id");
    else if (currency == NULL || strlen(currency) != 3 || campaign == NULL || name == NULL)
        bad_request(out, "currency, campaignId and campaignName must be strings");
    else if (balance_text == NULL || !money_parse(balance_text, &balance))
        bad_request(out, "balance must be a decimal amount like 123.45, as a string");
    else if (count < 1 || count > CAMPAIGN_WALLETS_MAX || count != floor(count))
        bad_request(out, "count must be an integer from 1 to 10000");
    else {
        cJSON *answer = cJSON_CreateObject();
        cJSON *ids = cJSON_AddArrayToObject(answer, "walletIds");
        for (int i = 0; i < (int)count; i++) {
            char id[WALLET_ID_MAX], campaign_i[160], name_i[160];
            snprintf(campaign_i, sizeof campaign_i, i == 0 ? "%.100s" : "%.100s-%d", campaign, i + 1);
            snprintf(name_i, sizeof name_i, i == 0 ? "%.100s" : "%.100s %d", name, i + 1);
            if (!store_add_campaign_wallet((int64_t)customer->valuedouble, currency, campaign_i, name_i,
                                           balance, id))
                break;
            cJSON_AddItemToArray(ids, cJSON_CreateString(id));
        }
        if (cJSON_GetArraySize(ids) == 0) {
            cJSON_Delete(answer);
            bad_request(out, "no consumer has that customerId");
        } else {
            reply_json(out, 200, answer);
        }
    }
    cJSON_Delete(doc);
}

/* ?id=WALLET: the wallet as the API lists it. */
static void get_wallet(const struct request *rq, struct reply *out)
{
    const char *id;
    struct wallet *w;
    if (!request_arg(rq, "id", &id) || id == NULL)
        bad_request(out, "id names the wallet");
    else if (!store_wallet(id, &w))
        reply_error(out, 404, "NOT_FOUND", "no such wallet");
    else {
        reply_json(out, 200, wallet_json(w));
        store_free_wallets(w, 1);
    }
}

static void method_not_allowed(struct reply *out, const char *allow)
{
    reply_error(out, 405, "METHOD_NOT_ALLOWED", "method not allowed");
    out->allow = allow;
}

void control_handle(const struct request *rq, struct reply *out)
{
    const char *p = rq->path, *m = rq->method;
    if (!strcmp(p, "/__mock/stats")) {
        if (!strcmp(m, "GET")) get_stats(out);
        else method_not_allowed(out, "GET");
    } else if (!strcmp(p, "/__mock/reset")) {
        if (!strcmp(m, "POST")) post_reset(rq, out);
        else method_not_allowed(out, "POST");
    } else if (!strcmp(p, "/__mock/requests")) {
        if (!strcmp(m, "GET")) get_requests(rq, out);
        else method_not_allowed(out, "GET");
    } else if (!strcmp(p, "/__mock/wallets")) {
        if (!strcmp(m, "POST")) post_wallets(rq, out);
        else if (!strcmp(m, "GET")) get_wallet(rq, out);
        else method_not_allowed(out, "GET, POST");
    } else if (!strcmp(p, "/__mock/faults")) {
        if (!strcmp(m, "POST")) post_fault(rq, out);
        else if (!strcmp(m, "DELETE")) { fault_clear(); reply_ok(out); }
        else method_not_allowed(out, "POST, DELETE");
    } else {
        reply_error(out, 404, "NOT_FOUND", "no such control endpoint");
    }
}
