/* sign.c: Orbt request signing, on OpenSSL 3's provider APIs only: HMAC
 * through EVP_MAC and SHA-256 through EVP_Digest, with both algorithms
 * fetched once (each time the module is loaded). It builds with
 * OPENSSL_NO_DEPRECATED, and a FIPS or other provider configured for the
 * process does the work.
 *
 * Each sign_key holds an EVP_MAC_CTX keyed once: the provider absorbs the
 * HMAC key's inner and outer pads there, so a signature costs two short
 * digests, not four. A signature restarts that context with
 * EVP_MAC_init(ctx, NULL, 0, NULL), which keeps the key. Copying the keyed
 * context for each signature instead (EVP_MAC_CTX_dup) allocates and frees
 * some ten objects, the key's copy among them: orbt.sign made 20 to 30%
 * fewer signatures per second that way.
 *
 * Before OpenSSL 3.0.3 (OpenSSL issue 17811) such a restart did nothing, and
 * the next MAC came out wrong without an error; a provider built from that
 * code may still be loaded. So a known-answer check runs once, when the
 * algorithms are fetched, and where restarting does not keep the key every
 * signature works on a copy of the keyed context. */
#include "sign.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define SHA256_LEN 32

struct sign_key {
    EVP_MAC_CTX *keyed;   /* HMAC-SHA256 with the key set */
};

void sign_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

static int base64_digest(const unsigned char digest[SHA256_LEN], char *out)
{
    return EVP_EncodeBlock((unsigned char *)out, digest, SHA256_LEN) == SIGN_B64_LEN ? 0 : -1;
}

/* ===== HMAC-SHA256 ===== */

/* A new HMAC-SHA256 context with the key set, or NULL. */
static EVP_MAC_CTX *keyed_context(EVP_MAC *hmac, const char *key, size_t len)
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(hmac);
    char digest[] = OSSL_DIGEST_NAME_SHA2_256;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    /* EVP_MAC refuses a NULL key even when its length is 0; "" is the
     * empty key. The provider keeps its own copy, wiped when freed. */
    if (ctx == NULL || EVP_MAC_init(ctx, (const unsigned char *)(len > 0 ? key : ""), len, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* HMAC of the parts joined by "\n", with the key of `keyed`: on `keyed`
 * itself, restarted, or on a copy of it. Returns 1 on success. */
static int hmac_joined(EVP_MAC_CTX *keyed, int restart, const char *const *parts, size_t n,
                       unsigned char mac[SHA256_LEN])
{
    EVP_MAC_CTX *ctx = restart ? keyed : EVP_MAC_CTX_dup(keyed);
    int ok = ctx != NULL && (!restart || EVP_MAC_init(ctx, NULL, 0, NULL) == 1);
    for (size_t i = 0; ok && i < n; i++) {
        if (i > 0)
            ok = EVP_MAC_update(ctx, (const unsigned char *)"\n", 1) == 1;
        ok = ok && EVP_MAC_update(ctx, (const unsigned char *)parts[i], strlen(parts[i])) == 1;
    }
    size_t len = 0;
    ok = ok && EVP_MAC_final(ctx, mac, &len, SHA256_LEN) == 1 && len == SHA256_LEN;
    if (ctx != keyed)
        EVP_MAC_CTX_free(ctx);
    return ok;
}

/* ===== The algorithms, fetched and checked once ===== */

/* An explicit fetch looks the algorithm up once; EVP_sha256() and the like
 * would look it up again on every use. Kept until the module is unloaded. */
static pthread_once_t fetch_once = PTHREAD_ONCE_INIT;
static EVP_MAC *hmac_alg;
static EVP_MD *sha256_alg;
static int restart_keeps_key;   /* EVP_MAC_init(ctx, NULL, 0, NULL) keeps the key */

/* RFC 4231, test case 2: HMAC-SHA256 with the key "Jefe". */
static const char KAT_MESSAGE[] = "what do ya want for nothing?";
static const unsigned char KAT_MAC[SHA256_LEN] = {
    0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7,
    0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27, 0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
};

/* 1 when HMAC on a copy of a keyed context gives the known answer (else
 * nothing is signed), and then whether restarting a context that has
 * already made a MAC with other text gives it too. */
static int check_hmac(int *restart_ok)
{
    const char *message[] = {KAT_MESSAGE};
    const char *other[] = {"other", "text"};
    unsigned char mac[SHA256_LEN];
    EVP_MAC_CTX *ctx = keyed_context(hmac_alg, "Jefe", 4);
    int ok = ctx != NULL && hmac_joined(ctx, 0, message, 1, mac) && memcmp(mac, KAT_MAC, sizeof mac) == 0;
    *restart_ok = ok && hmac_joined(ctx, 1, other, 2, mac) && hmac_joined(ctx, 1, message, 1, mac)
                  && memcmp(mac, KAT_MAC, sizeof mac) == 0;
    EVP_MAC_CTX_free(ctx);
    return ok;
}

static void release_algorithms(void)
{
    EVP_MAC_free(hmac_alg);
    EVP_MD_free(sha256_alg);
    hmac_alg = NULL;
    sha256_alg = NULL;
}

/* The algorithms are released by an atexit handler. Registered from a shared
 * object, it runs when that object is unloaded: a host that closes its Lua
 * state unloads orbt.so, and would otherwise lose them, once for every
 * state it opens. At process exit it runs before OpenSSL's own clean-up,
 * registered earlier (by the fetch, at the latest). */
static void fetch_algorithms(void)
{
    hmac_alg = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    sha256_alg = EVP_MD_fetch(NULL, OSSL_DIGEST_NAME_SHA2_256, NULL);
    if (atexit(release_algorithms) != 0 || (hmac_alg != NULL && !check_hmac(&restart_keeps_key)))
        release_algorithms();
}

static int fetched(void)
{
    return pthread_once(&fetch_once, fetch_algorithms) == 0 && hmac_alg != NULL && sha256_alg != NULL;
}

/* ===== Keys and signatures ===== */

sign_key *sign_key_new(const char *secret, size_t len)
{
    if (!fetched())
        return NULL;
    sign_key *k = malloc(sizeof *k);
    if (k == NULL)
        return NULL;
    k->keyed = keyed_context(hmac_alg, secret, len);
    if (k->keyed == NULL) {
        sign_key_free(k);
        return NULL;
    }
    return k;
}

void sign_key_free(sign_key *key)
{
    if (key == NULL)
        return;
    EVP_MAC_CTX_free(key->keyed);
    sign_wipe(key, sizeof *key);
    free(key);
}

/* Base64(SHA-256("")): every GET has this body hash. */
static const char EMPTY_BODY_HASH[] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

int sign_body_hash(const char *body, size_t len, char *out)
{
    if (len == 0) {
        memcpy(out, EMPTY_BODY_HASH, sizeof EMPTY_BODY_HASH);
        return 0;
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!fetched() || EVP_Digest(body, len, digest, &n, sha256_alg, NULL) != 1 || n != SHA256_LEN)
        return -1;
    return base64_digest(digest, out);
}

int sign_signature(sign_key *key, const char *method, const char *timestamp,
                   const char *client_id, const char *body_hash, char *out)
{
    const char *message[] = {method, timestamp, client_id, body_hash};
    unsigned char mac[SHA256_LEN];
    int ok = hmac_joined(key->keyed, restart_keeps_key, message, 4, mac) && base64_digest(mac, out) == 0;
    sign_wipe(mac, sizeof mac);
    return ok ? 0 : -1;
}

/* ===== Timestamps ===== */

static char *put_digits(char *p, long value, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + value % 10);
        value /= 10;
    }
    return p + width;
}

/* Written digit by digit: snprintf was a tenth of orbt.sign's time. */
int sign_format_timestamp(const struct timespec *now, char *out)
{
    struct tm tm;
    if (gmtime_r(&now->tv_sec, &tm) == NULL || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999)
        return -1;
    char *p = put_digits(out, tm.tm_year + 1900L, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1L, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    p = put_digits(p, now->tv_nsec / 1000000, 3);
    *p++ = 'Z';
    *p = '\0';
    return 0;
}

int sign_timestamp_now(char *out)
{
    struct timespec now;
    if (clock_gettime(CLOCK_REALTIME, &now) != 0)
        return -1;
    return sign_format_timestamp(&now, out);
}

int sign_uuid4(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* the RFC's variant */
    size_t n = 0;
    for (size_t i = 0; i < sizeof b; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 0x0f];
    }
    out[n] = '\0';
    return 0;
}
