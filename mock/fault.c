/* Queue of injected faults (status, delay, drop, truncate, oversize, chunked, headers) for API requests. */
#include "fault.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define QUEUE_MAX 1024
#define DELAY_MAX_MS 600000L
#define COUNT_MAX 1000000000L
#define OVERSIZE_MIN 10                    /* {"pad":""} */
#define OVERSIZE_MAX ((size_t)1 << 30)
#define EXTRA_HEADERS_MAX 100000

static struct {
    pthread_mutex_t mu;
    struct fault *v;
    size_t n, cap;
} Q = {.mu = PTHREAD_MUTEX_INITIALIZER};

void fault_free(struct fault *f)
{
    free(f->path);
    free(f->method);
    free(f->retry_after);
    free(f->body);
    free(f->content_type);
    memset(f, 0, sizeof *f);
}

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void fault_copy(const struct fault *f, struct fault *out)
{
    *out = *f;
    out->path = xstrdup(f->path);
    out->method = dup_or_null(f->method);
    out->retry_after = dup_or_null(f->retry_after);
    out->body = dup_or_null(f->body);
    out->content_type = dup_or_null(f->content_type);
}

/* Integer-valued JSON number within [min, max]. */
static bool json_int(const cJSON *item, double min, double max, double *v)
{
    if (!cJSON_IsNumber(item) || item->valuedouble != floor(item->valuedouble) ||
        item->valuedouble < min || item->valuedouble > max)
        return false;
    *v = item->valuedouble;
    return true;
}

/* A string safe to put in a response header (no CR, LF). */
static bool header_text(const cJSON *item)
{
    return cJSON_IsString(item) && strpbrk(item->valuestring, "\r\n") == NULL;
}

/* Applies one field of the description; returns the reason it is wrong, or NULL. */
static const char *parse_field(const cJSON *it, struct fault *f)
{
    const char *k = it->string;
    double v;
    if (!strcmp(k, "path")) {
        if (!cJSON_IsString(it) || it->valuestring[0] != '/')
            return "path must be a string starting with '/'";
        f->path = xstrdup(it->valuestring);
    } else if (!strcmp(k, "method")) {
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0')
            return "method must be a non-empty string";
        f->method = xstrdup(it->valuestring);
    } else if (!strcmp(k, "count")) {
        if (!json_int(it, 1, COUNT_MAX, &v))
            return "count must be an integer >= 1";
        f->count = (long)v;
    } else if (!strcmp(k, "every")) {
        if (!json_int(it, 1, COUNT_MAX, &v))
            return "every must be an integer >= 1";
        f->every = (long)v;
    } else if (!strcmp(k, "delay_ms")) {
        if (!json_int(it, 0, DELAY_MAX_MS, &v))
            return "delay_ms must be an integer between 0 and 600000";
        f->delay_ms = (long)v;
    } else if (!strcmp(k, "status")) {
        if (!json_int(it, 200, 599, &v))
            return "status must be an integer between 200 and 599";
        f->status = (unsigned)v;
    } else if (!strcmp(k, "retry_after")) {
        if (!header_text(it))
            return "retry_after must be a string without CR or LF";
        f->retry_after = xstrdup(it->valuestring);
    } else if (!strcmp(k, "body")) {
        if (!cJSON_IsString(it))
            return "body must be a string";
        f->body = xstrdup(it->valuestring);
    } else if (!strcmp(k, "content_type")) {
        if (!header_text(it) || it->valuestring[0] == '\0')
            return "content_type must be a non-empty string without CR or LF";
        f->content_type = xstrdup(it->valuestring);
    } else if (!strcmp(k, "apply")) {
        if (!cJSON_IsBool(it))
            return "apply must be a boolean";
        f->apply = cJSON_IsTrue(it);
    } else if (!strcmp(k, "drop")) {
        bool before = cJSON_IsString(it) && !strcmp(it->valuestring, "before");
        bool after = cJSON_IsString(it) && !strcmp(it->valuestring, "after");
        if (!before && !after)
            return "drop must be \"before\" or \"after\"";
        f->drop = before ? DROP_BEFORE : DROP_AFTER;
    } else if (!strcmp(k, "truncate")) {
        if (!cJSON_IsBool(it))
            return "truncate must be a boolean";
        f->truncate = cJSON_IsTrue(it);
    } else if (!strcmp(k, "chunked")) {
        if (!cJSON_IsBool(it))
            return "chunked must be a boolean";
        f->chunked = cJSON_IsTrue(it);
    } else if (!strcmp(k, "oversize")) {
        if (!json_int(it, OVERSIZE_MIN, (double)OVERSIZE_MAX, &v))
            return "oversize must be an integer between 10 and 1073741824";
        f->oversize = (size_t)v;
    } else if (!strcmp(k, "headers")) {
        if (!json_int(it, 1, EXTRA_HEADERS_MAX, &v))
            return "headers must be an integer between 1 and 100000";
        f->extra_headers = (long)v;
    } else {
        return "unknown fault field";
    }
    return NULL;
}

bool fault_parse(const cJSON *doc, struct fault *out, const char **why)
{
    memset(out, 0, sizeof *out);
    out->count = 1;
    out->every = 1;
    *why = cJSON_IsObject(doc) ? NULL : "fault must be a JSON object";
    for (const cJSON *it = doc ? doc->child : NULL; it && !*why; it = it->next) {
        /* A repeated key would leak the first value and is surely a mistake. */
        if (cJSON_GetObjectItemCaseSensitive(doc, it->string) != it)
            *why = "duplicate fault field";
        else
            *why = parse_field(it, out);
    }
    if (!*why && out->path == NULL)
        *why = "path is required";
    if (!*why && out->body && out->oversize)
        *why = "body and oversize cannot be combined";
    /* A dropped request gets no answer to frame. */
    if (!*why && (out->chunked || out->extra_headers) && out->drop != DROP_NONE)
        *why = "chunked or headers cannot be combined with drop";
    if (*why)
        fault_free(out);
    return *why == NULL;
}

bool fault_push(struct fault *f)
{
    bool ok = false;
    pthread_mutex_lock(&Q.mu);
    if (Q.n < QUEUE_MAX) {
        if (Q.n == Q.cap) {
            Q.cap = Q.cap ? Q.cap * 2 : 16;
            Q.v = xrealloc(Q.v, Q.cap * sizeof *Q.v);
        }
        Q.v[Q.n++] = *f;
        memset(f, 0, sizeof *f);
        ok = true;
    }
    pthread_mutex_unlock(&Q.mu);
    return ok;
}

static bool matches(const struct fault *f, const char *method, const char *path)
{
    size_t len = strlen(f->path);
    bool prefix = len > 0 && f->path[len - 1] == '*';
    bool path_ok = prefix ? strncmp(f->path, path, len - 1) == 0 : strcmp(f->path, path) == 0;
    return path_ok && (f->method == NULL || strcmp(f->method, method) == 0);
}

bool fault_take(const char *method, const char *path, struct fault *out)
{
    bool found = false;
    pthread_mutex_lock(&Q.mu);
    for (size_t i = 0; i < Q.n && !found; i++) {
        if (!matches(&Q.v[i], method, path) || ++Q.v[i].seen % Q.v[i].every != 0)
            continue;
        found = true;
        fault_copy(&Q.v[i], out);
        if (--Q.v[i].count == 0) {
            fault_free(&Q.v[i]);
            memmove(&Q.v[i], &Q.v[i + 1], (Q.n - i - 1) * sizeof *Q.v);
            Q.n--;
        }
    }
    pthread_mutex_unlock(&Q.mu);
    return found;
}

void fault_clear(void)
{
    pthread_mutex_lock(&Q.mu);
    for (size_t i = 0; i < Q.n; i++)
        fault_free(&Q.v[i]);
    Q.n = 0;
    pthread_mutex_unlock(&Q.mu);
}

void faults_shutdown(void)
{
    fault_clear();
    pthread_mutex_lock(&Q.mu);
    free(Q.v);
    Q.v = NULL;
    Q.cap = 0;
    pthread_mutex_unlock(&Q.mu);
}

bool fault_injects_answer(const struct fault *f)
{
    return f->status != 0 || f->body != NULL || f->oversize != 0;
}

void fault_reply(const struct fault *f, struct reply *out)
{
    if (f->body) {
        out->body = xstrdup(f->body);
        out->len = strlen(f->body);
        out->status = 200;
    } else if (f->oversize) {
        out->body = xstrdup("");
        out->pad_size = f->oversize;
        out->status = 200;
    } else {
        reply_error(out, f->status, "INJECTED_FAULT", "injected fault");
    }
    if (f->status)
        out->status = f->status;
    out->content_type = dup_or_null(f->content_type);
    out->retry_after = dup_or_null(f->retry_after);
}
