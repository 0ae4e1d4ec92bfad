/* What the server saw: request counters, in-flight gauge and the recent-request log. */
#ifndef ORBT_MOCK_STATS_H
#define ORBT_MOCK_STATS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "request.h"

/* Anything echoed later has this secret replaced by "[REDACTED]". */
void stats_init(const char *secret);
void stats_shutdown(void);
/* Zeroes counters, the gauge and the log. Requests still running belong to
 * the old generation: they are dropped unanswered (server.c), so they count
 * in none of the new generation's numbers. */
void stats_reset(void);

/* An API request's headers arrived: count it and raise the in-flight gauge.
 * conn_mark is the connection's private counter (see server.c), or NULL;
 * it lets "connections" count each connection once per reset. Returns the
 * ticket for stats_end. */
unsigned long stats_begin(const char *method, const char *path, unsigned long *conn_mark);
/* The request is over (answered, dropped or aborted); lowers the gauge
 * unless a reset has zeroed it since the ticket was issued. */
void stats_end(unsigned long ticket);
void stats_auth_failure(void);
/* Keeps a redacted copy of the complete request in the recent log. */
void stats_record(const struct request *rq);

/* {"requests":{..},"requests_total":N,"methods":{..},"connections":N,"in_flight":N,
 *  "peak_in_flight":N,"auth_failures":N} */
cJSON *stats_json(void);
/* {"requests":[..]}: the most recent `limit` entries, oldest first. */
cJSON *stats_recent_json(size_t limit);

#endif
