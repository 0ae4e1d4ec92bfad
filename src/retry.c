/* retry.c: the retry policy described in retry.h. */
#include "retry.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <curl/curl.h>

/* ===== Which failures ===== */

static int is_transient_status(retry_class retry, long status, int coded)
{
    return status == 429 || status == 502 || status == 503 || status == 504
           || (status == 500 && (retry == RETRY_READ || !coded));
}

int retry_allowed(retry_class retry, transport_result result, int request_sent, long status, int coded)
{
    switch (result) {
    case TRANSPORT_OK:
        return retry == RETRY_CREATE ? status == 429 : is_transient_status(retry, status, coded);
    case TRANSPORT_NETWORK:
    case TRANSPORT_TIMEOUT:
        return retry == RETRY_CREATE ? !request_sent : 1;
    default:
        return 0;
    }
}

/* ===== Retry-After ===== */

double retry_after_seconds(const char *value, time_t now)
{
    if (value == NULL || value[0] == '\0')
        return -1;
    size_t digits = strspn(value, "0123456789");
    if (digits > 0 && value[digits] == '\0')
        return digits > 9 ? 1e9 : strtod(value, NULL);
    /* An HTTP-date in any of RFC 9110's three forms (IMF-fixdate, RFC 850,
     * asctime), read by libcurl with its own month and day names, whatever
     * the C locale. A two-digit RFC 850 year below 70 is 20xx. */
    time_t when = curl_getdate(value, NULL);
    if (when == -1)
        return -1;
    return when > now ? (double)(when - now) : 0;
}

/* ===== Jitter ===== */

void retry_random_seed(retry_random *r)
{
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != (ssize_t)sizeof seed) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        seed = (uint64_t)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)r;
    }
    r->state = seed != 0 ? seed : 0x2545F4914F6CDD1Dull;
}

/* xorshift64*, as a fraction in [0, 1). */
static double next_fraction(retry_random *r)
{
    uint64_t x = r->state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->state = x;
    return (double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

double retry_backoff(retry_random *r, int attempts)
{
    double ceiling = RETRY_BASE_DELAY * ldexp(1.0, attempts > 1 ? (attempts > 30 ? 29 : attempts - 1) : 0);
    if (ceiling > RETRY_MAX_DELAY)
        ceiling = RETRY_MAX_DELAY;
    return next_fraction(r) * ceiling;
}

/* ===== The decision ===== */

retry_verdict retry_decide(retry_random *r, retry_class retry, const http_response *rs, int coded,
                           int attempts, int max_retries, double seconds_left)
{
    retry_verdict v = {0, 0, -1};
    v.retry_after = rs->result == TRANSPORT_OK ? retry_after_seconds(rs->retry_after, time(NULL)) : -1;
    if (attempts > max_retries
        || !retry_allowed(retry, rs->result, rs->request_sent, rs->status, coded))
        return v;
    if (v.retry_after >= 0) {
        if (v.retry_after > RETRY_AFTER_MAX)
            return v;
        v.delay = v.retry_after;
    } else {
        v.delay = retry_backoff(r, attempts);
    }
    /* Waiting must leave time for the attempt itself. */
    v.again = v.delay < seconds_left;
    return v;
}

/* ===== Time ===== */

double retry_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void retry_sleep(double seconds)
{
    if (!(seconds > 0))
        return;
    struct timespec left;
    left.tv_sec = (time_t)seconds;
    left.tv_nsec = (long)((seconds - (double)left.tv_sec) * 1e9);
    while (nanosleep(&left, &left) != 0 && errno == EINTR) {
    }
}
