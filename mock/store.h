/* In-memory state of the partner: consumers, their wallets, the
 * transactions applied to them and the partner balance, shared by all
 * connection threads under one lock, so that every check-then-change (a
 * duplicate email, a balance, a referenceId seen before) is atomic. Money is
 * kept in integer micro-units. */
#ifndef ORBT_MOCK_STORE_H
#define ORBT_MOCK_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WALLET_ID_MAX 32

struct consumer {
    int64_t id;
    char *name;
    char *email;
    char currency[4];
    int64_t funds;          /* initial wallet balance, micro-units */
    size_t standard, campaign;   /* its wallets of each type */
};

struct wallet {
    char id[WALLET_ID_MAX];
    int64_t customer;
    char currency[4];
    int64_t balance;        /* micro-units */
    bool campaign;
    char *campaign_id, *campaign_name;   /* CAMPAIGN wallets only, else NULL */
};

enum store_result { STORE_OK, STORE_DUPLICATE, STORE_INSUFFICIENT };

void store_init(int64_t balance);
void store_shutdown(void);
/* Forgets everything, restarts ids at 101 and sets the balance. */
void store_reset(int64_t balance);

/* Creates a consumer and its STANDARD wallet (whose id is the consumer's id
 * in digits) unless the email (ASCII case-insensitive) already has a wallet
 * in that currency or the balance cannot cover funds. *balance gets the
 * partner balance after success, or the one that was too small. */
enum store_result store_create(const char *name, const char *email, const char *currency,
                               int64_t funds, int64_t *id, int64_t *balance);

/* Copies page `page` of `size` consumers in creation order; the caller frees
 * them with store_free_page. *total is the number of consumers. */
size_t store_page(uint64_t page, uint64_t size, struct consumer **items, size_t *total);
void store_free_page(struct consumer *items, size_t n);

/* Copies page `page` of `size` of a consumer's wallets, oldest first; the
 * caller frees them with store_free_wallets. False when there is no such
 * consumer. */
bool store_wallet_page(int64_t customer, uint64_t page, uint64_t size, struct wallet **items, size_t *n,
                       size_t *total);
void store_free_wallets(struct wallet *items, size_t n);

/* A copy of one wallet (free with store_free_wallets(w, 1)); false if none. */
bool store_wallet(const char *id, struct wallet **out);

/* Adds a CAMPAIGN wallet to a consumer, with its balance given outright (the
 * control path's). Its id goes into id_out. False when there is no such
 * consumer. */
bool store_add_campaign_wallet(int64_t customer, const char *currency, const char *campaign_id,
                               const char *campaign_name, int64_t balance, char id_out[WALLET_ID_MAX]);

/* What a transaction asks for, and what it did. */
struct tx_request {
    const char *wallet_id;
    bool debit;
    int64_t amount;         /* micro-units, > 0 */
    const char *reference;
    const char *description;     /* NULL when not given */
};

struct tx_record {
    int64_t id;
    char wallet_id[WALLET_ID_MAX];
    bool debit;
    int64_t amount;
    char *reference;
    char *description;      /* NULL when not given */
    int64_t balance;        /* the wallet's balance after it */
    int64_t created_ms;     /* Unix time in milliseconds */
};

enum tx_result {
    TX_APPLIED,             /* money moved; *out is the new record */
    TX_REPLAYED,            /* the referenceId was seen with this payload: *out is the first record */
    TX_CONFLICT,            /* the referenceId was seen with another payload */
    TX_NO_WALLET,
    TX_PARTNER_SHORT,       /* a credit the partner balance cannot cover; *short_of is that balance */
    TX_WALLET_SHORT         /* a debit the wallet cannot cover; *short_of is its balance */
};

/* Applies a transaction once per referenceId: a CREDIT moves money from the
 * partner balance to the wallet, a DEBIT from the wallet back to the partner.
 * A refused one records nothing, so its referenceId stays free. *out (free
 * with store_free_record) is filled for TX_APPLIED and TX_REPLAYED. */
enum tx_result store_transact(const struct tx_request *rq, struct tx_record *out, int64_t *short_of);
void store_free_record(struct tx_record *r);

struct store_summary {
    size_t consumers, wallets;
    size_t movements;       /* transactions applied (replays move nothing) */
    size_t credits, debits, replays;
    int64_t balance;        /* the partner's */
};

void store_summary(struct store_summary *out);

#endif
