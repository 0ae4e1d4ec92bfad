/* The wallet endpoints: a consumer's wallets, and credits and debits
 * applied once per referenceId. The success body of a transaction is not
 * documented by Orbt; orbt-mock's is {"success": true, "data": {...}}. */
#include "wallets.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "util.h"

/* ===== Wallets ===== */

cJSON *wallet_json(const struct wallet *w)
{
    char money[MONEY_BUF];
    money_format(w->balance, money);
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "walletId", w->id);
    cJSON_AddStringToObject(item, "currency", w->currency);
    cJSON_AddRawToObject(item, "balance", money);   /* 50.00, not 50 */
    cJSON_AddStringToObject(item, "walletType", w->campaign ? "CAMPAIGN" : "STANDARD");
    if (w->campaign) {
        cJSON_AddStringToObject(item, "campaignId", w->campaign_id);
        cJSON_AddStringToObject(item, "campaignName", w->campaign_name);
    }
    cJSON_AddStringToObject(item, "status", "ENABLED");
    return item;
}

void wallets_list(const struct request *rq, const char *customer, struct reply *out)
{
    unsigned long long id = 0, page, size;
    char message[96];
    if (!parse_uint(customer, INT64_MAX, &id) || id == 0) {
        reply_error(out, 422, "INVALID_CONSUMER_ID", "the consumer id must be a positive integer");
        return;
    }
    if (!api_page_query(rq, out, &page, &size))
        return;
    struct wallet *items;
    size_t n, total;
    if (!store_wallet_page((int64_t)id, page, size, &items, &n, &total)) {
        snprintf(message, sizeof message, "no consumer with id %llu", id);
        reply_error(out, 422, "INVALID_CONSUMER_ID", message);
        return;
    }
    cJSON *content = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(content, wallet_json(&items[i]));
    store_free_wallets(items, n);
    api_reply_page(out, content, page, size, total);
}

/* ===== Transactions ===== */

/* Returns the message for the first invalid field, or NULL; fills rq. */
static const char *read_transaction(const struct request *http, const cJSON *doc, struct tx_request *rq)
{
    static const char *const known[] = {"amount", "transactionType", "referenceId", "description", NULL};
    for (const cJSON *it = doc->child; it != NULL; it = it->next) {
        const char *const *k = known;
        while (*k != NULL && strcmp(*k, it->string) != 0)
            k++;
        if (*k == NULL)
            return "unknown field in the transaction";
    }
    const cJSON *amount = cJSON_GetObjectItemCaseSensitive(doc, "amount");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(doc, "transactionType");
    const cJSON *reference = cJSON_GetObjectItemCaseSensitive(doc, "referenceId");
    const cJSON *description = cJSON_GetObjectItemCaseSensitive(doc, "description");
    /* Read from the number's text: money never goes through a double. */
    if (!cJSON_IsNumber(amount) || !money_member(http->body, http->body_len, "amount", &rq->amount)
        || rq->amount <= 0)
        return "amount must be a number greater than 0 with at most 6 decimals, at most 1000000000000";
    if (!cJSON_IsString(type) || (strcmp(type->valuestring, "CREDIT") != 0 && strcmp(type->valuestring, "DEBIT") != 0))
        return "transactionType must be CREDIT or DEBIT";
    rq->debit = strcmp(type->valuestring, "DEBIT") == 0;
    if (!cJSON_IsString(reference) || reference->valuestring[0] == '\0')
        return "referenceId must be a non-empty string";
    rq->reference = reference->valuestring;
    if (description != NULL && !cJSON_IsNull(description) && !cJSON_IsString(description))
        return "description must be a string";
    rq->description = description != NULL && cJSON_IsString(description) ? description->valuestring : NULL;
    return NULL;
}

static void iso_time(int64_t ms, char out[32])
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&seconds, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static void reply_transaction(struct reply *out, const struct tx_record *r)
{
    char id[32], amount[MONEY_BUF], balance[MONEY_BUF], created[32];
    snprintf(id, sizeof id, "txn-%06lld", (long long)r->id);
    money_format(r->amount, amount);
    money_format(r->balance, balance);
    iso_time(r->created_ms, created);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddTrueToObject(doc, "success");
    cJSON *data = cJSON_AddObjectToObject(doc, "data");
    cJSON_AddStringToObject(data, "transactionId", id);
    cJSON_AddStringToObject(data, "walletId", r->wallet_id);
    cJSON_AddStringToObject(data, "transactionType", r->debit ? "DEBIT" : "CREDIT");
    cJSON_AddRawToObject(data, "amount", amount);
    cJSON_AddStringToObject(data, "referenceId", r->reference);
    if (r->description != NULL)
        cJSON_AddStringToObject(data, "description", r->description);
    cJSON_AddRawToObject(data, "balance", balance);
    cJSON_AddStringToObject(data, "createdAt", created);
    reply_json(out, 200, doc);
}

static void reply_refusal(struct reply *out, enum tx_result result, const struct tx_request *rq,
                          int64_t short_of)
{
    char message[256], have[MONEY_BUF], want[MONEY_BUF];
    money_format(short_of, have);
    money_format(rq->amount, want);
    switch (result) {
    case TX_CONFLICT:
        snprintf(message, sizeof message, "referenceId %.128s was already used with a different payload",
                 rq->reference);
        reply_error(out, 403, "BUSINESS_RULE_ERROR", message);
        break;
    case TX_NO_WALLET:
        snprintf(message, sizeof message, "no wallet with id %.64s", rq->wallet_id);
        reply_error(out, 404, "NOT_FOUND", message);
        break;
    case TX_PARTNER_SHORT:
        snprintf(message, sizeof message, "insufficient funds: partner balance %s cannot cover %s", have, want);
        reply_error(out, 402, "BUSINESS_RULE_ERROR", message);
        break;
    default: /* TX_WALLET_SHORT: Orbt documents a 500 for it */
        snprintf(message, sizeof message, "insufficient wallet balance: wallet %.64s has %s, cannot debit %s",
                 rq->wallet_id, have, want);
        reply_error(out, 500, "SYSTEM_ERROR", message);
        break;
    }
}

void wallets_transact(const struct request *rq, const char *wallet, struct reply *out)
{
    cJSON *doc = api_json_body(rq, out);
    if (doc == NULL)
        return;
    struct tx_request tx = {.wallet_id = wallet};
    const char *why = read_transaction(rq, doc, &tx);
    if (why != NULL) {
        reply_error(out, 400, "VALIDATION_ERROR", why);
        cJSON_Delete(doc);
        return;
    }
    struct tx_record record = {0};
    int64_t short_of = 0;
    enum tx_result result = store_transact(&tx, &record, &short_of);
    if (result == TX_APPLIED || result == TX_REPLAYED)
        reply_transaction(out, &record);
    else
        reply_refusal(out, result, &tx, short_of);
    store_free_record(&record);
    cJSON_Delete(doc);
}
