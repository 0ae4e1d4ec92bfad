/* sign.h: Orbt request signing (SHA-256 body hash, HMAC-SHA256 signature,
 * ISO 8601 timestamps). No Lua and no HTTP here, so it can be tested alone. */
#ifndef ORBT_SIGN_H
#define ORBT_SIGN_H

#include <stddef.h>
#include <time.h>

#define SIGN_B64_LEN 44          /* Base64 of a 32-byte digest, without the NUL */
#define SIGN_TIMESTAMP_LEN 24    /* 2026-06-03T10:00:00.000Z */

/* An HMAC key with its inner and outer pads absorbed once, so each signature
 * costs two short digests instead of four. Opaque; wiped when freed. A
 * signature restarts the key's OpenSSL context, so one key signs in one
 * thread at a time. sign_key_new returns NULL when OpenSSL has no working
 * HMAC-SHA256 (or no memory). */
typedef struct sign_key sign_key;

sign_key *sign_key_new(const char *secret, size_t len);
void sign_key_free(sign_key *key);

/* Base64(SHA-256(body)) into out[SIGN_B64_LEN + 1]. Returns 0 on success. */
int sign_body_hash(const char *body, size_t len, char *out);

/* Base64(HMAC-SHA256(key, METHOD\nTIMESTAMP\nCLIENT_ID\nBODY_HASH)) into
 * out[SIGN_B64_LEN + 1]. `method` is used as given: callers upper-case it. */
int sign_signature(sign_key *key, const char *method, const char *timestamp,
                   const char *client_id, const char *body_hash, char *out);

/* The timestamp for `now` into out[SIGN_TIMESTAMP_LEN + 1]. Returns 0 on success. */
int sign_format_timestamp(const struct timespec *now, char *out);
int sign_timestamp_now(char *out);

/* A random UUID (version 4, RFC 9562) from OpenSSL's RAND_bytes, in its
 * 36-character lower-case form, into out[SIGN_UUID_LEN + 1]. Returns 0, or
 * -1 when OpenSSL has no randomness to give. */
#define SIGN_UUID_LEN 36
int sign_uuid4(char *out);

/* Overwrite memory in a way the compiler may not optimise away. */
void sign_wipe(void *p, size_t n);

#endif
