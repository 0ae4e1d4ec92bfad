/* Request authentication: body hash, HMAC signature and timestamp window checks. */
#ifndef ORBT_MOCK_AUTH_H
#define ORBT_MOCK_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "config.h"

/* Base64 of a 32-byte digest: 44 characters plus NUL. */
#define AUTH_B64_SIZE 45

/* The five authentication header values as received; NULL when absent. */
struct auth_headers {
    const char *api_key;
    const char *client_id;
    const char *timestamp;
    const char *body_hash;
    const char *signature;
};

/* Returns NULL when the request is authentic, else the reason for the 403.
 * body_hash is base64(sha256(raw body)) computed by the server. */
const char *auth_verify(const struct mock_config *cfg, const char *method,
                        const struct auth_headers *h, const char *body_hash);

/* Finishes a running SHA-256 and writes its base64 into out. */
void auth_digest_b64(EVP_MD_CTX *md, char out[AUTH_B64_SIZE]);

/* base64(HMAC-SHA256(secret, METHOD\nTIMESTAMP\nCLIENT_ID\nBODY_HASH)). */
void auth_sign(const char *secret, const char *method, const char *timestamp,
               const char *client_id, const char *body_hash, char out[AUTH_B64_SIZE]);

/* Parses exactly YYYY-MM-DDTHH:MM:SS.mmmZ into milliseconds since the epoch. */
bool auth_parse_timestamp(const char *s, int64_t *ms);

#endif
