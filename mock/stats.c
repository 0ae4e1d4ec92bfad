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
    char *method, *path;
    char *query;             /* may hold NULs once decoded; see clean_query */
    size_t query_len;
    struct header *headers;
    size_t nheaders;
    char *body;
    size_t body_len;
    bool body_truncated;
};

static struct {
    pthread_mutex_t mu;
    const char *secret;
    char *secret_lower;      /* for header names, which are echoed lower-cased */
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
    /* Requests still running are the old generation's; see stats_end. */
    S.in_flight = S.peak = 0;
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

static char *lower_dup(const char *s)
{
    char *out = xstrdup(s);
    for (char *p = out; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return out;
}

void stats_init(const char *secret)
{
    S.secret = secret;
    S.secret_lower = secret ? lower_dup(secret) : NULL;
    reset_and_free();
}

void stats_reset(void)
{
    reset_and_free();
}

void stats_shutdown(void)
{
    reset_and_free();
    free(S.secret_lower);
    S.secret_lower = NULL;
}

unsigned long stats_begin(const char *method, const char *path, unsigned long *conn_mark)
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
    unsigned long ticket = S.generation;
    pthread_mutex_unlock(&S.mu);
    free(m);
    free(p);
    return ticket;
}

void stats_end(unsigned long ticket)
{
    pthread_mutex_lock(&S.mu);
    if (ticket == S.generation)
        S.in_flight--;
    pthread_mutex_unlock(&S.mu);
}

void stats_auth_failure(void)
{
    pthread_mutex_lock(&S.mu);
    S.auth_failures++;
    pthread_mutex_unlock(&S.mu);
}

/* Names are echoed lower-cased, so they are matched against the secret
 * ignoring case: a lower-cased secret is still nearly all of it. */
static char *clean_name(const char *name)
{
    char *lower = lower_dup(name);
    char *clean = redact_str(S.secret_lower, lower);
    free(lower);
    return clean;
}

/* Appends ", value" to h; redacts again since the two parts joined could
 * spell a secret that holds ", ". */
static void join_value(struct header *h, const char *value)
{
    size_t a = strlen(h->value), b = strlen(value);
    char *joined = xrealloc(h->value, a + b + 3);
    joined[a] = ',';
    joined[a + 1] = ' ';
    memcpy(joined + a + 2, value, b + 1);
    h->value = redact_str(S.secret, joined);
    free(joined);
}

/* Repeated headers are joined with ", " (RFC 9110 list semantics) so the
 * echoed object never has duplicate keys. */
static void add_header(void *ud, const char *name, const char *value)
{
    struct entry *e = ud;
    char *clean_n = clean_name(name);
    char *clean_v = redact_str(S.secret, value ? value : "");
    for (size_t i = 0; i < e->nheaders; i++)
        if (strcmp(e->headers[i].name, clean_n) == 0) {
            join_value(&e->headers[i], clean_v);
            free(clean_n);
            free(clean_v);
            return;
        }
    e->headers = xrealloc(e->headers, (e->nheaders + 1) * sizeof *e->headers);
    e->headers[e->nheaders++] = (struct header){clean_n, clean_v};
}

/* The raw query is echoed as sent, unless the secret is in what a server
 * decodes from it ("sk%2D..", '+' for a space): then the decoded form is
 * echoed, redacted, as the raw one cannot be redacted reliably. */
static char *clean_query(const char *raw, size_t *out_len)
{
    size_t len;
    char *decoded = query_decode(raw, &len);
    char *clean = holds_secret(S.secret, decoded, len)
                      ? redact(S.secret, decoded, len, out_len)
                      : redact(S.secret, raw, strlen(raw), out_len);
    free(decoded);
    return clean;
}

void stats_record(const struct request *rq)
{
    struct entry e = {0};
    e.method = redact_str(S.secret, rq->method);
    e.path = redact_str(S.secret, rq->path);
    e.query = clean_query(rq->query, &e.query_len);
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
    /* Our own quoting keeps NUL bytes that cJSON strings would cut off. */
    char *query = json_quote(e->query, e->query_len);
    cJSON_AddRawToObject(item, "query", query);
    free(query);
    cJSON *headers = cJSON_AddObjectToObject(item, "headers");
    for (size_t i = 0; i < e->nheaders; i++)
        cJSON_AddStringToObject(headers, e->headers[i].name, e->headers[i].value);
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
