/* The wallet endpoints (after authentication): a consumer's wallets, and
 * credits and debits applied once per referenceId. */
#ifndef ORBT_MOCK_WALLETS_H
#define ORBT_MOCK_WALLETS_H

#include <cjson/cJSON.h>

#include "request.h"
#include "store.h"

/* GET /api/partner/v1/customer/{customer}/wallets */
void wallets_list(const struct request *rq, const char *customer, struct reply *out);

/* POST /api/partner/v1/wallets/{wallet}/transactions */
void wallets_transact(const struct request *rq, const char *wallet, struct reply *out);

/* A wallet as the API shows it, for the control path too. */
cJSON *wallet_json(const struct wallet *w);

#endif
