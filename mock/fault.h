/* Queue of injected faults (status, delay, drop, truncate, oversize, chunked, headers) for API requests. */
#ifndef ORBT_MOCK_FAULT_H
#define ORBT_MOCK_FAULT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "request.h"

enum fault_drop { DROP_NONE, DROP_BEFORE, DROP_AFTER };

struct fault {
    char *path;           /* the request path, or a prefix of it ending in '*' */
    char *method;         /* NULL = any method */
    long count;           /* matching requests still to hit */
    long every;           /* hit one in `every` matching requests (1: each) */
    long seen;            /* matching requests so far, for `every` */
    long delay_ms;
    unsigned status;      /* 0 = not given */
    char *retry_after;
    char *body;           /* NULL = not given */
    char *content_type;   /* NULL = application/json */
    bool apply;           /* process the request for real before the injected answer */
    enum fault_drop drop;
    bool truncate;
    bool chunked;         /* answer (injected or real) without Content-Length */
    size_t oversize;      /* 0 = not given */
    long extra_headers;   /* add this many filler header lines to the answer */
};

void faults_shutdown(void);

/* Parses a fault description; on error returns false with a reason in *why. */
bool fault_parse(const cJSON *doc, struct fault *out, const char **why);
/* Appends f (ownership moves to the queue); false when the queue is full. */
bool fault_push(struct fault *f);
/* Takes one hit of the first queued fault matching method and path, copying
 * it into *out. Returns false when none matches. */
bool fault_take(const char *method, const char *path, struct fault *out);
void fault_clear(void);
void fault_free(struct fault *f);

/* Whether the fault replaces the real answer (status, body or oversize). */
bool fault_injects_answer(const struct fault *f);
/* Builds the injected answer. */
void fault_reply(const struct fault *f, struct reply *out);

#endif
