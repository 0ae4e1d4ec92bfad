/* The partner API endpoints (after authentication): create and list consumers. */
#ifndef ORBT_MOCK_API_H
#define ORBT_MOCK_API_H

#include "request.h"

#define CUSTOMER_PATH "/api/partner/v1/customer"

/* Routes an authenticated API request and fills the answer. */
void api_handle(const struct request *rq, struct reply *out);

#endif
