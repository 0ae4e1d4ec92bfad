/* curl_loop.c: alternatives (a) and (a') of `make bench`: the workload as a
 * plain C program does it by hand: one reused libcurl easy handle,
 * OpenSSL's one-shot HMAC() and cJSON.
 *
 *   curl_loop [--nosignal] BASE_URL get|post SECONDSs|COUNT TAG
 *
 * (a) keeps libcurl's default options. (a'), with --nosignal, sets
 * CURLOPT_NOSIGNAL, as a C program that cares about speed would: without
 * it libcurl installs and restores a SIGPIPE handler around every transfer
 * (some seven rt_sigaction calls per request); everything else is the same.
 *
 * Same contract as the Lua clients (bench/workload.lua): credentials from
 * ORBT_API_KEY, ORBT_CLIENT_ID and ORBT_SECRET; 20 warm-up requests; every
 * answer parsed in full and checked; one line "ok requests=N seconds=S cpu=C"
 * (C: the process's CPU seconds in the measured part) or "fail WHY" (exit 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define CUSTOMER_PATH "/api/partner/v1/customer"
#define LIST_QUERY "page=0&size=20"
#define PAGE_SIZE 20
#define WARMUP 20
#define B64_LEN 44          /* Base64 of 32 bytes, without the NUL */
#define TIMESTAMP_LEN 24    /* 2026-06-03T10:00:00.000Z */

typedef struct growbuf {
    char *data;
    size_t len, cap;
} growbuf;

typedef struct bench {
    CURL *curl;
    int post;
    const char *api_key, *client_id, *secret, *tag;
    char list_url[512], create_url[512];
    char body[512];
    growbuf answer;
    char why[512];
} bench;

static void fail(const char *why)
{
    printf("fail %s\n", why);
    exit(1);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        printf("fail set %s\n", name);
        exit(1);
    }
    return v;
}

static double seconds_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double monotonic(void)
{
    return seconds_of(CLOCK_MONOTONIC);
}

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
    growbuf *b = userdata;
    size_t bytes = size * n;
    if (b->len + bytes + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + bytes + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, bytes);
    b->len += bytes;
    b->data[b->len] = '\0';
    return bytes;
}

static void timestamp_now(char out[TIMESTAMP_LEN + 1])
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, TIMESTAMP_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, TIMESTAMP_LEN + 1 - n, ".%03dZ", (int)(now.tv_nsec / 1000000) % 1000);
}

/* The five authentication headers, per the Orbt signing scheme. */
static struct curl_slist *auth_headers(const bench *b, const char *method, const char *body, size_t len)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    char body_hash[B64_LEN + 1], signature[B64_LEN + 1], ts[TIMESTAMP_LEN + 1];
    char message[256], line[256];
    if (EVP_Digest(body, len, digest, &digest_len, EVP_sha256(), NULL) != 1)
        fail("SHA-256 failed");
    EVP_EncodeBlock((unsigned char *)body_hash, digest, (int)digest_len);
    timestamp_now(ts);
    int n = snprintf(message, sizeof message, "%s\n%s\n%s\n%s", method, ts, b->client_id, body_hash);
    if (HMAC(EVP_sha256(), b->secret, (int)strlen(b->secret), (const unsigned char *)message, (size_t)n,
             digest, &digest_len) == NULL)
        fail("HMAC failed");
    EVP_EncodeBlock((unsigned char *)signature, digest, (int)digest_len);

    struct curl_slist *h = NULL;
    snprintf(line, sizeof line, "x-api-key: %s", b->api_key);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-client-id: %s", b->client_id);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-timestamp: %s", ts);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-body-hash: %s", body_hash);
    h = curl_slist_append(h, line);
    snprintf(line, sizeof line, "x-signature: %s", signature);
    h = curl_slist_append(h, line);
    h = curl_slist_append(h, "Accept: application/json");
    if (len > 0)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (h == NULL)
        fail("out of memory");
    return h;
}

static int check_page(bench *b, const cJSON *doc)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(doc, "content");
    if (!cJSON_IsArray(content) || cJSON_GetArraySize(content) != PAGE_SIZE) {
        snprintf(b->why, sizeof b->why, "the page does not have %d consumers", PAGE_SIZE);
        return -1;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, content) {
        if (!cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(c, "consumerId"))
            || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "consumerName"))
            || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "consumerEmail"))) {
            snprintf(b->why, sizeof b->why, "a consumer lacks consumerId, consumerName or consumerEmail");
            return -1;
        }
    }
    const cJSON *page = cJSON_GetObjectItemCaseSensitive(doc, "page");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(doc, "size");
    if (!cJSON_IsNumber(page) || page->valuedouble != 0 || !cJSON_IsNumber(size)
        || size->valuedouble != PAGE_SIZE || !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(doc, "hasNext"))) {
        snprintf(b->why, sizeof b->why, "the page lacks page, size or hasNext");
        return -1;
    }
    return 0;
}

static int check_created(bench *b, const cJSON *doc)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const cJSON *currency = cJSON_GetObjectItemCaseSensitive(data, "currency");
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "success"))
        || !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(data, "id"))
        || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(data, "walletId"))
        || !cJSON_IsString(currency) || strcmp(currency->valuestring, "USD") != 0) {
        snprintf(b->why, sizeof b->why, "the create answer lacks success, data.id, data.walletId or data.currency");
        return -1;
    }
    return 0;
}

static int one_request(bench *b, long i)
{
    const char *method = b->post ? "POST" : "GET";
    size_t len = 0;
    if (b->post) {
        int n = snprintf(b->body, sizeof b->body,
                         "{\"fullName\":\"Bench Consumer\",\"email\":\"%s-%ld@bench.example\","
                         "\"currency\":\"USD\",\"initialFunds\":1}", b->tag, i);
        len = (size_t)n;
    }
    struct curl_slist *headers = auth_headers(b, method, b->body, len);
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, headers);
    if (b->post) {
        curl_easy_setopt(b->curl, CURLOPT_URL, b->create_url);
        curl_easy_setopt(b->curl, CURLOPT_POSTFIELDS, b->body);
        curl_easy_setopt(b->curl, CURLOPT_POSTFIELDSIZE, (long)len);
    } else {
        curl_easy_setopt(b->curl, CURLOPT_URL, b->list_url);
        curl_easy_setopt(b->curl, CURLOPT_HTTPGET, 1L);
    }
    b->answer.len = 0;
    CURLcode rc = curl_easy_perform(b->curl);
    curl_easy_setopt(b->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        snprintf(b->why, sizeof b->why, "%s failed: %s", method, curl_easy_strerror(rc));
        return -1;
    }
    long status = 0;
    curl_easy_getinfo(b->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        snprintf(b->why, sizeof b->why, "%s answered %ld: %.200s", method, status,
                 b->answer.data ? b->answer.data : "");
        return -1;
    }
    cJSON *doc = cJSON_ParseWithLength(b->answer.data, b->answer.len);
    if (doc == NULL) {
        snprintf(b->why, sizeof b->why, "%s answer is not JSON", method);
        return -1;
    }
    int checked = b->post ? check_created(b, doc) : check_page(b, doc);
    cJSON_Delete(doc);
    return checked;
}

int main(int argc, char **argv)
{
    int nosignal = argc > 1 && strcmp(argv[1], "--nosignal") == 0;
    if (nosignal) {
        argc--;
        argv++;
    }
    if (argc != 5 || (strcmp(argv[2], "get") != 0 && strcmp(argv[2], "post") != 0))
        fail("usage: curl_loop [--nosignal] BASE_URL get|post SECONDSs|COUNT TAG");
    bench b = {0};
    b.post = strcmp(argv[2], "post") == 0;
    b.tag = argv[4];
    b.api_key = env("ORBT_API_KEY");
    b.client_id = env("ORBT_CLIENT_ID");
    b.secret = env("ORBT_SECRET");
    snprintf(b.list_url, sizeof b.list_url, "%s%s?%s", argv[1], CUSTOMER_PATH, LIST_QUERY);
    snprintf(b.create_url, sizeof b.create_url, "%s%s", argv[1], CUSTOMER_PATH);
    char *end = NULL;
    double limit = strtod(argv[3], &end);
    int by_time = end != argv[3] && strcmp(end, "s") == 0;
    if (end == argv[3] || (!by_time && *end != '\0') || limit <= 0)
        fail("bad LIMIT");

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (b.curl = curl_easy_init()) == NULL)
        fail("libcurl failed to initialise");
    curl_easy_setopt(b.curl, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(b.curl, CURLOPT_WRITEDATA, &b.answer);
    curl_easy_setopt(b.curl, CURLOPT_TIMEOUT, 10L);
    if (nosignal)
        curl_easy_setopt(b.curl, CURLOPT_NOSIGNAL, 1L);

    long i = 0;
    for (int w = 0; w < WARMUP; w++)
        if (one_request(&b, ++i) != 0)
            fail(b.why);
    long n = 0;
    double cpu = seconds_of(CLOCK_PROCESS_CPUTIME_ID);
    double started = monotonic(), finished;
    if (by_time) {
        do {
            n++;
            if (one_request(&b, ++i) != 0)
                fail(b.why);
            finished = monotonic();
        } while (finished - started < limit);
    } else {
        for (n = 0; n < (long)limit; n++)
            if (one_request(&b, ++i) != 0)
                fail(b.why);
        finished = monotonic();
    }
    cpu = seconds_of(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    printf("ok requests=%ld seconds=%.6f cpu=%.6f\n", n, finished - started, cpu);
    curl_easy_cleanup(b.curl);
    curl_global_cleanup();
    free(b.answer.data);
    return 0;
}
