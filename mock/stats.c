/* What the server saw: request counters, in-flight gauge and the recent-request log. */
#include "stats.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define RECENT_MAX 64
/* Distinct paths/methods tracked; a client probing random URLs must not
 * grow memory without bound. Requests past the limit still count in total. */
#define KEYS_MAX 256

struct counter {
    char *key;
    uint64_t n;
};

struct counters {
    struct counter *v;
    size_t n, cap;
};

struct header {
    char *name;     /* lower-cased */
    char *value;
};

struct entry {
    char *method, *path, *query;
    struct header *headers;
    size_t nheaders;
    char *body;
    size_t body_len;
    bool body_truncated;
};

static struct {
    pthread_mutex_t mu;
    const char *secret;
    struct counters paths, methods;
    uint64_t total, auth_failures;
    uint64_t connections;    /* connections that carried an API request */
    unsigned long generation; /* bumped by every reset; see stats_begin */
    long in_flight, peak;
    struct entry ring[RECENT_MAX];
    size_t next, count;      /* ring write position and fill */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void count_key(struct counters *c, const char *key)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->v[i].key, key) == 0) {
            c->v[i].n++;
            return;
        }
    if (c->n == KEYS_MAX)
        return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 8;
        c->v = xrealloc(c->v, c->cap * sizeof *c->v);
    }
    c->v[c->n++] = (struct counter){xstrdup(key), 1};
}

static void counters_free(struct counters *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->v[i].key);
    free(c->v);
    memset(c, 0, sizeof *c);
}

static void entry_free(struct entry *e)
{
    free(e->method);
    free(e->path);
    free(e->query);
    for (size_t i = 0; i < e->nheaders; i++) {
        free(e->headers[i].name);
        free(e->headers[i].value);
    }
    free(e->headers);
    free(e->body);
    memset(e, 0, sizeof *e);
}

/* Counters and log are swapped out under the lock and freed after it. */
static void reset_locked(struct counters *paths, struct counters *methods,
                         struct entry *ring)
{
    *paths = S.paths;
    *methods = S.methods;
    memcpy(ring, S.ring, sizeof S.ring);
    memset(&S.paths, 0, sizeof S.paths);
    memset(&S.methods, 0, sizeof S.methods);
    memset(S.ring, 0, sizeof S.ring);
    S.total = S.auth_failures = S.connections = 0;
    S.generation++;
    S.next = S.count = 0;
    /* in_flight is a live gauge: requests still running will end later. */
    S.peak = S.in_flight;
}

static void reset_and_free(void)
{
    struct counters paths, methods;
    struct entry ring[RECENT_MAX];
    pthread_mutex_lock(&S.mu);
    reset_locked(&paths, &methods, ring);
    pthread_mutex_unlock(&S.mu);
    counters_free(&paths);
    counters_free(&methods);
    for (size_t i = 0; i < RECENT_MAX; i++)
        entry_free(&ring[i]);
}

void stats_init(const char *secret)
{
    S.secret = secret;
    reset_and_free();
}

void stats_reset(void)
{
    reset_and_free();
}

void stats_shutdown(void)
{
    reset_and_free();
}

void stats_begin(const char *method, const char *path, unsigned long *conn_mark)
{
    char *m = redact_str(S.secret, method), *p = redact_str(S.secret, path);
    pthread_mutex_lock(&S.mu);
    count_key(&S.paths, p);
    count_key(&S.methods, m);
    S.total++;
    if (conn_mark && *conn_mark != S.generation) {
        *conn_mark = S.generation;
        S.connections++;
    }
    if (++S.in_flight > S.peak)
        S.peak = S.in_flight;
    pthread_mutex_unlock(&S.mu);
    free(m);
    free(p);
}

void stats_end(void)
{
    pthread_mutex_lock(&S.mu);
    S.in_flight--;
    pthread_mutex_unlock(&S.mu);
}

void stats_auth_failure(void)
{
    pthread_mutex_lock(&S.mu);
    S.auth_failures++;
    pthread_mutex_unlock(&S.mu);
}

/* Repeated headers are joined with ", " (RFC 9110 list semantics) so the
 * echoed object never has duplicate keys. */
static void add_header(void *ud, const char *name, const char *value)
{
    struct entry *e = ud;
    char *lower = xstrdup(name);
    for (char *p = lower; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    char *clean = redact_str(S.secret, value ? value : "");
    for (size_t i = 0; i < e->nheaders; i++) {
        struct header *h = &e->headers[i];
        if (strcmp(h->name, lower) != 0)
            continue;
        size_t a = strlen(h->value), b = strlen(clean);
        h->value = xrealloc(h->value, a + b + 3);
        memcpy(h->value + a, ", ", 2);
        memcpy(h->value + a + 2, clean, b + 1);
        free(lower);
        free(clean);
        return;
    }
    e->headers = xrealloc(e->headers, (e->nheaders + 1) * sizeof *e->headers);
    e->headers[e->nheaders++] = (struct header){lower, clean};
}

void stats_record(const struct request *rq)
{
    struct entry e = {0};
    e.method = redact_str(S.secret, rq->method);
    e.path = redact_str(S.secret, rq->path);
    e.query = redact_str(S.secret, rq->query);
    e.body = redact(S.secret, rq->body, rq->body_len, &e.body_len);
    e.body_truncated = rq->body_too_large;
    request_each_header(rq, add_header, &e);

    pthread_mutex_lock(&S.mu);
    struct entry old = S.ring[S.next];
    S.ring[S.next] = e;
    S.next = (S.next + 1) % RECENT_MAX;
    if (S.count < RECENT_MAX)
        S.count++;
    pthread_mutex_unlock(&S.mu);
    entry_free(&old);
}

static cJSON *counters_json(const struct counters *c)
{
    cJSON *obj = cJSON_CreateObject();
    for (size_t i = 0; i < c->n; i++)
        cJSON_AddNumberToObject(obj, c->v[i].key, (double)c->v[i].n);
    return obj;
}

cJSON *stats_json(void)
{
    cJSON *doc = cJSON_CreateObject();
    pthread_mutex_lock(&S.mu);
    cJSON_AddItemToObject(doc, "requests", counters_json(&S.paths));
    cJSON_AddNumberToObject(doc, "requests_total", (double)S.total);
    cJSON_AddItemToObject(doc, "methods", counters_json(&S.methods));
    cJSON_AddNumberToObject(doc, "connections", (double)S.connections);
    cJSON_AddNumberToObject(doc, "in_flight", (double)S.in_flight);
    cJSON_AddNumberToObject(doc, "peak_in_flight", (double)S.peak);
    cJSON_AddNumberToObject(doc, "auth_failures", (double)S.auth_failures);
    pthread_mutex_unlock(&S.mu);
    return doc;
}

static cJSON *entry_json(const struct entry *e)
{
    cJSON *item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "method", e->method);
    cJSON_AddStringToObject(item, "path", e->path);
    cJSON_AddStringToObject(item, "query", e->query);
    cJSON *headers = cJSON_AddObjectToObject(item, "headers");
    for (size_t i = 0; i < e->nheaders; i++)
        cJSON_AddStringToObject(headers, e->headers[i].name, e->headers[i].value);
    /* Our own quoting keeps NUL bytes that cJSON strings would cut off. */
    char *body = json_quote(e->body, e->body_len);
    cJSON_AddRawToObject(item, "body", body);
    free(body);
    if (e->body_truncated)
        cJSON_AddTrueToObject(item, "body_truncated");
    return item;
}

cJSON *stats_recent_json(size_t limit)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(doc, "requests");
    pthread_mutex_lock(&S.mu);
    size_t n = limit < S.count ? limit : S.count;
    for (size_t i = 0; i < n; i++) {
        size_t at = (S.next + RECENT_MAX - n + i) % RECENT_MAX;
        cJSON_AddItemToArray(list, entry_json(&S.ring[at]));
    }
    pthread_mutex_unlock(&S.mu);
    return doc;
}
