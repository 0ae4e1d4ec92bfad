/* retry.h: when orbt tries a call again, and how long it waits first.
 * No Lua and no HTTP here: both transports (libcurl in C, nginx cosockets in
 * Lua) ask the same questions.
 *
 * The policy (README, "Retries"):
 *
 * - Up to `max_retries` more attempts after the first (default 2).
 * - What is tried again depends on the operation's retry class
 *   (each operation's row says which). `read` (a GET): after a network error, a timeout, or a
 *   429, 500, 502, 503 or 504 answer. `keyed` (the body carries an
 *   idempotency key, so the server applies it once): after a network error,
 *   a timeout, or 429, 502, 503 or 504, and a 500 unless its body is a JSON
 *   error with a machine code (`code`, `errorCode` or `error.code`) (Orbt answers 500 SYSTEM_ERROR for a debit the wallet
 *   cannot cover, which is lasting). `create` is not idempotent: a second one would
 *   make a second wallet. It is tried again only when it certainly never
 *   reached the server (DNS, connect, proxy or TLS handshake failure), or
 *   on 429, which the server sends instead of processing it.
 * - A refused certificate is never tried again, whatever the class: it
 *   fails the same way every time.
 * - The wait before the next attempt, after n attempts, is "full jitter": a
 *   uniformly random time in [0, min(cap, base * 2^(n-1))], base 0.25 s and
 *   cap 5 s, so that many clients failing together do not return together.
 * - A Retry-After header (delta-seconds, or an HTTP-date in any of RFC 9110's
 *   three forms) replaces that wait: orbt never comes back earlier than the
 *   server asked; a date already past asks for no wait, and a value that is
 *   neither is ignored (the backoff applies). When it asks for
 *   more than RETRY_AFTER_MAX, or more than the deadline leaves, orbt does
 *   not wait: the error comes back with err.retry_after.
 * - `deadline` (default 60 s) bounds the whole call, every attempt and wait
 *   included: each attempt's timeout is cut to what is left, and no retry
 *   starts that could not finish its wait in time.
 * - Every attempt is signed afresh (a new timestamp), by the caller. */
#ifndef ORBT_RETRY_H
#define ORBT_RETRY_H

#include <stdint.h>
#include <time.h>

#include "transport.h"

/* When a failed attempt of an operation may be made again. */
typedef enum retry_class {
    RETRY_READ,     /* a GET: repeating it changes nothing */
    RETRY_KEYED,    /* the body carries an idempotency key: the server applies it once */
    RETRY_CREATE    /* never resent once it may have reached the server */
} retry_class;

#define RETRY_BASE_DELAY 0.25     /* seconds */
#define RETRY_MAX_DELAY 5.0       /* seconds: the backoff's cap */
#define RETRY_AFTER_MAX 30.0      /* seconds: longest Retry-After orbt waits for */
#define RETRY_DEFAULT_MAX 2
#define RETRY_LIMIT 10            /* largest max_retries accepted */
#define RETRY_DEFAULT_DEADLINE 60.0

/* Whether repeating a call that ended this way is safe and may succeed.
 * `coded`: the answer's body is a JSON error with a code (answer.h says). */
int retry_allowed(retry_class retry, transport_result result, int request_sent, long status, int coded);

/* Seconds the Retry-After value asks to wait: delta-seconds ("120"), or an
 * HTTP-date counted from `now`, as IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
 * GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") or asctime ("Sun Nov  6
 * 08:49:37 1994"), read by libcurl's curl_getdate(); 0 for a date already
 * past. -1 when value is NULL, empty or not a valid Retry-After. */
double retry_after_seconds(const char *value, time_t now);

/* A small random generator for the jitter: no need for cryptographic
 * quality, only for clients not to move in step. */
typedef struct retry_random {
    uint64_t state;
} retry_random;

void retry_random_seed(retry_random *r);

/* The full-jitter wait after `attempts` attempts, in seconds. */
double retry_backoff(retry_random *r, int attempts);

typedef struct retry_verdict {
    int again;            /* 1: wait `delay` seconds, then attempt again */
    double delay;
    double retry_after;   /* what the server asked for, or -1 */
} retry_verdict;

/* Decides what follows an attempt that ended as rs (`coded` as for
 * retry_allowed). `seconds_left` is what the deadline leaves now. */
retry_verdict retry_decide(retry_random *r, retry_class retry, const http_response *rs, int coded,
                           int attempts, int max_retries, double seconds_left);

/* Monotonic seconds, for deadlines. */
double retry_clock(void);

/* Sleeps for `seconds`, resuming after signals. */
void retry_sleep(double seconds);

#endif
