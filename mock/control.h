/* The loopback-only /__mock control path: stats, reset, recent requests, faults. */
#ifndef ORBT_MOCK_CONTROL_H
#define ORBT_MOCK_CONTROL_H

#include <stdbool.h>

#include "config.h"
#include "request.h"

void control_init(const struct mock_config *cfg);
/* True for "/__mock" and everything under "/__mock/". */
bool control_path(const char *path);
/* Answers a control request (the caller has checked the peer is loopback). */
void control_handle(const struct request *rq, struct reply *out);

#endif
