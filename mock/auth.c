/* Request authentication: body hash, HMAC signature and timestamp window checks. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "util.h"

/* Equal length is not secret; the bytes are compared in constant time so a
 * client cannot learn a valid hash or signature byte by byte. */
static bool same_secretly(const char *given, const char *expected)
{
    size_t n = strlen(given);
    return n == strlen(expected) && CRYPTO_memcmp(given, expected, n) == 0;
}

void auth_digest_b64(EVP_MD_CTX *md, char out[AUTH_B64_SIZE])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(md, digest, &n) != 1 || n != 32)
        oom();   /* SHA-256 cannot fail short of memory exhaustion */
    EVP_EncodeBlock((unsigned char *)out, digest, 32);
}

void auth_sign(const char *secret, const char *method, const char *timestamp,
               const char *client_id, const char *body_hash, char out[AUTH_B64_SIZE])
{
    size_t len = strlen(method) + strlen(timestamp) + strlen(client_id) + strlen(body_hash) + 3;
    char *msg = xmalloc(len + 1);
    snprintf(msg, len + 1, "%s\n%s\n%s\n%s", method, timestamp, client_id, body_hash);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, len,
              mac, &mac_len))
        oom();
    free(msg);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

bool auth_parse_timestamp(const char *s, int64_t *ms)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(s) != sizeof shape - 1)
        return false;
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        bool ok = shape[i] == 'd' ? (s[i] >= '0' && s[i] <= '9') : s[i] == shape[i];
        if (!ok)
            return false;
    }
    int year = digits(s, 4), mon = digits(s + 5, 2), day = digits(s + 8, 2);
    int hour = digits(s + 11, 2), min = digits(s + 14, 2), sec = digits(s + 17, 2);
    /* timegm would silently normalise 2026-02-30 into March; refuse instead. */
    if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) ||
        hour > 23 || min > 59 || sec > 59)
        return false;
    struct tm tm = {.tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day,
                    .tm_hour = hour, .tm_min = min, .tm_sec = sec};
    *ms = (int64_t)timegm(&tm) * 1000 + digits(s + 20, 3);
    return true;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *missing_header(const struct auth_headers *h)
{
    if (!h->api_key)   return "missing header x-api-key";
    if (!h->client_id) return "missing header x-client-id";
    if (!h->timestamp) return "missing header x-timestamp";
    if (!h->body_hash) return "missing header x-body-hash";
    if (!h->signature) return "missing header x-signature";
    return NULL;
}

const char *auth_verify(const struct mock_config *cfg, const char *method,
                        const struct auth_headers *h, const char *body_hash)
{
    const char *why = missing_header(h);
    if (why)
        return why;
    if (!same_secretly(h->api_key, cfg->api_key))
        return "unknown api key";
    if (!same_secretly(h->client_id, cfg->client_id))
        return "unknown client id";
    int64_t ts;
    if (!auth_parse_timestamp(h->timestamp, &ts))
        return "malformed timestamp";
    if (llabs(now_ms() - ts) > (long long)cfg->skew * 1000)
        return "timestamp outside the allowed window";
    if (!same_secretly(h->body_hash, body_hash))
        return "body hash mismatch";
    char expected[AUTH_B64_SIZE];
    auth_sign(cfg->secret, method, h->timestamp, h->client_id, h->body_hash, expected);
    bool ok = same_secretly(h->signature, expected);
    OPENSSL_cleanse(expected, sizeof expected);
    return ok ? NULL : "signature mismatch";
}
