/* sign.c: Orbt request signing.
 *
 * SHA-256 runs on OpenSSL's plain SHA256_CTX state rather than EVP: an HMAC
 * key's inner and outer states are absorbed once, and each signature starts
 * from copies of them. With EVP in OpenSSL 3 every such copy frees and
 * allocates the provider's state; a SHA256_CTX is a plain struct, copied by
 * assignment, so a signature allocates nothing and looks nothing up.
 * OpenSSL 3 marks this API deprecated but still ships it. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "sign.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#define SHA256_BLOCK 64
#define SHA256_LEN 32

struct sign_key {
    SHA256_CTX inner;   /* after absorbing key ^ ipad */
    SHA256_CTX outer;   /* after absorbing key ^ opad */
};

void sign_wipe(void *p, size_t n)
{
    if (p != NULL && n > 0)
        OPENSSL_cleanse(p, n);
}

static void base64_digest(const unsigned char digest[SHA256_LEN], char *out)
{
    EVP_EncodeBlock((unsigned char *)out, digest, SHA256_LEN);
}

static int absorb_pad(SHA256_CTX *ctx, const unsigned char key[SHA256_BLOCK], unsigned char pad)
{
    unsigned char block[SHA256_BLOCK];
    for (size_t i = 0; i < SHA256_BLOCK; i++)
        block[i] = key[i] ^ pad;
    int ok = SHA256_Init(ctx) == 1 && SHA256_Update(ctx, block, sizeof block) == 1;
    sign_wipe(block, sizeof block);
    return ok ? 0 : -1;
}

sign_key *sign_key_new(const char *secret, size_t len)
{
    /* RFC 2104: keys longer than the block are hashed; shorter ones are zero-padded. */
    unsigned char key[SHA256_BLOCK] = {0};
    int ok = 1;
    if (len > SHA256_BLOCK) {
        SHA256_CTX ctx;
        ok = SHA256_Init(&ctx) == 1 && SHA256_Update(&ctx, secret, len) == 1 && SHA256_Final(key, &ctx) == 1;
        sign_wipe(&ctx, sizeof ctx);
    } else if (len > 0) {
        memcpy(key, secret, len);
    }
    sign_key *k = ok ? malloc(sizeof *k) : NULL;
    if (k != NULL && (absorb_pad(&k->inner, key, 0x36) != 0 || absorb_pad(&k->outer, key, 0x5c) != 0)) {
        sign_key_free(k);
        k = NULL;
    }
    sign_wipe(key, sizeof key);
    return k;
}

void sign_key_free(sign_key *key)
{
    if (key == NULL)
        return;
    sign_wipe(key, sizeof *key);
    free(key);
}

/* Base64(SHA-256("")): every GET has this body hash. */
static const char EMPTY_BODY_HASH[] = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

int sign_body_hash(const char *body, size_t len, char *out)
{
    unsigned char digest[SHA256_LEN];
    if (len == 0) {
        memcpy(out, EMPTY_BODY_HASH, sizeof EMPTY_BODY_HASH);
        return 0;
    }
    /* Not SHA256(): in OpenSSL 3 it looks the algorithm up on every call. */
    SHA256_CTX ctx;
    if (SHA256_Init(&ctx) != 1 || SHA256_Update(&ctx, body, len) != 1 || SHA256_Final(digest, &ctx) != 1)
        return -1;
    base64_digest(digest, out);
    return 0;
}

int sign_signature(sign_key *key, const char *method, const char *timestamp,
                   const char *client_id, const char *body_hash, char *out)
{
    const char *message[] = {method, timestamp, client_id, body_hash};
    unsigned char inner[SHA256_LEN];
    unsigned char mac[SHA256_LEN];
    SHA256_CTX ctx = key->inner;
    int ok = 1;
    for (size_t i = 0; i < 4; i++) {
        if (i > 0)
            ok &= SHA256_Update(&ctx, "\n", 1) == 1;
        ok &= SHA256_Update(&ctx, message[i], strlen(message[i])) == 1;
    }
    ok &= SHA256_Final(inner, &ctx) == 1;
    /* The outer digest covers the raw 32-byte inner digest. */
    ctx = key->outer;
    ok &= SHA256_Update(&ctx, inner, sizeof inner) == 1;
    ok &= SHA256_Final(mac, &ctx) == 1;
    if (ok)
        base64_digest(mac, out);
    sign_wipe(inner, sizeof inner);
    sign_wipe(mac, sizeof mac);
    sign_wipe(&ctx, sizeof ctx);
    return ok ? 0 : -1;
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
