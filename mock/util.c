/* Small shared helpers: allocation, money text, number parsing, JSON text, redaction, replies. */
#include "util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A mock that cannot allocate has nothing sensible to answer; stop loudly. */
void oom(void)
{
    fputs("orbt-mock: out of memory\n", stderr);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom();
    return p;
}

void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        oom();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom();
    return q;
}

char *xmemdup(const void *p, size_t n)
{
    char *s = xmalloc(n + 1);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

char *xstrdup(const char *s)
{
    return xmemdup(s, strlen(s));
}

void money_format(int64_t micro, char out[MONEY_BUF])
{
    uint64_t u = micro < 0 ? -(uint64_t)micro : (uint64_t)micro;
    snprintf(out, MONEY_BUF, "%s%" PRIu64 ".%06" PRIu64, micro < 0 ? "-" : "",
             u / (uint64_t)MICRO, u % (uint64_t)MICRO);
    size_t len = strlen(out);
    size_t min_len = (size_t)(strchr(out, '.') - out) + 3;
    while (len > min_len && out[len - 1] == '0')
        out[--len] = '\0';
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return n > 0;
}

bool money_parse(const char *s, int64_t *micro)
{
    const char *dot = strchr(s, '.');
    size_t whole_len = dot ? (size_t)(dot - s) : strlen(s);
    size_t frac_len = dot ? strlen(dot + 1) : 0;
    if (!all_digits(s, whole_len) || whole_len > 13)
        return false;
    if (dot && (frac_len == 0 || frac_len > 6 || !all_digits(dot + 1, frac_len)))
        return false;
    int64_t whole = 0, frac = 0;
    for (size_t i = 0; i < whole_len; i++)
        whole = whole * 10 + (s[i] - '0');
    for (size_t i = 0; i < 6; i++)
        frac = frac * 10 + (i < frac_len ? dot[1 + i] - '0' : 0);
    if (whole > MONEY_MAX_WHOLE)
        return false;
    *micro = whole * MICRO + frac;
    return true;
}

/* ---- amounts from a JSON number's text ---- */

static size_t skip_space(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* Past the string literal that starts at s[i] (a quote). */
static size_t skip_string(const char *s, size_t len, size_t i)
{
    for (i++; i < len && s[i] != '"'; i++)
        if (s[i] == '\\')
            i++;
    return i + 1;
}

/* Past the value that starts at s[i], nested ones included; a scalar ends
 * at the ',' or '}' after it. */
static size_t skip_value(const char *s, size_t len, size_t i)
{
    int depth = 0;
    while (i < len) {
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, len, i);
            if (depth == 0)
                return i;
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0)
                return i;
            if (--depth == 0)
                return i + 1;
        } else if (c == ',' && depth == 0) {
            return i;
        }
        i++;
    }
    return i;
}

/* The raw text of the first top-level member named key (unescaped names only). */
static bool member_text(const char *s, size_t len, const char *key, const char **start, size_t *n)
{
    size_t klen = strlen(key), i = skip_space(s, len, 0);
    if (i >= len || s[i] != '{')
        return false;
    for (i++;;) {
        i = skip_space(s, len, i);
        if (i >= len || s[i] != '"')
            return false;
        size_t name = i + 1, end = skip_string(s, len, i);
        bool match = end - name - 1 == klen && memcmp(s + name, key, klen) == 0;
        i = skip_space(s, len, end);
        if (i >= len || s[i] != ':')
            return false;
        i = skip_space(s, len, i + 1);
        size_t value_end = skip_value(s, len, i);
        if (match) {
            *start = s + i;
            *n = value_end - i;
            while (*n > 0 && strchr(" \t\r\n", (*start)[*n - 1]) != NULL)
                (*n)--;
            return true;
        }
        i = skip_space(s, len, value_end);
        if (i >= len || s[i] != ',')
            return false;
        i++;
    }
}

/* -?digits(.digits)?([eE][+-]?digits)? as micro-units, exactly. */
static bool money_from_number(const char *s, size_t n, int64_t *micro)
{
    char digits[24];
    size_t nd = 0, i = 0;
    long exponent = 0;
    bool any = false;
    if (i < n && s[i] == '-')
        return false;
    for (int part = 0; part < 2; part++) {
        if (part == 1) {
            if (i >= n || s[i] != '.')
                break;
            i++;
        }
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            any = true;
            if (nd > 0 || s[i] != '0') {
                if (nd == sizeof digits)
                    return false;
                digits[nd++] = s[i];
            }
            if (part == 1)
                exponent--;
        }
    }
    if (!any)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        bool negative = ++i < n && s[i] == '-';
        if (i < n && (s[i] == '-' || s[i] == '+'))
            i++;
        long e = 0;
        if (i >= n)
            return false;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            e = e < 100000 ? e * 10 + (s[i] - '0') : e;
        exponent += negative ? -e : e;
    }
    if (i != n)
        return false;
    long shift = exponent + 6; /* micro-units = digits x 10^shift */
    while (shift < 0 && nd > 0 && digits[nd - 1] == '0') {
        nd--;
        shift++;
    }
    if (nd == 0) {
        *micro = 0;
        return true;
    }
    if (shift < 0 || (long)nd + shift > 19)
        return false;
    uint64_t v = 0;
    for (size_t k = 0; k < nd; k++)
        v = v * 10 + (uint64_t)(digits[k] - '0');
    for (long k = 0; k < shift; k++)
        v *= 10;
    if (v > (uint64_t)MONEY_MAX_WHOLE * (uint64_t)MICRO)
        return false;
    *micro = (int64_t)v;
    return true;
}

bool money_member(const char *body, size_t len, const char *key, int64_t *micro)
{
    const char *text;
    size_t n;
    return member_text(body, len, key, &text, &n) && money_from_number(text, n, micro);
}

bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
    if (s == NULL || !all_digits(s, strlen(s)))
        return false;
    unsigned long long v = 0;
    for (; *s; s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (max - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

char *json_quote(const char *s, size_t len)
{
    /* Worst case: every byte becomes \u00XX (6 bytes), plus quotes and NUL. */
    char *out = xmalloc(len * 6 + 3);
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        switch (c) {
        case '"':  memcpy(out + o, "\\\"", 2); o += 2; break;
        case '\\': memcpy(out + o, "\\\\", 2); o += 2; break;
        case '\n': memcpy(out + o, "\\n", 2); o += 2; break;
        case '\r': memcpy(out + o, "\\r", 2); o += 2; break;
        case '\t': memcpy(out + o, "\\t", 2); o += 2; break;
        default:
            if (c < 0x20)
                o += (size_t)sprintf(out + o, "\\u%04x", c);
            else
                out[o++] = (char)c;   /* UTF-8 passes through untouched */
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

char *redact(const char *secret, const char *s, size_t len, size_t *out_len)
{
    static const char mark[] = "[REDACTED]";
    size_t slen = secret ? strlen(secret) : 0;
    size_t count = 0;
    if (slen > 0)
        for (const char *p = s; (p = memmem(p, len - (size_t)(p - s), secret, slen)); p += slen)
            count++;
    size_t n = len - count * slen + count * (sizeof mark - 1);
    char *out = xmalloc(n + 1), *o = out;
    const char *p = s, *end = s + len;
    for (size_t i = 0; i < count; i++) {
        const char *hit = memmem(p, (size_t)(end - p), secret, slen);
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, mark, sizeof mark - 1);
        o += sizeof mark - 1;
        p = hit + slen;
    }
    memcpy(o, p, (size_t)(end - p));
    out[n] = '\0';
    if (out_len)
        *out_len = n;
    return out;
}

char *redact_str(const char *secret, const char *s)
{
    return redact(secret, s, strlen(s), NULL);
}

bool holds_secret(const char *secret, const char *s, size_t len)
{
    size_t slen = secret ? strlen(secret) : 0;
    return slen > 0 && memmem(s, len, secret, slen) != NULL;
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *query_decode(const char *s, size_t *len)
{
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (; *s; s++) {
        int hi = *s == '%' ? hex_value(s[1]) : -1;
        int lo = hi >= 0 ? hex_value(s[2]) : -1;
        if (lo >= 0) {
            *o++ = (char)(hi * 16 + lo);
            s += 2;
        } else if (*s == '+') {
            *o++ = ' ';
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

void reply_json(struct reply *r, unsigned status, cJSON *doc)
{
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (text == NULL)
        oom();
    r->status = status;
    r->body = text;   /* cJSON allocates with malloc: free() and MHD may release it */
    r->len = strlen(text);
}

void reply_error(struct reply *r, unsigned status, const char *code, const char *message)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "code", code);
    cJSON_AddStringToObject(doc, "message", message);
    reply_json(r, status, doc);
}

void reply_ok(struct reply *r)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddTrueToObject(doc, "ok");
    reply_json(r, 200, doc);
}

void reply_free(struct reply *r)
{
    free(r->body);
    free(r->content_type);
    free(r->retry_after);
    memset(r, 0, sizeof *r);
}
