/* The partner API endpoints (after authentication): consumers here, their
 * wallets and transactions in wallets.c, with the helpers both use. */
#ifndef ORBT_MOCK_API_H
#define ORBT_MOCK_API_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "request.h"

#define CUSTOMER_PATH "/api/partner/v1/customer"
#define WALLETS_PATH "/api/partner/v1/wallets"

/* Routes an authenticated API request and fills the answer. */
void api_handle(const struct request *rq, struct reply *out);

/* The request's JSON object body, or NULL with the answer (415, 413 or 400)
 * written into out. The caller deletes it. */
cJSON *api_json_body(const struct request *rq, struct reply *out);

/* The page and size query arguments (defaults 0 and 20, size at most 50),
 * or false with the 422 written into out. */
bool api_page_query(const struct request *rq, struct reply *out, unsigned long long *page,
                    unsigned long long *size);

/* Answers a page: {"content": content, "page", "size", "hasNext"}. Takes content. */
void api_reply_page(struct reply *out, cJSON *content, unsigned long long page, unsigned long long size,
                    size_t total);

#endif
