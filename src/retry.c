/* retry.c: the retry policy described in retry.h. */
#include "retry.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* ===== Which failures ===== */

static int is_transient_status(retry_class retry, long status)
{
    return status == 429 || status == 502 || status == 503 || status == 504
           || (status == 500 && retry == RETRY_READ);
}

int retry_allowed(retry_class retry, transport_result result, int request_sent, long status)
{
    switch (result) {
    case TRANSPORT_OK:
        return retry == RETRY_CREATE ? status == 429 : is_transient_status(retry, status);
    case TRANSPORT_NETWORK:
    case TRANSPORT_TIMEOUT:
        return retry == RETRY_CREATE ? !request_sent : 1;
    default:
        return 0;
    }
}

/* ===== Retry-After ===== */

static const char *const month_names[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* "Sun, 06 Nov 1994 08:49:37 GMT" (RFC 9110's IMF-fixdate), read without
 * the C locale's month names. Returns -1 when it is not one. */
static time_t parse_http_date(const char *s)
{
    char weekday[4], month[4], zone[4];
    int day, year, hour, minute, second, used = 0;
    if (sscanf(s, "%3s %d %3s %d %d:%d:%d %3s%n", weekday, &day, month, &year, &hour, &minute,
               &second, zone, &used) != 8 || s[used] != '\0' || strcmp(zone, "GMT") != 0)
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_mon = -1;
    for (int i = 0; i < 12; i++)
        if (strcmp(month, month_names[i]) == 0)
            tm.tm_mon = i;
    if (tm.tm_mon < 0 || day < 1 || day > 31 || year < 1970 || hour > 23 || minute > 59 || second > 60)
        return -1;
    tm.tm_mday = day;
    tm.tm_year = year - 1900;
    tm.tm_hour = hour;
    tm.tm_min = minute;
    tm.tm_sec = second;
    return timegm(&tm);
}

double retry_after_seconds(const char *value, time_t now)
{
    if (value == NULL || value[0] == '\0')
        return -1;
    size_t digits = strspn(value, "0123456789");
    if (digits > 0 && value[digits] == '\0')
        return digits > 9 ? 1e9 : strtod(value, NULL);
    /* The weekday comes first: "Sun, 06 Nov ..."; sscanf reads "Sun," as
     * "Sun" and stops at the comma, so drop it first. */
    char copy[64];
    size_t len = strlen(value);
    if (len >= sizeof copy || len < 5 || value[3] != ',')
        return -1;
    memcpy(copy, value, 3);
    memcpy(copy + 3, value + 4, len - 3); /* includes the NUL */
    time_t when = parse_http_date(copy);
    if (when < 0)
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

retry_verdict retry_decide(retry_random *r, retry_class retry, const http_response *rs,
                           int attempts, int max_retries, double seconds_left)
{
    retry_verdict v = {0, 0, -1};
    v.retry_after = rs->result == TRANSPORT_OK ? retry_after_seconds(rs->retry_after, time(NULL)) : -1;
    if (attempts > max_retries
        || !retry_allowed(retry, rs->result, rs->request_sent, rs->status))
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
