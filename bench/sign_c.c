/* sign_c.c: the C rows of the signing part of `make bench`: the same
 * signature as bench/sign.lua, in plain C on OpenSSL.
 *
 *   sign_c oneshot|pads get|post SECONDS TIMESTAMP
 *
 * oneshot: OpenSSL's one-shot HMAC() for every signature.
 * pads:    the HMAC key's inner and outer pads absorbed once per key into
 *          two SHA-256 states; each signature copies them (RFC 2104).
 * Both also hash the body and Base64 both digests, as orbt.sign does; they
 * build no headers. Credentials come from the environment. Prints
 * "ok requests=N seconds=S cpu=C signature=SIG" (C: the process's CPU
 * seconds in the measured part). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define BLOCK 64
#define B64_LEN 44
#define BATCH 256
#define CREATE_BODY "{\"fullName\":\"Bench Consumer\",\"email\":\"sign@bench.example\"," \
                    "\"currency\":\"USD\",\"initialFunds\":1}"

typedef struct signer {
    int pads;
    const char *method, *timestamp, *client_id, *secret, *body;
    size_t body_len;
    EVP_MD_CTX *inner, *outer, *work;
} signer;

static void fail(const char *why)
{
    printf("fail %s\n", why);
    exit(1);
}

static double seconds_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static EVP_MD_CTX *pad_state(const unsigned char key[BLOCK], unsigned char pad)
{
    unsigned char block[BLOCK];
    for (int i = 0; i < BLOCK; i++)
        block[i] = key[i] ^ pad;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1
        || EVP_DigestUpdate(ctx, block, BLOCK) != 1)
        fail("SHA-256 failed");
    return ctx;
}

static void prepare_pads(signer *s)
{
    unsigned char key[BLOCK] = {0};
    size_t len = strlen(s->secret);
    unsigned int n = 0;
    if (len > BLOCK)
        EVP_Digest(s->secret, len, key, &n, EVP_sha256(), NULL);
    else
        memcpy(key, s->secret, len);
    s->inner = pad_state(key, 0x36);
    s->outer = pad_state(key, 0x5c);
    s->work = EVP_MD_CTX_new();
    if (s->work == NULL)
        fail("out of memory");
}

static void hmac_pads(signer *s, const char *msg, size_t len, unsigned char mac[32])
{
    unsigned char inner[32];
    unsigned int n = 0;
    if (EVP_MD_CTX_copy_ex(s->work, s->inner) != 1 || EVP_DigestUpdate(s->work, msg, len) != 1
        || EVP_DigestFinal_ex(s->work, inner, &n) != 1 || EVP_MD_CTX_copy_ex(s->work, s->outer) != 1
        || EVP_DigestUpdate(s->work, inner, sizeof inner) != 1 || EVP_DigestFinal_ex(s->work, mac, &n) != 1)
        fail("HMAC failed");
}

static void sign_once(signer *s, char signature[B64_LEN + 1])
{
    unsigned char digest[32], mac[32];
    unsigned int n = 0;
    char body_hash[B64_LEN + 1], msg[256];
    if (EVP_Digest(s->body, s->body_len, digest, &n, EVP_sha256(), NULL) != 1)
        fail("SHA-256 failed");
    EVP_EncodeBlock((unsigned char *)body_hash, digest, 32);
    int len = snprintf(msg, sizeof msg, "%s\n%s\n%s\n%s", s->method, s->timestamp, s->client_id, body_hash);
    if (len < 0 || (size_t)len >= sizeof msg)
        fail("inputs too long");
    if (s->pads)
        hmac_pads(s, msg, (size_t)len, mac);
    else if (HMAC(EVP_sha256(), s->secret, (int)strlen(s->secret), (const unsigned char *)msg,
                  (size_t)len, mac, &n) == NULL)
        fail("HMAC failed");
    EVP_EncodeBlock((unsigned char *)signature, mac, 32);
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[1], "oneshot") != 0 && strcmp(argv[1], "pads") != 0)
        || (strcmp(argv[2], "get") != 0 && strcmp(argv[2], "post") != 0))
        fail("usage: sign_c oneshot|pads get|post SECONDS TIMESTAMP");
    signer s = {0};
    s.pads = strcmp(argv[1], "pads") == 0;
    int post = strcmp(argv[2], "post") == 0;
    s.method = post ? "POST" : "GET";
    s.body = post ? CREATE_BODY : "";
    s.body_len = strlen(s.body);
    s.timestamp = argv[4];
    s.client_id = getenv("ORBT_CLIENT_ID");
    s.secret = getenv("ORBT_SECRET");
    double seconds = strtod(argv[3], NULL);
    if (s.client_id == NULL || s.secret == NULL || seconds <= 0)
        fail("set ORBT_CLIENT_ID and ORBT_SECRET, and SECONDS > 0");
    if (s.pads)
        prepare_pads(&s);

    char signature[B64_LEN + 1], first[B64_LEN + 1];
    sign_once(&s, first);
    long n = 0;
    double cpu = seconds_of(CLOCK_PROCESS_CPUTIME_ID);
    double started = seconds_of(CLOCK_MONOTONIC), finished;
    do {
        for (int i = 0; i < BATCH; i++)
            sign_once(&s, signature);
        n += BATCH;
        finished = seconds_of(CLOCK_MONOTONIC);
    } while (finished - started < seconds);
    cpu = seconds_of(CLOCK_PROCESS_CPUTIME_ID) - cpu;
    printf("ok requests=%ld seconds=%.6f cpu=%.6f signature=%s\n", n, finished - started, cpu, first);
    EVP_MD_CTX_free(s.inner);
    EVP_MD_CTX_free(s.outer);
    EVP_MD_CTX_free(s.work);
    return 0;
}
