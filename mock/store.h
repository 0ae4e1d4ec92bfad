/* In-memory consumers and partner balance, shared by all connection threads. */
#ifndef ORBT_MOCK_STORE_H
#define ORBT_MOCK_STORE_H

#include <stddef.h>
#include <stdint.h>

struct consumer {
    int64_t id;
    char *name;
    char *email;
    char currency[4];
    int64_t funds;      /* initial wallet balance, micro-units */
};

enum store_result { STORE_OK, STORE_DUPLICATE, STORE_INSUFFICIENT };

void store_init(int64_t balance);
void store_shutdown(void);
/* Forgets every consumer, restarts ids at 101 and sets the balance. */
void store_reset(int64_t balance);

/* Creates a consumer unless the email (ASCII case-insensitive) already has a
 * wallet in that currency or the balance cannot cover funds. *balance gets
 * the partner balance after success, or the one that was too small. */
enum store_result store_create(const char *name, const char *email, const char *currency,
                               int64_t funds, int64_t *id, int64_t *balance);

/* Copies page `page` of `size` consumers in creation order; the caller frees
 * them with store_free_page. *total is the number of consumers. */
size_t store_page(uint64_t page, uint64_t size, struct consumer **items, size_t *total);
void store_free_page(struct consumer *items, size_t n);

void store_summary(size_t *count, int64_t *balance);

#endif
