/* In-memory state of the partner: consumers, wallets, transactions and the
 * partner balance, under one lock. */
#include "store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "index.h"
#include "util.h"

#define FIRST_ID 101

struct consumer_entry {
    struct consumer c;
    size_t *wallets;        /* positions in S.wallets, oldest first */
    size_t nwallets, cap;
};

/* Consumers in creation order, so a consumer's id gives its position. */
static struct {
    pthread_mutex_t mu;
    struct consumer_entry *consumers;
    size_t nconsumers, consumers_cap;
    struct index by_email;          /* (lower-case email, currency) -> consumer */
    struct wallet *wallets;
    size_t nwallets, wallets_cap;
    struct index by_wallet_id;
    struct tx_record *txs;
    size_t ntxs, txs_cap;
    struct index by_reference;
    size_t credits, debits, replays;
    int64_t campaign_wallets_made;  /* for their ids */
    int64_t balance;
    int64_t next_id;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Grows an array of `size`-byte elements to hold one more. */
static void *room_for_one(void *v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return v;
    *cap = *cap ? *cap * 2 : 64;
    return xrealloc(v, *cap * size);
}

/* ===== Keys ===== */

struct email_key {
    const char *email, *currency;
};

static uint64_t email_hash(const char *email, const char *currency)
{
    uint64_t h = INDEX_HASH_START;
    for (const char *p = email; *p; p++) {
        char lower = (char)tolower((unsigned char)*p);
        h = index_hash(h, &lower, 1);
    }
    return index_hash(h, currency, strlen(currency));
}

static bool email_matches(size_t pos, const void *key)
{
    const struct email_key *k = key;
    const struct consumer *c = &S.consumers[pos].c;
    return strcasecmp(c->email, k->email) == 0 && strcmp(c->currency, k->currency) == 0;
}

static uint64_t text_hash(const char *s)
{
    return index_hash(INDEX_HASH_START, s, strlen(s));
}

static bool wallet_id_matches(size_t pos, const void *key)
{
    return strcmp(S.wallets[pos].id, key) == 0;
}

static bool reference_matches(size_t pos, const void *key)
{
    return strcmp(S.txs[pos].reference, key) == 0;
}

static size_t find_wallet_locked(const char *id)
{
    return index_find(&S.by_wallet_id, text_hash(id), wallet_id_matches, id);
}

static struct consumer_entry *find_consumer_locked(int64_t id)
{
    if (id < FIRST_ID || (uint64_t)(id - FIRST_ID) >= S.nconsumers)
        return NULL;
    return &S.consumers[id - FIRST_ID];
}

/* How many of `total` items page `page` of `size` holds; it starts at
 * page * size. Division avoids overflow of page * size for absurd page
 * numbers. */
static size_t page_slice(size_t total, uint64_t page, uint64_t size)
{
    if (size == 0 || page >= (total + size - 1) / size)
        return 0;
    size_t first = (size_t)(page * size);
    return total - first < size ? total - first : (size_t)size;
}

/* ===== Life ===== */

static void clear_locked(int64_t balance)
{
    for (size_t i = 0; i < S.nconsumers; i++) {
        free(S.consumers[i].c.name);
        free(S.consumers[i].c.email);
        free(S.consumers[i].wallets);
    }
    for (size_t i = 0; i < S.nwallets; i++) {
        free(S.wallets[i].campaign_id);
        free(S.wallets[i].campaign_name);
    }
    for (size_t i = 0; i < S.ntxs; i++)
        store_free_record(&S.txs[i]);
    free(S.consumers);
    free(S.wallets);
    free(S.txs);
    S.consumers = NULL;
    S.wallets = NULL;
    S.txs = NULL;
    S.nconsumers = S.consumers_cap = S.nwallets = S.wallets_cap = S.ntxs = S.txs_cap = 0;
    index_clear(&S.by_email);
    index_clear(&S.by_wallet_id);
    index_clear(&S.by_reference);
    S.credits = S.debits = S.replays = 0;
    S.campaign_wallets_made = 0;
    S.balance = balance;
    S.next_id = FIRST_ID;
}

void store_init(int64_t balance)
{
    pthread_mutex_lock(&S.mu);
    clear_locked(balance);
    pthread_mutex_unlock(&S.mu);
}

void store_reset(int64_t balance)
{
    store_init(balance);
}

void store_shutdown(void)
{
    pthread_mutex_lock(&S.mu);
    clear_locked(0);
    index_free(&S.by_email);
    index_free(&S.by_wallet_id);
    index_free(&S.by_reference);
    pthread_mutex_unlock(&S.mu);
}

/* ===== Wallets ===== */

static size_t add_wallet_locked(struct consumer_entry *owner, const char *id, const char *currency,
                                int64_t balance, const char *campaign_id, const char *campaign_name)
{
    S.wallets = room_for_one(S.wallets, S.nwallets, &S.wallets_cap, sizeof *S.wallets);
    size_t pos = S.nwallets++;
    struct wallet *w = &S.wallets[pos];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->currency, sizeof w->currency, "%s", currency);
    w->customer = owner->c.id;
    w->balance = balance;
    w->campaign = campaign_id != NULL;
    w->campaign_id = campaign_id ? xstrdup(campaign_id) : NULL;
    w->campaign_name = campaign_name ? xstrdup(campaign_name) : NULL;
    index_add(&S.by_wallet_id, text_hash(w->id), pos);
    owner->wallets = room_for_one(owner->wallets, owner->nwallets, &owner->cap, sizeof *owner->wallets);
    owner->wallets[owner->nwallets++] = pos;
    if (w->campaign)
        owner->c.campaign++;
    else
        owner->c.standard++;
    return pos;
}

static void copy_wallet(const struct wallet *w, struct wallet *out)
{
    *out = *w;
    out->campaign_id = w->campaign_id ? xstrdup(w->campaign_id) : NULL;
    out->campaign_name = w->campaign_name ? xstrdup(w->campaign_name) : NULL;
}

bool store_wallet_page(int64_t customer, uint64_t page, uint64_t size, struct wallet **items, size_t *n,
                       size_t *total)
{
    pthread_mutex_lock(&S.mu);
    const struct consumer_entry *owner = find_consumer_locked(customer);
    *n = *total = 0;
    *items = NULL;
    if (owner != NULL) {
        *total = owner->nwallets;
        *n = page_slice(owner->nwallets, page, size);
        *items = xcalloc(*n, sizeof **items);
        for (size_t i = 0; i < *n; i++)
            copy_wallet(&S.wallets[owner->wallets[(size_t)(page * size) + i]], &(*items)[i]);
    }
    pthread_mutex_unlock(&S.mu);
    return owner != NULL;
}

bool store_wallet(const char *id, struct wallet **out)
{
    pthread_mutex_lock(&S.mu);
    size_t pos = find_wallet_locked(id);
    if (pos != SIZE_MAX) {
        *out = xcalloc(1, sizeof **out);
        copy_wallet(&S.wallets[pos], *out);
    }
    pthread_mutex_unlock(&S.mu);
    return pos != SIZE_MAX;
}

void store_free_wallets(struct wallet *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].campaign_id);
        free(items[i].campaign_name);
    }
    free(items);
}

bool store_add_campaign_wallet(int64_t customer, const char *currency, const char *campaign_id,
                               const char *campaign_name, int64_t balance, char id_out[WALLET_ID_MAX])
{
    pthread_mutex_lock(&S.mu);
    struct consumer_entry *owner = find_consumer_locked(customer);
    if (owner != NULL) {
        snprintf(id_out, WALLET_ID_MAX, "cw-%lld", (long long)++S.campaign_wallets_made);
        add_wallet_locked(owner, id_out, currency, balance, campaign_id, campaign_name ? campaign_name : "");
    }
    pthread_mutex_unlock(&S.mu);
    return owner != NULL;
}

/* ===== Consumers ===== */

static void append_locked(const char *name, const char *email, const char *currency, int64_t funds)
{
    S.consumers = room_for_one(S.consumers, S.nconsumers, &S.consumers_cap, sizeof *S.consumers);
    size_t pos = S.nconsumers++;
    struct consumer_entry *e = &S.consumers[pos];
    memset(e, 0, sizeof *e);
    e->c.id = S.next_id++;
    e->c.name = xstrdup(name);
    e->c.email = xstrdup(email);
    snprintf(e->c.currency, sizeof e->c.currency, "%s", currency);
    e->c.funds = funds;
    index_add(&S.by_email, email_hash(email, currency), pos);
    char id[WALLET_ID_MAX];
    snprintf(id, sizeof id, "%lld", (long long)e->c.id);
    add_wallet_locked(e, id, currency, funds, NULL, NULL);
}

enum store_result store_create(const char *name, const char *email, const char *currency,
                               int64_t funds, int64_t *id, int64_t *balance)
{
    enum store_result r = STORE_OK;
    struct email_key key = {email, currency};
    pthread_mutex_lock(&S.mu);
    if (index_find(&S.by_email, email_hash(email, currency), email_matches, &key) != SIZE_MAX) {
        r = STORE_DUPLICATE;
    } else if (funds > S.balance) {
        r = STORE_INSUFFICIENT;
    } else {
        S.balance -= funds;
        append_locked(name, email, currency, funds);
        *id = S.consumers[S.nconsumers - 1].c.id;
    }
    *balance = S.balance;
    pthread_mutex_unlock(&S.mu);
    return r;
}

size_t store_page(uint64_t page, uint64_t size, struct consumer **items, size_t *total)
{
    pthread_mutex_lock(&S.mu);
    *total = S.nconsumers;
    size_t count = page_slice(S.nconsumers, page, size);
    *items = xcalloc(count, sizeof **items);
    for (size_t i = 0; i < count; i++) {
        const struct consumer *c = &S.consumers[(size_t)(page * size) + i].c;
        (*items)[i] = *c;
        (*items)[i].name = xstrdup(c->name);
        (*items)[i].email = xstrdup(c->email);
    }
    pthread_mutex_unlock(&S.mu);
    return count;
}

void store_free_page(struct consumer *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(items[i].name);
        free(items[i].email);
    }
    free(items);
}

/* ===== Transactions ===== */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool same_text(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* Whether a recorded transaction is the one asked for again. */
static bool same_payload(const struct tx_record *r, const struct tx_request *rq)
{
    return strcmp(r->wallet_id, rq->wallet_id) == 0 && r->debit == rq->debit && r->amount == rq->amount
           && same_text(r->description, rq->description);
}

static void copy_record(const struct tx_record *r, struct tx_record *out)
{
    *out = *r;
    out->reference = xstrdup(r->reference);
    out->description = r->description ? xstrdup(r->description) : NULL;
}

static void record_locked(const struct tx_request *rq, const struct wallet *w, struct tx_record *out)
{
    S.txs = room_for_one(S.txs, S.ntxs, &S.txs_cap, sizeof *S.txs);
    size_t pos = S.ntxs++;
    struct tx_record *r = &S.txs[pos];
    r->id = (int64_t)pos + 1;
    snprintf(r->wallet_id, sizeof r->wallet_id, "%s", w->id);
    r->debit = rq->debit;
    r->amount = rq->amount;
    r->reference = xstrdup(rq->reference);
    r->description = rq->description ? xstrdup(rq->description) : NULL;
    r->balance = w->balance;
    r->created_ms = now_ms();
    index_add(&S.by_reference, text_hash(r->reference), pos);
    copy_record(r, out);
}

enum tx_result store_transact(const struct tx_request *rq, struct tx_record *out, int64_t *short_of)
{
    enum tx_result result = TX_APPLIED;
    pthread_mutex_lock(&S.mu);
    size_t seen = index_find(&S.by_reference, text_hash(rq->reference), reference_matches, rq->reference);
    size_t pos = find_wallet_locked(rq->wallet_id);
    if (seen != SIZE_MAX) {
        result = same_payload(&S.txs[seen], rq) ? TX_REPLAYED : TX_CONFLICT;
        if (result == TX_REPLAYED) {
            copy_record(&S.txs[seen], out);
            S.replays++;
        }
    } else if (pos == SIZE_MAX) {
        result = TX_NO_WALLET;
    } else if (!rq->debit && rq->amount > S.balance) {
        result = TX_PARTNER_SHORT;
        *short_of = S.balance;
    } else if (rq->debit && rq->amount > S.wallets[pos].balance) {
        result = TX_WALLET_SHORT;
        *short_of = S.wallets[pos].balance;
    } else {
        struct wallet *w = &S.wallets[pos];
        int64_t delta = rq->debit ? -rq->amount : rq->amount;
        w->balance += delta;
        S.balance -= delta;
        if (rq->debit)
            S.debits++;
        else
            S.credits++;
        record_locked(rq, w, out);
    }
    pthread_mutex_unlock(&S.mu);
    return result;
}

void store_free_record(struct tx_record *r)
{
    free(r->reference);
    free(r->description);
    r->reference = r->description = NULL;
}

void store_summary(struct store_summary *out)
{
    pthread_mutex_lock(&S.mu);
    out->consumers = S.nconsumers;
    out->wallets = S.nwallets;
    out->movements = S.ntxs;
    out->credits = S.credits;
    out->debits = S.debits;
    out->replays = S.replays;
    out->balance = S.balance;
    pthread_mutex_unlock(&S.mu);
}
