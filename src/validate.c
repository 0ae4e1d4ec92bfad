/* validate.c: every rule checked before a request leaves the process. */
#include "validate.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <lauxlib.h>

#include "ascii.h"
#include "compat.h"
#include "http1.h"
#include "retry.h"

#define DEFAULT_BASE_URL "https://partner.orbt.com"
#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_CONNECT_TIMEOUT 10.0
#define DEFAULT_MAX_BODY ((size_t)8 * 1024 * 1024)
#define MAX_BODY_CEILING ((int64_t)1024 * 1024 * 1024)
/* nginx's keep-alive pool, per worker: connections kept, and calls that
 * may wait for one (cosockets only). */
#define POOL_SIZE_DEFAULT 256
#define POOL_CEILING 100000
#define TIMEOUT_CEILING 86400.0

/* ===== Reporting ===== */

__attribute__((format(printf, 3, 4)))
static int fail(validation_error *err, const char *field, const char *fmt, ...)
{
    snprintf(err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    /* NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized): initialised just above; a known analyzer false positive */
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return 0;
}

static int fail_type(validation_error *err, const char *field, const char *expected, int type,
                     lua_State *L)
{
    return fail(err, field, "%s must be %s, got %s", field, expected, lua_typename(L, type));
}

/* ===== Byte-level rules ===== */

static int has_control_byte(const lua_text *t)
{
    for (size_t i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->ptr[i];
        if (c < 0x20 || c == 0x7f)
            return 1;
    }
    return 0;
}

/* Header values: printable ASCII only, so nothing can split or smuggle a header. */
static int is_header_safe(const lua_text *t)
{
    for (size_t i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->ptr[i];
        if (c < 0x20 || c >= 0x7f)
            return 0;
    }
    return 1;
}

static int is_valid_utf8(const lua_text *t)
{
    return json_is_utf8(t->ptr, t->len);
}

/* ===== Reading fields ===== */

/* Refuses any key of the table at idx that is not in `known`. */
static int only_known_fields(lua_State *L, int idx, const char *const *known, validation_error *err)
{
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            return fail(err, "?", "option names must be strings");
        }
        size_t key_len = 0;
        const char *key = lua_tolstring(L, -1, &key_len);
        int found = 0;
        /* Compared with the length, so "timeout\0typo" is not "timeout". */
        for (const char *const *k = known; *k != NULL && !found; k++)
            found = key_len > 0 && (*k)[0] == key[0] && strlen(*k) == key_len && memcmp(*k, key, key_len) == 0;
        if (!found) {
            fail(err, key, "unknown field '%s'", key);
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

/* Reads a string field. Returns 1 and sets out (ptr NULL when absent and
 * optional), or 0 on a wrong type, emptiness or a missing required field.
 *
 * The value stays on the Lua stack until the calling C function returns: a
 * table with an __index function can hand out strings nothing else refers
 * to, and the garbage collector would free them under our pointers. */
static int take_string(lua_State *L, int pos, const char *key, int required, lua_text *out,
                       validation_error *err)
{
    int type = lua_type(L, pos);
    out->ptr = NULL;
    out->len = 0;
    if (type == LUA_TSTRING)
        out->ptr = lua_tolstring(L, pos, &out->len);
    if (type == LUA_TNIL)
        return required ? fail(err, key, "%s is required", key) : 1;
    if (type != LUA_TSTRING)
        return fail_type(err, key, "a string", type, L);
    if (out->len == 0)
        return fail(err, key, "%s must not be empty", key);
    return 1;
}

static int read_string(lua_State *L, int idx, const char *key, int required, lua_text *out,
                       validation_error *err)
{
    lua_getfield(L, idx, key);
    return take_string(L, -1, key, required, out, err);
}

static int check_header_value(const char *key, const lua_text *value, validation_error *err)
{
    if (value->ptr != NULL && !is_header_safe(value))
        return fail(err, key, "%s must be printable ASCII (no CR, LF, NUL or other control characters)", key);
    if (value->len > HEADER_VALUE_MAX)
        return fail(err, key, "%s must be at most %d characters", key, HEADER_VALUE_MAX);
    return 1;
}

static int read_header_value(lua_State *L, int idx, const char *key, int required,
                             lua_text *out, validation_error *err)
{
    return read_string(L, idx, key, required, out, err) && check_header_value(key, out, err);
}

/* The secret is only an HMAC key and may hold any bytes, CR, LF and NUL
 * included: it is never sent, in a header or anywhere else. It must be a
 * string (take_string refuses anything else) and not empty. */
static int check_secret(const lua_text *secret, validation_error *err)
{
    if (secret->ptr == NULL)
        return fail(err, "secret", "secret is required");
    if (secret->len == 0)
        return fail(err, "secret", "secret must not be empty");
    return 1;
}

static int read_secret(lua_State *L, int idx, lua_text *out, validation_error *err)
{
    return read_string(L, idx, "secret", 1, out, err) && check_secret(out, err);
}

/* A number field in (0, ceiling]; absent leaves *out unchanged. */
static int read_positive_number(lua_State *L, int idx, const char *key, double ceiling,
                                double *out, validation_error *err)
{
    lua_getfield(L, idx, key);
    int type = lua_type(L, -1);
    double v = type == LUA_TNUMBER ? (double)lua_tonumber(L, -1) : 0;
    lua_pop(L, 1);
    if (type == LUA_TNIL)
        return 1;
    if (type != LUA_TNUMBER)
        return fail_type(err, key, "a number of seconds", type, L);
    if (!(v > 0 && v <= ceiling))
        return fail(err, key, "%s must be a number of seconds greater than 0 and at most %.0f", key, ceiling);
    *out = v;
    return 1;
}

/* An integer field in [lo, hi]; present says whether it was given. */
static int read_integer(lua_State *L, int idx, const char *key, int64_t lo, int64_t hi,
                        int64_t *out, int *present, validation_error *err)
{
    lua_getfield(L, idx, key);
    int type = lua_type(L, -1);
    int64_t v = 0;
    int integral = orbt_to_int64(L, -1, &v);
    lua_pop(L, 1);
    *present = type != LUA_TNIL;
    if (type == LUA_TNIL)
        return 1;
    if (!integral || v < lo || v > hi) {
        if (hi == INT64_MAX)
            return fail(err, key, "%s must be an integer >= %lld", key, (long long)lo);
        return fail(err, key, "%s must be an integer from %lld to %lld", key, (long long)lo, (long long)hi);
    }
    *out = v;
    return 1;
}

static int read_boolean(lua_State *L, int idx, const char *key, int *out, validation_error *err)
{
    lua_getfield(L, idx, key);
    int type = lua_type(L, -1);
    if (type == LUA_TBOOLEAN)
        *out = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (type != LUA_TNIL && type != LUA_TBOOLEAN)
        return fail_type(err, key, "a boolean", type, L);
    return 1;
}

/* A hook: a function, or nil. The client keeps it (client.c, hooks.c). */
static int read_hook(lua_State *L, int idx, const char *key, validation_error *err)
{
    lua_getfield(L, idx, key);
    int type = lua_type(L, -1);
    lua_pop(L, 1);
    if (type != LUA_TNIL && type != LUA_TFUNCTION)
        return fail_type(err, key, "a function", type, L);
    return 1;
}

/* Room for the strings a validator leaves on the stack, and then some. */
#define VALIDATE_STACK_SLOTS 16

static int require_table(lua_State *L, int idx, const char *what, validation_error *err)
{
    luaL_checkstack(L, VALIDATE_STACK_SLOTS, "orbt: validating arguments");
    if (lua_type(L, idx) != LUA_TTABLE)
        return fail(err, what, "%s must be a table, got %s", what, luaL_typename(L, idx));
    return 1;
}

/* ===== URLs and files ===== */

/* base_url, read by url.c; http:// only for loopback hosts unless the
 * caller opted in. No Lua call follows the allocations here or in
 * choose_proxy, so a Lua error cannot leak them. */
static int parse_base_url(const lua_text *text, client_options *out, validation_error *err)
{
    char why[URL_WHY_MAX];
    if (memchr(text->ptr, '\0', text->len) != NULL)
        return fail(err, "base_url", "base_url must be a plain https://host[:port][/path] URL (no NUL)");
    if (url_parse_base(text->ptr, &out->base, why) != 0)
        return fail(err, "base_url", "%s", why);
    if (!out->base.tls && !out->allow_insecure_http && !url_host_is_loopback(out->base.host))
        return fail(err, "base_url", "base_url must use https:// (http:// is accepted only for loopback hosts, or with allow_insecure_http = true)");
    return 1;
}

/* A file of CAs must be a readable file now: a typo is an error before any
 * traffic, not a TLS failure on the first call. */
static int read_file_path(lua_State *L, int idx, const char *key, lua_text *out, validation_error *err)
{
    if (!read_string(L, idx, key, 0, out, err))
        return 0;
    if (out->ptr == NULL)
        return 1;
    if (memchr(out->ptr, '\0', out->len) != NULL)
        return fail(err, key, "%s must be a file path without NUL", key);
    FILE *f = fopen(out->ptr, "rb");
    if (f == NULL)
        return fail(err, key, "%s cannot be read: %s", key, strerror(errno));
    struct stat st;
    int regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    fclose(f);
    if (!regular)
        return fail(err, key, "%s must be a file of PEM certificates, not a directory or device", key);
    return 1;
}

/* A proxy URL written without a scheme ("proxy:3128", as environment
 * variables often are) is an HTTP proxy, as libcurl reads it. */
static char *proxy_url_text(const char *text)
{
    size_t len = strlen(text);
    int has_scheme = strstr(text, "://") != NULL;
    char *url = malloc(len + 8);
    if (url != NULL)
        snprintf(url, len + 8, "%s%s", has_scheme ? "" : "http://", text);
    return url;
}

/* The `proxy` option: a URL, false for none, or nil for the environment's. */
static int read_proxy_option(lua_State *L, int idx, lua_text *text, int *disabled, validation_error *err)
{
    static const char rule[] = "proxy must be a URL such as http://host:port, or false for none";
    lua_getfield(L, idx, "proxy");
    int type = lua_type(L, -1);
    *disabled = type == LUA_TBOOLEAN && !lua_toboolean(L, -1);
    text->ptr = NULL;
    text->len = 0;
    if (type == LUA_TSTRING) {
        text->ptr = lua_tolstring(L, -1, &text->len); /* stays on the stack */
        if (text->len == 0 || memchr(text->ptr, '\0', text->len) != NULL)
            return fail(err, "proxy", "%s", rule);
        return 1;
    }
    lua_pop(L, 1);
    if (type != LUA_TNIL && !*disabled)
        return fail(err, "proxy", "%s", rule);
    return 1;
}

/* The proxy: the option's, else the environment's as libcurl reads it. */
static int choose_proxy(const lua_text *option, int disabled, client_options *out, validation_error *err)
{
    char why[URL_WHY_MAX];
    const char *text = option->ptr;
    const char *source = "proxy";
    if (disabled)
        return 1;
    if (text == NULL) {
        text = url_proxy_from_environment(out->base.scheme, out->base.host);
        source = out->base.tls ? "proxy (from https_proxy or all_proxy in the environment)"
                               : "proxy (from http_proxy or all_proxy in the environment)";
    }
    if (text == NULL)
        return 1;
    out->proxy = proxy_url_text(text);
    if (out->proxy == NULL)
        return fail(err, "proxy", "out of memory reading the proxy");
    if (url_parse_proxy(out->proxy, &out->proxy_parts, why) != 0)
        return fail(err, "proxy", "%s %s", source, why + strlen("proxy "));
    return 1;
}

static int text_is(const lua_text *t, const char *s)
{
    return t->len == strlen(s) && memcmp(t->ptr, s, t->len) == 0;
}

static int read_transport_choice(lua_State *L, int idx, transport_choice *out, validation_error *err)
{
    static const char rule[] = "transport must be \"auto\", \"curl\" or \"cosocket\"";
    lua_text name = {NULL, 0};
    if (!read_string(L, idx, "transport", 0, &name, err))
        return 0;
    if (name.ptr == NULL || text_is(&name, "auto"))
        *out = TRANSPORT_CHOICE_AUTO;
    else if (text_is(&name, "curl"))
        *out = TRANSPORT_CHOICE_CURL;
    else if (text_is(&name, "cosocket"))
        *out = TRANSPORT_CHOICE_COSOCKET;
    else
        return fail(err, "transport", "%s", rule);
    return 1;
}

static int read_limits(lua_State *L, int idx, call_limits *out, validation_error *err)
{
    int64_t retries = 0;
    int has_retries = 0;
    if (!read_integer(L, idx, "max_retries", 0, RETRY_LIMIT, &retries, &has_retries, err)
        || !read_positive_number(L, idx, "deadline", TIMEOUT_CEILING, &out->deadline, err))
        return 0;
    if (has_retries)
        out->max_retries = (int)retries;
    return 1;
}

/* ===== Request ids ===== */

#define ID_HEADERS_EXTRA_MAX 8
#define HEADER_NAME_MAX 64

/* RFC 9110's token characters: what a header name is made of. */
static int is_token_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ascii_is_digit(c)
           || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static char *lower_copy(const char *s, size_t n)
{
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return NULL;
    static const char upper[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ", lower[] = "abcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; i < n; i++) {
        const char *at = s[i] != '\0' ? strchr(upper, s[i]) : NULL;
        if (at != NULL)
            copy[i] = lower[at - upper];
        else
            copy[i] = s[i];
    }
    copy[n] = '\0';
    return copy;
}

void id_headers_free(char **names)
{
    if (names == NULL)
        return;
    for (char **n = names; *n != NULL; n++)
        free(*n);
    free(names);
}

/* request_id_headers: a list of header names tried before the defaults. */
static int read_id_headers(lua_State *L, int idx, client_options *out, validation_error *err)
{
    static const char key[] = "request_id_headers";
    static const char rule[] = "request_id_headers must be a list of at most 8 header names";
    lua_getfield(L, idx, key);
    int list = lua_gettop(L);
    size_t extra = 0;
    if (!lua_isnil(L, list)) {
        if (!lua_istable(L, list))
            return fail(err, key, "%s", rule);
        extra = lua_rawlen(L, list);
        if (extra > ID_HEADERS_EXTRA_MAX)
            return fail(err, key, "%s", rule);
    }
    size_t defaults = 0;
    while (http1_default_id_headers[defaults] != NULL)
        defaults++;
    out->id_headers = calloc(extra + defaults + 1, sizeof *out->id_headers);
    if (out->id_headers == NULL)
        return fail(err, key, "out of memory");
    for (size_t i = 0; i < extra; i++) {
        lua_rawgeti(L, list, (lua_Integer)i + 1);
        size_t n = 0;
        const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
        int ok = name != NULL && n > 0 && n <= HEADER_NAME_MAX;
        for (size_t j = 0; ok && j < n; j++)
            ok = is_token_char(name[j]);
        if (!ok)
            return fail(err, key, "request_id_headers[%d] must be a header name (letters, digits, '-'...)",
                        (int)i + 1);
        out->id_headers[i] = lower_copy(name, n);
        lua_pop(L, 1);
        if (out->id_headers[i] == NULL)
            return fail(err, key, "out of memory");
    }
    for (size_t i = 0; i < defaults; i++) {
        out->id_headers[extra + i] = lower_copy(http1_default_id_headers[i], strlen(http1_default_id_headers[i]));
        if (out->id_headers[extra + i] == NULL)
            return fail(err, key, "out of memory");
    }
    return 1;
}

/* ===== Public validators ===== */

int validate_client_options(lua_State *L, int idx, client_options *out, validation_error *err)
{
    static const char *const known[] = {"api_key", "client_id", "secret", "base_url", "timeout",
                                        "connect_timeout", "max_body", "allow_insecure_http",
                                        "transport", "max_retries", "deadline", "ca_file", "proxy",
                                        "proxy_ca_file", "request_id_headers", "send_request_id",
                                        "on_request", "on_response", "on_hook_error", "pool_size",
                                        "pool_backlog", NULL};
    memset(out, 0, sizeof *out);
    out->timeout = DEFAULT_TIMEOUT;
    out->connect_timeout = DEFAULT_CONNECT_TIMEOUT;
    out->max_body = DEFAULT_MAX_BODY;
    if (!require_table(L, idx, "options", err) || !only_known_fields(L, idx, known, err)
        || !read_header_value(L, idx, "api_key", 1, &out->api_key, err)
        || !read_header_value(L, idx, "client_id", 1, &out->client_id, err)
        || !read_secret(L, idx, &out->secret, err)
        || !read_positive_number(L, idx, "timeout", TIMEOUT_CEILING, &out->timeout, err)
        || !read_positive_number(L, idx, "connect_timeout", TIMEOUT_CEILING, &out->connect_timeout, err)
        || !read_boolean(L, idx, "allow_insecure_http", &out->allow_insecure_http, err)
        || !read_transport_choice(L, idx, &out->transport, err)
        || !read_id_headers(L, idx, out, err)
        || !read_boolean(L, idx, "send_request_id", &out->send_request_id, err)
        || !read_hook(L, idx, "on_request", err) || !read_hook(L, idx, "on_response", err)
        || !read_hook(L, idx, "on_hook_error", err))
        return 0;
    call_limits limits = {RETRY_DEFAULT_MAX, RETRY_DEFAULT_DEADLINE};
    if (!read_limits(L, idx, &limits, err))
        return 0;
    out->max_retries = limits.max_retries;
    out->deadline = limits.deadline;
    int64_t max_body = 0;
    int has_max_body = 0;
    if (!read_integer(L, idx, "max_body", 1024, MAX_BODY_CEILING, &max_body, &has_max_body, err))
        return 0;
    if (has_max_body)
        out->max_body = (size_t)max_body;
    int64_t pool_size = POOL_SIZE_DEFAULT, backlog = -1;
    int has_pool_size = 0, has_backlog = 0;
    if (!read_integer(L, idx, "pool_size", 1, POOL_CEILING, &pool_size, &has_pool_size, err)
        || !read_integer(L, idx, "pool_backlog", 0, POOL_CEILING, &backlog, &has_backlog, err))
        return 0;
    out->pool_size = (int)pool_size;
    out->pool_backlog = has_backlog ? (int)backlog : -1;
    lua_text base_url = {NULL, 0}, proxy = {NULL, 0};
    int proxy_disabled = 0;
    if (!read_file_path(L, idx, "ca_file", &out->ca_file, err)
        || !read_file_path(L, idx, "proxy_ca_file", &out->proxy_ca_file, err)
        || !read_string(L, idx, "base_url", 0, &base_url, err)
        || !read_proxy_option(L, idx, &proxy, &proxy_disabled, err))
        return 0;
    if (base_url.ptr == NULL) {
        base_url.ptr = DEFAULT_BASE_URL;
        base_url.len = strlen(DEFAULT_BASE_URL);
    }
    if (!parse_base_url(&base_url, out, err) || !choose_proxy(&proxy, proxy_disabled, out, err))
        return 0;
    char why[VALIDATION_MESSAGE_MAX];
    const char *field = client_options_cosocket_refusal(out, why, sizeof why);
    if (out->transport == TRANSPORT_CHOICE_COSOCKET && field != NULL)
        return fail(err, field, "%s", why);
    return 1;
}

const char *client_options_cosocket_refusal(const client_options *o, char *message, size_t size)
{
    static const char curl_instead[] = "give the client transport = \"curl\"";
    const url_parts *proxy = o->proxy != NULL ? &o->proxy_parts : NULL;
    if (o->ca_file.ptr != NULL) {
        snprintf(message, size, "ca_file applies to libcurl only: in nginx, trust a CA with "
                 "lua_ssl_trusted_certificate, or %s", curl_instead);
        return "ca_file";
    }
    if (proxy == NULL)
        return NULL;
    if (strcmp(proxy->scheme, "http") != 0 && strcmp(proxy->scheme, "https") != 0) {
        snprintf(message, size, "a %s:// proxy needs libcurl: %s, or use an http:// proxy", proxy->scheme,
                 curl_instead);
        return "proxy";
    }
    if (o->proxy_ca_file.ptr != NULL) {
        snprintf(message, size, "proxy_ca_file applies to libcurl only: in nginx, trust the proxy's CA with "
                 "lua_ssl_trusted_certificate, or %s", curl_instead);
        return "proxy_ca_file";
    }
    if (proxy->tls && o->base.tls) {
        snprintf(message, size, "cosockets cannot speak TLS to the server inside TLS to an https:// proxy: "
                 "use an http:// proxy, or %s", curl_instead);
        return "proxy";
    }
    return NULL;
}

void client_options_free(client_options *o)
{
    id_headers_free(o->id_headers);
    o->id_headers = NULL;
    url_parts_free(&o->base);
    url_parts_free(&o->proxy_parts);
    if (o->proxy != NULL) {
        memset(o->proxy, 0, strlen(o->proxy)); /* it may hold credentials */
        free(o->proxy);
        o->proxy = NULL;
    }
}

static int is_email_shaped(const lua_text *t)
{
    const char *at = memchr(t->ptr, '@', t->len);
    if (t->len > 254 || at == NULL || memchr(at + 1, '@', t->len - (size_t)(at - t->ptr) - 1))
        return 0;
    size_t local = (size_t)(at - t->ptr);
    size_t domain = t->len - local - 1;
    const char *d = at + 1;
    if (local == 0 || local > 64 || domain == 0 || d[0] == '.' || d[domain - 1] == '.')
        return 0;
    for (size_t i = 0; i < t->len; i++) {
        unsigned char c = (unsigned char)t->ptr[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    return is_valid_utf8(t);
}

static int is_currency_code(const lua_text *t)
{
    return t->len == 3 && t->ptr[0] >= 'A' && t->ptr[0] <= 'Z' && t->ptr[1] >= 'A'
           && t->ptr[1] <= 'Z' && t->ptr[2] >= 'A' && t->ptr[2] <= 'Z';
}

/* "50", "50.00", "0.1": digits, no leading zeros, an optional fraction. It is
 * sent verbatim, so it must already be a JSON number. */
static int is_decimal_string(const char *s, size_t len)
{
    size_t whole = strspn(s, "0123456789");
    if (whole == 0 || whole > 15 || (whole > 1 && s[0] == '0'))
        return 0;
    if (whole == len)
        return 1;
    if (s[whole] != '.')
        return 0;
    size_t fraction = strspn(s + whole + 1, "0123456789");
    return fraction > 0 && fraction <= 12 && whole + 1 + fraction == len;
}

/* Whether a decimal string is above zero: some digit is not 0. */
static int has_nonzero_digit(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] >= '1' && s[i] <= '9')
            return 1;
    return 0;
}

/* An amount of money: a finite number, or a decimal string sent verbatim,
 * written into out as the JSON number text that is sent. `positive`: it
 * must be above 0 (a transaction), else 0 is allowed (initialFunds). */
static int read_amount(lua_State *L, int idx, const char *key, int positive, char *out, size_t outlen,
                       validation_error *err)
{
    lua_getfield(L, idx, key);
    int type = lua_type(L, -1);
    int ok = 0;
    if (type == LUA_TNUMBER && orbt_is_integer(L, -1)) {
        int64_t v = 0;
        orbt_to_int64(L, -1, &v);
        ok = (positive ? v > 0 : v >= 0) && snprintf(out, outlen, "%lld", (long long)v) > 0;
    } else if (type == LUA_TNUMBER) {
        double v = (double)lua_tonumber(L, -1);
        ok = isfinite(v) && (positive ? v > 0 : v >= 0) && json_format_number(v, out) > 0;
    } else if (type == LUA_TSTRING) {
        size_t len = 0;
        const char *s = lua_tolstring(L, -1, &len);
        ok = len < outlen && is_decimal_string(s, len) && (!positive || has_nonzero_digit(s, len));
        if (ok)
            memcpy(out, s, len + 1);
    }
    lua_pop(L, 1);
    if (type == LUA_TNIL)
        return fail(err, key, "%s is required", key);
    if (!ok)
        return fail(err, key, "%s must be a finite number %s, or a decimal string like \"%s\" (at most 15 "
                    "digits before the point and 12 after)", key, positive ? "> 0" : ">= 0",
                    positive ? "15.00" : "50.00");
    return 1;
}

int validate_customer(lua_State *L, int idx, op_input *in, validation_error *err)
{
    static const char *const known[] = {"fullName", "email", "currency", "initialFunds", NULL};
    customer_input *out = &in->customer;
    memset(out, 0, sizeof *out);
    if (!require_table(L, idx, "customer", err) || !only_known_fields(L, idx, known, err)
        || !read_string(L, idx, "fullName", 1, &out->full_name, err)
        || !read_string(L, idx, "email", 1, &out->email, err)
        || !read_string(L, idx, "currency", 1, &out->currency, err))
        return 0;
    if (!is_valid_utf8(&out->full_name) || has_control_byte(&out->full_name))
        return fail(err, "fullName", "fullName must be UTF-8 text without control characters");
    if (!is_email_shaped(&out->email))
        return fail(err, "email", "email must look like name@domain (no spaces or control characters)");
    if (!is_currency_code(&out->currency))
        return fail(err, "currency", "currency must be an ISO 4217 code: three upper-case letters such as \"USD\"");
    return read_amount(L, idx, "initialFunds", 0, out->initial_funds, sizeof out->initial_funds, err);
}

int validate_page_query(lua_State *L, int idx, op_input *in, validation_error *err)
{
    static const char *const known[] = {"page", "size", NULL};
    page_query *out = &in->page;
    memset(out, 0, sizeof *out);
    if (lua_isnoneornil(L, idx))
        return 1;
    return require_table(L, idx, "options", err) && only_known_fields(L, idx, known, err)
           && read_integer(L, idx, "page", 0, INT32_MAX, &out->page, &out->has_page, err)
           && read_integer(L, idx, "size", 1, PAGE_SIZE_MAX, &out->size, &out->has_size, err);
}

/* "101": digits without a sign or leading zeros, as an int64 >= 1. */
static int read_id_digits(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 18 || s[0] == '0' || strspn(s, "0123456789") != len)
        return 0;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    *out = v;
    return 1;
}

/* An id path segment: characters that need no percent-encoding, and not
 * "." or "..", which a server or proxy would read as a step in the path. */
static int is_path_key(const char *s, size_t len)
{
    static const char allowed[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    return len >= 1 && len <= PARAM_KEY_MAX && strspn(s, allowed) == len && strspn(s, ".") != len;
}

static int read_path_id(lua_State *L, int idx, const char *name, param_value *out, validation_error *err)
{
    int ok = 0;
    if (lua_type(L, idx) == LUA_TSTRING) {
        size_t len = 0;
        const char *s = lua_tolstring(L, idx, &len);
        ok = read_id_digits(s, len, &out->id);
    } else {
        ok = orbt_to_int64(L, idx, &out->id);
    }
    if (!ok || out->id < 1)
        return fail(err, name, "%s must be an integer >= 1, or a string of its digits", name);
    return 1;
}

static int read_path_key(lua_State *L, int idx, const char *name, param_value *out, validation_error *err)
{
    size_t len = 0;
    int64_t number = 0;
    int ok = 0;
    if (lua_type(L, idx) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, idx, &len);
        ok = is_path_key(s, len);
        if (ok)
            memcpy(out->key, s, len + 1);
    } else if (lua_type(L, idx) == LUA_TNUMBER && orbt_to_int64(L, idx, &number)) {
        ok = snprintf(out->key, sizeof out->key, "%lld", (long long)number) > 0;
    }
    if (!ok)
        return fail(err, name, "%s must be a string of 1 to %d characters from A-Z a-z 0-9 . _ - (not only dots), "
                    "or an integer", name, PARAM_KEY_MAX);
    return 1;
}

int validate_path_param(lua_State *L, int idx, const char *name, param_kind kind, param_value *out,
                        validation_error *err)
{
    memset(out, 0, sizeof *out);
    luaL_checkstack(L, VALIDATE_STACK_SLOTS, "orbt: validating arguments");
    int type = lua_type(L, idx);
    if (type == LUA_TNIL || type == LUA_TNONE)
        return fail(err, name, "%s is required", name);
    return kind == PARAM_ID ? read_path_id(L, idx, name, out, err) : read_path_key(L, idx, name, out, err);
}

/* ===== Transactions ===== */

static size_t utf8_length(const lua_text *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->len; i++)
        n += ((unsigned char)t->ptr[i] & 0xc0) != 0x80;
    return n;
}

/* 1..REFERENCE_ID_MAX characters from '!' to '~'. */
static int is_reference_id(const lua_text *t)
{
    return t->len >= 1 && t->len <= REFERENCE_ID_MAX && is_header_safe(t) && memchr(t->ptr, ' ', t->len) == NULL;
}

static int read_transaction_type(lua_State *L, int idx, const char **out, validation_error *err)
{
    lua_text type;
    if (!read_string(L, idx, "transactionType", 1, &type, err))
        return 0;
    *out = text_is(&type, "CREDIT") ? "CREDIT" : text_is(&type, "DEBIT") ? "DEBIT" : NULL;
    if (*out == NULL)
        return fail(err, "transactionType", "transactionType must be \"CREDIT\" or \"DEBIT\"");
    return 1;
}

/* The fields every transaction has; `type` is the method's, or NULL when
 * the table names it. */
static int read_transaction(lua_State *L, int idx, const char *type, op_input *in, validation_error *err)
{
    static const char *const with_type[] = {"amount", "transactionType", "referenceId", "description", NULL};
    static const char *const without_type[] = {"amount", "referenceId", "description", NULL};
    transaction_input *out = &in->transaction;
    memset(out, 0, sizeof *out);
    out->type = type;
    if (!require_table(L, idx, "transaction", err)
        || !only_known_fields(L, idx, type == NULL ? with_type : without_type, err)
        || !read_amount(L, idx, "amount", 1, out->amount, sizeof out->amount, err)
        || (type == NULL && !read_transaction_type(L, idx, &out->type, err))
        || !read_string(L, idx, "referenceId", 1, &out->reference_id, err)
        || !read_string(L, idx, "description", 0, &out->description, err))
        return 0;
    if (!is_reference_id(&out->reference_id))
        return fail(err, "referenceId", "referenceId must be 1 to %d printable ASCII characters without spaces",
                    REFERENCE_ID_MAX);
    const lua_text *d = &out->description;
    if (d->ptr != NULL && (!is_valid_utf8(d) || has_control_byte(d)))
        return fail(err, "description", "description must be UTF-8 text without control characters");
    if (d->ptr != NULL && utf8_length(d) > DESCRIPTION_MAX)
        return fail(err, "description", "description must be at most %d characters", DESCRIPTION_MAX);
    return 1;
}

int validate_transaction(lua_State *L, int idx, op_input *in, validation_error *err)
{
    return read_transaction(L, idx, NULL, in, err);
}

int validate_credit(lua_State *L, int idx, op_input *in, validation_error *err)
{
    return read_transaction(L, idx, "CREDIT", in, err);
}

int validate_debit(lua_State *L, int idx, op_input *in, validation_error *err)
{
    return read_transaction(L, idx, "DEBIT", in, err);
}

int validate_call_limits(lua_State *L, int idx, call_limits *out, validation_error *err)
{
    static const char *const known[] = {"max_retries", "deadline", "on_request", "on_response", NULL};
    if (lua_isnoneornil(L, idx))
        return 1;
    return require_table(L, idx, "call options", err) && only_known_fields(L, idx, known, err)
           && read_limits(L, idx, out, err) && read_hook(L, idx, "on_request", err)
           && read_hook(L, idx, "on_response", err);
}

int validate_bulk_options(lua_State *L, int idx, int *concurrency, call_limits *limits,
                          validation_error *err)
{
    static const char *const known[] = {"concurrency", "max_retries", "deadline", "on_request", "on_response",
                                        NULL};
    *concurrency = BULK_CONCURRENCY_DEFAULT;
    if (lua_isnoneornil(L, idx))
        return 1;
    int64_t n = 0;
    int has_n = 0;
    if (!require_table(L, idx, "options", err) || !only_known_fields(L, idx, known, err)
        || !read_integer(L, idx, "concurrency", 1, BULK_CONCURRENCY_MAX, &n, &has_n, err)
        || !read_limits(L, idx, limits, err) || !read_hook(L, idx, "on_request", err)
        || !read_hook(L, idx, "on_response", err))
        return 0;
    if (has_n)
        *concurrency = (int)n;
    return 1;
}

/* ===== client:request ===== */

#define RAW_PATH_PREFIX "/api/partner/"
#define RAW_PATH_MAX 2048
#define RAW_QUERY_MAX 64        /* parameters */
#define RAW_QUERY_TEXT_MAX 1024 /* bytes of a name or a value */

static const char *raw_method(const lua_text *m)
{
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", NULL};
    for (const char *const *k = methods; *k != NULL; k++)
        if (strlen(*k) == m->len && memcmp(*k, m->ptr, m->len) == 0)
            return *k;
    return NULL;
}

/* RFC 3986's pchar and '/': unreserved, sub-delims, ':', '@', and '%'
 * followed by two hex digits. No "." or ".." segment, spelled or encoded. */
static int is_raw_path(const lua_text *p)
{
    static const char sub_delims[] = "!$&'()*+,;=:@/-._~";
    size_t prefix = sizeof RAW_PATH_PREFIX - 1;
    if (p->len < prefix || p->len > RAW_PATH_MAX || memcmp(p->ptr, RAW_PATH_PREFIX, prefix) != 0)
        return 0;
    for (size_t i = 0; i < p->len; i++) {
        char c = p->ptr[i];
        if (c == '%') {
            /* No encoded '.', '/' or '\\': a gateway that decodes before it
             * normalises must not find a way out of /api/partner/. */
            if (i + 2 >= p->len || ascii_hex_value(p->ptr[i + 1]) < 0 || ascii_hex_value(p->ptr[i + 2]) < 0)
                return 0;
            int byte = ascii_hex_value(p->ptr[i + 1]) * 16 + ascii_hex_value(p->ptr[i + 2]);
            if (byte == '.' || byte == '/' || byte == '\\')
                return 0;
            i += 2;
        } else if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || ascii_is_digit(c)
                     || (c != '\0' && strchr(sub_delims, c) != NULL))) {
            return 0;
        }
    }
    for (size_t i = 0; i < p->len; i++) {
        if (p->ptr[i] != '/')
            continue;
        size_t end = i + 1;
        while (end < p->len && p->ptr[end] != '/')
            end++;
        size_t n = end - i - 1;
        if ((n == 1 && p->ptr[i + 1] == '.') || (n == 2 && p->ptr[i + 1] == '.' && p->ptr[i + 2] == '.'))
            return 0;
    }
    return 1;
}

/* opts.query: {name = string | number | boolean}, names as strings. */
static int check_raw_query(lua_State *L, int idx, validation_error *err)
{
    static const char rule[] = "query must be a table of names and values (strings, numbers or booleans)";
    int count = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int key_type = lua_type(L, -2), type = lua_type(L, -1);
        size_t key_len = key_type == LUA_TSTRING ? lua_rawlen(L, -2) : 0;
        size_t len = type == LUA_TSTRING ? lua_rawlen(L, -1) : 0;
        int ok = key_type == LUA_TSTRING && key_len > 0 && key_len <= RAW_QUERY_TEXT_MAX
                 && len <= RAW_QUERY_TEXT_MAX
                 && (type == LUA_TSTRING || type == LUA_TBOOLEAN
                     || (type == LUA_TNUMBER && isfinite((double)lua_tonumber(L, -1))));
        lua_pop(L, 1);
        if (!ok || ++count > RAW_QUERY_MAX) {
            lua_pop(L, 1);
            return fail(err, "query", "%s, at most %d of them", rule, RAW_QUERY_MAX);
        }
    }
    return 1;
}

static int read_raw_idempotency(lua_State *L, int opts, raw_input *out, validation_error *err)
{
    static const char rule[] = "idempotency must be \"read\", \"keyed\" or \"create\"";
    out->retry = strcmp(out->method, "GET") == 0 ? RETRY_READ : RETRY_CREATE;
    lua_text name = {NULL, 0};
    if (opts == 0 || !read_string(L, opts, "idempotency", 0, &name, err))
        return opts == 0 ? 1 : fail(err, "idempotency", "%s", rule);
    if (name.ptr == NULL)
        return 1;
    if (strlen(name.ptr) != name.len) /* "read\0x" is not "read" */
        return fail(err, "idempotency", "%s", rule);
    if (strcmp(name.ptr, "read") == 0)
        out->retry = RETRY_READ;
    else if (strcmp(name.ptr, "keyed") == 0)
        out->retry = RETRY_KEYED;
    else if (strcmp(name.ptr, "create") == 0)
        out->retry = RETRY_CREATE;
    else
        return fail(err, "idempotency", "%s", rule);
    return 1;
}

/* opts.body: JSON text (checked by the core's reader), or a table the
 * core's writer can write. A GET sends none. */
static int read_raw_body(lua_State *L, int opts, raw_input *out, validation_error *err)
{
    if (opts == 0)
        return 1;
    lua_getfield(L, opts, "body");
    int body = lua_gettop(L);
    int type = lua_type(L, body);
    if (type == LUA_TNIL)
        return 1;
    if (strcmp(out->method, "GET") == 0)
        return fail(err, "body", "a GET sends no body");
    char why[128];
    if (type == LUA_TSTRING) {
        out->body_text.ptr = lua_tolstring(L, body, &out->body_text.len);
        int top = lua_gettop(L);
        int valid = json_push_document(L, out->body_text.ptr, out->body_text.len, why, sizeof why) == 0;
        lua_settop(L, top);
        /* The reader speaks of "the answer": only the details in its parentheses are kept. */
        const char *detail = strchr(why, '(');
        return valid ? 1 : fail(err, "body", "body is not JSON text %s", detail != NULL ? detail : "");
    }
    if (type != LUA_TTABLE)
        return fail(err, "body", "body must be JSON text or a table, got %s", lua_typename(L, type));
    buffer scratch;
    buffer_init(&scratch, 0);
    int written = json_append_value(L, body, &scratch, why, sizeof why) == 0;
    buffer_free(&scratch);
    if (!written)
        return fail(err, "body", "body cannot be written as JSON: %s", why);
    out->body_table = body;
    return 1;
}

int validate_raw_request(lua_State *L, int idx, raw_input *out, call_limits *limits, validation_error *err)
{
    static const char *const known[] = {"query", "body", "idempotency", "max_retries", "deadline",
                                        "on_request", "on_response", NULL};
    memset(out, 0, sizeof *out);
    out->L = L;
    lua_text method = {NULL, 0};
    if (!take_string(L, idx, "method", 1, &method, err))
        return 0;
    out->method = raw_method(&method);
    if (out->method == NULL)
        return fail(err, "method", "method must be GET, POST, PUT, PATCH or DELETE");
    if (!take_string(L, idx + 1, "path", 1, &out->path, err))
        return 0;
    if (!is_raw_path(&out->path))
        return fail(err, "path", "path must start with " RAW_PATH_PREFIX " and hold only path characters: no "
                    "scheme, host, query (use query), fragment or dot segment");
    int opts = 0;
    if (!lua_isnoneornil(L, idx + 2)) {
        if (!require_table(L, idx + 2, "options", err) || !only_known_fields(L, idx + 2, known, err))
            return 0;
        opts = lua_absindex(L, idx + 2);
    }
    if (opts != 0) {
        lua_getfield(L, opts, "query");
        if (!lua_isnil(L, -1)) {
            if (!lua_istable(L, -1) || !check_raw_query(L, lua_gettop(L), err))
                return lua_istable(L, -1) ? 0 : fail(err, "query", "query must be a table");
            out->query = lua_gettop(L);
        }
        if (!read_limits(L, opts, limits, err) || !read_hook(L, opts, "on_request", err)
            || !read_hook(L, opts, "on_response", err))
            return 0;
    }
    return read_raw_idempotency(L, opts, out, err) && read_raw_body(L, opts, out, err);
}

/* YYYY-MM-DDTHH:MM:SS.mmmZ, the only form the API accepts. */
static int is_timestamp(const lua_text *t)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (t->len != sizeof shape - 1)
        return 0;
    for (size_t i = 0; i < t->len; i++) {
        char c = t->ptr[i];
        if (shape[i] == 'd' ? !(c >= '0' && c <= '9') : c != shape[i])
            return 0;
    }
    return 1;
}

/* orbt.sign's fields, in the order they are checked. */
enum { SIGN_METHOD, SIGN_CLIENT_ID, SIGN_API_KEY, SIGN_SECRET, SIGN_TIMESTAMP, SIGN_BODY, SIGN_FIELDS };
static const char *const sign_field_names[SIGN_FIELDS + 1] = {"method", "client_id", "api_key", "secret",
                                                              "timestamp", "body", NULL};

static int sign_field(const char *key, size_t len)
{
    for (int i = 0; i < SIGN_FIELDS; i++) {
        if (strlen(sign_field_names[i]) == len && memcmp(sign_field_names[i], key, len) == 0)
            return i;
    }
    return -1;
}

/* orbt.sign is called for every request a user's own HTTP client sends, so
 * its table is read in one pass: each field is taken as lua_next hands it
 * over, instead of being checked for a name and then looked up again. The
 * values are kept in stack slots until the C function returns. */
static int take_sign_fields(lua_State *L, int idx, int slots, validation_error *err)
{
    if (lua_getmetatable(L, idx)) {
        /* Its fields may come from __index: each is looked up. */
        lua_pop(L, 1);
        if (!only_known_fields(L, idx, sign_field_names, err))
            return 0;
        for (int i = 0; i < SIGN_FIELDS; i++) {
            lua_getfield(L, idx, sign_field_names[i]);
            lua_replace(L, slots + i);
        }
        return 1;
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        int field = -2;
        if (lua_type(L, -2) == LUA_TSTRING) {
            size_t len = 0;
            const char *key = lua_tolstring(L, -2, &len);
            field = sign_field(key, len);
        }
        if (field < 0) {
            if (field == -2)
                fail(err, "?", "option names must be strings");
            else
                fail(err, lua_tostring(L, -2), "unknown field '%s'", lua_tostring(L, -2));
            lua_pop(L, 2);
            return 0;
        }
        lua_replace(L, slots + field);
    }
    return 1;
}

static int is_method_name(const lua_text *method)
{
    if (method->len > 16)
        return 0;
    for (size_t i = 0; i < method->len; i++) {
        char c = method->ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return 0;
    }
    return 1;
}

int validate_sign_input(lua_State *L, int idx, sign_input *out, validation_error *err)
{
    memset(out, 0, sizeof *out);
    if (!require_table(L, idx, "options", err))
        return 0;
    idx = lua_absindex(L, idx);
    int slots = lua_gettop(L) + 1;
    lua_settop(L, slots + SIGN_FIELDS - 1);
    if (!take_sign_fields(L, idx, slots, err)
        || !take_string(L, slots + SIGN_METHOD, "method", 1, &out->method, err)
        || !check_header_value("method", &out->method, err)
        || !take_string(L, slots + SIGN_CLIENT_ID, "client_id", 1, &out->client_id, err)
        || !check_header_value("client_id", &out->client_id, err)
        || !take_string(L, slots + SIGN_API_KEY, "api_key", 1, &out->api_key, err)
        || !check_header_value("api_key", &out->api_key, err)
        || !take_string(L, slots + SIGN_SECRET, "secret", 1, &out->secret, err) || !check_secret(&out->secret, err)
        || !take_string(L, slots + SIGN_TIMESTAMP, "timestamp", 0, &out->timestamp, err)
        || !check_header_value("timestamp", &out->timestamp, err))
        return 0;
    int type = lua_type(L, slots + SIGN_BODY);
    if (type == LUA_TSTRING)
        out->body.ptr = lua_tolstring(L, slots + SIGN_BODY, &out->body.len);
    if (type != LUA_TNIL && type != LUA_TSTRING)
        return fail_type(err, "body", "a string", type, L);
    if (!is_method_name(&out->method))
        return fail(err, "method", "method must be an HTTP method such as \"GET\" or \"POST\"");
    if (out->timestamp.ptr != NULL && !is_timestamp(&out->timestamp))
        return fail(err, "timestamp", "timestamp must look like 2026-06-03T10:00:00.000Z");
    return 1;
}
