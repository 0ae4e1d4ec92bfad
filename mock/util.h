/* Small shared helpers: allocation, money text, number parsing, JSON text, redaction, replies. */
#ifndef ORBT_MOCK_UTIL_H
#define ORBT_MOCK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "request.h"

#define MICRO 1000000LL
/* Amounts are capped so that micro-units always fit in int64 with room to add. */
#define MONEY_MAX_WHOLE 1000000000000LL
#define MONEY_BUF 32

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xmemdup(const void *p, size_t n);   /* adds a NUL terminator */
void oom(void);

/* "50.00", "0.10", "19.99", "0.001": at least two decimals, no extra zeros. */
void money_format(int64_t micro, char out[MONEY_BUF]);
/* Strict decimal "123" or "123.456789" (<= 6 decimals, <= MONEY_MAX_WHOLE). */
bool money_parse(const char *s, int64_t *micro);
/* The amount a JSON object's top-level member `key` holds, read exactly
 * from the number's own text (body is a document cJSON accepted, so its
 * syntax is known to be right; the first member of that name counts, as in
 * cJSON's lookup): "15", "19.99", "1.5e1", "1e-06". False when there is no
 * such number, or it is negative, has more than 6 decimals or exceeds
 * MONEY_MAX_WHOLE: amounts are never rounded through a double. */
bool money_member(const char *body, size_t len, const char *key, int64_t *micro);
/* Digits only, no sign, no spaces; value <= max. */
bool parse_uint(const char *s, unsigned long long max, unsigned long long *out);

/* JSON string literal (with quotes) for arbitrary bytes, NULs included. */
char *json_quote(const char *s, size_t len);

/* Copy of s with every occurrence of secret replaced by "[REDACTED]". */
char *redact(const char *secret, const char *s, size_t len, size_t *out_len);
char *redact_str(const char *secret, const char *s);
/* Whether s[0..len) contains secret (never for a NULL or empty secret). */
bool holds_secret(const char *secret, const char *s, size_t len);
/* A query string as a server reads it: %XX decoded, '+' as a space,
 * malformed escapes kept as they are. NULs are kept; *len is the length. */
char *query_decode(const char *s, size_t *len);

void reply_json(struct reply *r, unsigned status, cJSON *doc);   /* consumes doc */
void reply_error(struct reply *r, unsigned status, const char *code, const char *message);
void reply_ok(struct reply *r);                                   /* {"ok":true} */
void reply_free(struct reply *r);

#endif
