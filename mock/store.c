/* In-memory consumers and partner balance, shared by all connection threads. */
#include "store.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define FIRST_ID 101

/* Consumers in creation order plus an open-addressing index on
 * (lower-case email, currency) so duplicate checks stay O(1) when tests or
 * benchmarks create many thousands of consumers. */
static struct {
    pthread_mutex_t mu;
    struct consumer *v;
    size_t n, cap;
    size_t *slots;          /* 0 = empty, else index into v plus one */
    size_t nslots;          /* power of two, kept at most half full */
    int64_t balance;
    int64_t next_id;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static uint64_t key_hash(const char *email, const char *currency)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (const char *p = email; *p; p++)
        h = (h ^ (unsigned char)tolower((unsigned char)*p)) * 1099511628211ULL;
    for (const char *p = currency; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static bool same_key(const struct consumer *c, const char *email, const char *currency)
{
    return strcasecmp(c->email, email) == 0 && strcmp(c->currency, currency) == 0;
}

/* Slot holding the key, or the empty slot where it would go. */
static size_t *find_slot(const char *email, const char *currency)
{
    size_t mask = S.nslots - 1;
    for (size_t i = key_hash(email, currency) & mask;; i = (i + 1) & mask) {
        size_t *slot = &S.slots[i];
        if (*slot == 0 || same_key(&S.v[*slot - 1], email, currency))
            return slot;
    }
}

static void rebuild_index(size_t nslots)
{
    free(S.slots);
    S.slots = xcalloc(nslots, sizeof *S.slots);
    S.nslots = nslots;
    for (size_t i = 0; i < S.n; i++)
        *find_slot(S.v[i].email, S.v[i].currency) = i + 1;
}

static void clear_locked(int64_t balance)
{
    for (size_t i = 0; i < S.n; i++) {
        free(S.v[i].name);
        free(S.v[i].email);
    }
    free(S.v);
    S.v = NULL;
    S.n = S.cap = 0;
    rebuild_index(64);
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
    free(S.slots);
    S.slots = NULL;
    S.nslots = 0;
    pthread_mutex_unlock(&S.mu);
}

static void append_locked(const char *name, const char *email, const char *currency,
                          int64_t funds)
{
    if (S.n == S.cap) {
        S.cap = S.cap ? S.cap * 2 : 64;
        S.v = xrealloc(S.v, S.cap * sizeof *S.v);
    }
    struct consumer *c = &S.v[S.n++];
    c->id = S.next_id++;
    c->name = xstrdup(name);
    c->email = xstrdup(email);
    snprintf(c->currency, sizeof c->currency, "%s", currency);
    c->funds = funds;
    if (S.n * 2 > S.nslots)
        rebuild_index(S.nslots * 2);
    else
        *find_slot(email, currency) = S.n;
}

enum store_result store_create(const char *name, const char *email, const char *currency,
                               int64_t funds, int64_t *id, int64_t *balance)
{
    enum store_result r = STORE_OK;
    pthread_mutex_lock(&S.mu);
    if (*find_slot(email, currency) != 0) {
        r = STORE_DUPLICATE;
    } else if (funds > S.balance) {
        r = STORE_INSUFFICIENT;
    } else {
        S.balance -= funds;
        append_locked(name, email, currency, funds);
        *id = S.v[S.n - 1].id;
    }
    *balance = S.balance;
    pthread_mutex_unlock(&S.mu);
    return r;
}

size_t store_page(uint64_t page, uint64_t size, struct consumer **items, size_t *total)
{
    pthread_mutex_lock(&S.mu);
    *total = S.n;
    /* Division avoids overflow of page * size for absurd page numbers. */
    size_t count = 0;
    if (size > 0 && page < (S.n + size - 1) / size) {
        size_t first = (size_t)(page * size);
        count = S.n - first < size ? S.n - first : (size_t)size;
    }
    *items = xcalloc(count, sizeof **items);
    for (size_t i = 0; i < count; i++) {
        const struct consumer *c = &S.v[(size_t)(page * size) + i];
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

void store_summary(size_t *count, int64_t *balance)
{
    pthread_mutex_lock(&S.mu);
    *count = S.n;
    *balance = S.balance;
    pthread_mutex_unlock(&S.mu);
}
