/* The loopback-only /__mock control path: stats, reset, recent requests, faults. */
#include "control.h"

#include <string.h>

#include "fault.h"
#include "generation.h"
#include "stats.h"
#include "store.h"
#include "util.h"

#define RECENT_DEFAULT 64

static const struct mock_config *cfg;

void control_init(const struct mock_config *c)
{
    cfg = c;
}

bool control_path(const char *path)
{
    return strcmp(path, "/__mock") == 0 || strncmp(path, "/__mock/", 8) == 0;
}

static void bad_request(struct reply *out, const char *message)
{
    reply_error(out, 400, "VALIDATION_ERROR", message);
}

static void get_stats(struct reply *out)
{
    size_t consumers;
    int64_t balance;
    char money[MONEY_BUF];
    cJSON *doc = stats_json();
    store_summary(&consumers, &balance);
    money_format(balance, money);
    cJSON_AddNumberToObject(doc, "consumers", (double)consumers);
    cJSON_AddStringToObject(doc, "balance", money);
    reply_json(out, 200, doc);
}

static void post_reset(const struct request *rq, struct reply *out)
{
    int64_t balance = cfg->balance;
    const char *text;
    if (request_arg(rq, "balance", &text) && (text == NULL || !money_parse(text, &balance))) {
        bad_request(out, "balance must be a decimal amount like 123.45");
        return;
    }
    /* One step for every request: each sees all of the old state or all of
     * the new, and the old ones still pending are dropped (see server.c). */
    generation_reset_begin();
    store_reset(balance);
    stats_reset();
    fault_clear();
    generation_reset_end();
    reply_ok(out);
}

static void get_requests(const struct request *rq, struct reply *out)
{
    unsigned long long limit = RECENT_DEFAULT;
    const char *text;
    if (request_arg(rq, "limit", &text) && !parse_uint(text, 1000000, &limit)) {
        bad_request(out, "limit must be a non-negative integer");
        return;
    }
    reply_json(out, 200, stats_recent_json((size_t)limit));
}

static void post_fault(const struct request *rq, struct reply *out)
{
    if (rq->body_too_large) {
        reply_error(out, 413, "PAYLOAD_TOO_LARGE", "request body exceeds 1 MiB");
        return;
    }
    cJSON *doc = memchr(rq->body, '\0', rq->body_len) ? NULL
                                                      : cJSON_ParseWithOpts(rq->body, NULL, 1);
    struct fault f;
    const char *why;
    if (doc == NULL)
        bad_request(out, "fault must be a JSON object");
    else if (!fault_parse(doc, &f, &why))
        bad_request(out, why);
    else if (!fault_push(&f)) {
        fault_free(&f);
        bad_request(out, "too many queued faults");
    } else
        reply_ok(out);
    cJSON_Delete(doc);
}

static void method_not_allowed(struct reply *out, const char *allow)
{
    reply_error(out, 405, "METHOD_NOT_ALLOWED", "method not allowed");
    out->allow = allow;
}

void control_handle(const struct request *rq, struct reply *out)
{
    const char *p = rq->path, *m = rq->method;
    if (!strcmp(p, "/__mock/stats")) {
        if (!strcmp(m, "GET")) get_stats(out);
        else method_not_allowed(out, "GET");
    } else if (!strcmp(p, "/__mock/reset")) {
        if (!strcmp(m, "POST")) post_reset(rq, out);
        else method_not_allowed(out, "POST");
    } else if (!strcmp(p, "/__mock/requests")) {
        if (!strcmp(m, "GET")) get_requests(rq, out);
        else method_not_allowed(out, "GET");
    } else if (!strcmp(p, "/__mock/faults")) {
        if (!strcmp(m, "POST")) post_fault(rq, out);
        else if (!strcmp(m, "DELETE")) { fault_clear(); reply_ok(out); }
        else method_not_allowed(out, "POST, DELETE");
    } else {
        reply_error(out, 404, "NOT_FOUND", "no such control endpoint");
    }
}
