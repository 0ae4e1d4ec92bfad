/* sign.c: Orbt request signing on OpenSSL's EVP digest interface. */
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/opensslv.h>

#define SHA256_BLOCK 64
#define SHA256_LEN 32

struct sign_key {
    EVP_MD *md;          /* SHA-256, looked up once */
    EVP_MD_CTX *inner;   /* SHA-256 state after absorbing key ^ ipad */
    EVP_MD_CTX *outer;   /* SHA-256 state after absorbing key ^ opad */
    EVP_MD_CTX *scratch; /* reused for each signature */
    EVP_MD_CTX *body;    /* reused for each body hash: its state stays allocated */
};

void sign_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

/* OpenSSL 3 looks an algorithm up in its provider tables at every digest
 * started with EVP_sha256(); a key looks SHA-256 up once and keeps it. */
static EVP_MD *fetch_sha256(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    return EVP_MD_fetch(NULL, "SHA2-256", NULL);
#else
    return (EVP_MD *)EVP_sha256();
#endif
}

static void release_sha256(EVP_MD *md)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MD_free(md);
#else
    (void)md;
#endif
}

static int sha256_with(EVP_MD_CTX *ctx, const EVP_MD *md, const void *data, size_t len,
                       unsigned char out[SHA256_LEN])
{
    unsigned int n = 0;
    return EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, data, len) == 1
                   && EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == SHA256_LEN
               ? 0
               : -1;
}

static int sha256(const void *data, size_t len, unsigned char out[SHA256_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = ctx != NULL ? sha256_with(ctx, EVP_sha256(), data, len, out) : -1;
    EVP_MD_CTX_free(ctx);
    return rc;
}

static void base64_digest(const unsigned char digest[SHA256_LEN], char *out)
{
    EVP_EncodeBlock((unsigned char *)out, digest, SHA256_LEN);
}

static EVP_MD_CTX *digest_with_pad(const EVP_MD *md, const unsigned char key[SHA256_BLOCK], unsigned char pad)
{
    unsigned char block[SHA256_BLOCK];
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        block[i] = key[i] ^ pad;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, md, NULL) == 1
             && EVP_DigestUpdate(ctx, block, sizeof block) == 1;
    sign_wipe(block, sizeof block);
    if (!ok) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

sign_key *sign_key_new(const char *secret, size_t len)
{
    /* RFC 2104: keys longer than the block are hashed; shorter ones are zero-padded. */
    unsigned char key[SHA256_BLOCK] = {0};
    if (len > SHA256_BLOCK) {
        if (sha256(secret, len, key) != 0)
            return NULL;
    } else if (len > 0) {
        memcpy(key, secret, len);
    }
    sign_key *k = calloc(1, sizeof *k);
    if (k != NULL && (k->md = fetch_sha256()) != NULL) {
        k->inner = digest_with_pad(k->md, key, 0x36);
        k->outer = digest_with_pad(k->md, key, 0x5c);
        k->scratch = EVP_MD_CTX_new();
        k->body = EVP_MD_CTX_new();
    }
    sign_wipe(key, sizeof key);
    if (k != NULL && (k->md == NULL || k->inner == NULL || k->outer == NULL || k->scratch == NULL
                      || k->body == NULL)) {
        sign_key_free(k);
        return NULL;
    }
    return k;
}

void sign_key_free(sign_key *key)
{
    if (key == NULL)
        return;
    /* EVP_MD_CTX_free cleanses the digest state it holds. */
    EVP_MD_CTX_free(key->inner);
    EVP_MD_CTX_free(key->outer);
    EVP_MD_CTX_free(key->scratch);
    EVP_MD_CTX_free(key->body);
    release_sha256(key->md);
    free(key);
}

/* Base64(SHA-256("")): every GET has this body hash. */
static const char EMPTY_BODY_HASH[] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

int sign_key_body_hash(sign_key *key, const char *body, size_t len, char *out)
{
    unsigned char digest[SHA256_LEN];
    if (len == 0) {
        memcpy(out, EMPTY_BODY_HASH, sizeof EMPTY_BODY_HASH);
        return 0;
    }
    if (sha256_with(key->body, key->md, body, len, digest) != 0)
        return -1;
    base64_digest(digest, out);
    return 0;
}

static int digest_parts(EVP_MD_CTX *ctx, const EVP_MD_CTX *start,
                        const char *const *parts, size_t nparts, unsigned char out[SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_MD_CTX_copy_ex(ctx, start) != 1)
        return -1;
    for (size_t i = 0; i < nparts; i++) {
        if (i > 0 && EVP_DigestUpdate(ctx, "\n", 1) != 1)
            return -1;
        if (EVP_DigestUpdate(ctx, parts[i], strlen(parts[i])) != 1)
            return -1;
    }
    return EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == SHA256_LEN ? 0 : -1;
}

int sign_signature(sign_key *key, const char *method, const char *timestamp,
                   const char *client_id, const char *body_hash, char *out)
{
    const char *message[] = {method, timestamp, client_id, body_hash};
    unsigned char inner[SHA256_LEN];
    unsigned char mac[SHA256_LEN];
    int rc = -1;
    if (digest_parts(key->scratch, key->inner, message, 4, inner) == 0) {
        /* The outer digest covers the raw 32-byte inner digest. */
        EVP_MD_CTX *ctx = key->scratch;
        unsigned int n = 0;
        if (EVP_MD_CTX_copy_ex(ctx, key->outer) == 1
            && EVP_DigestUpdate(ctx, inner, sizeof inner) == 1
            && EVP_DigestFinal_ex(ctx, mac, &n) == 1 && n == SHA256_LEN) {
            base64_digest(mac, out);
            rc = 0;
        }
    }
    sign_wipe(inner, sizeof inner);
    return rc;
}

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
