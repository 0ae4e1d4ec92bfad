/* json.c: JSON <-> Lua: request bodies written byte for byte, answers read
 * straight into Lua values. */
#include "json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "ascii.h"
#include "compat.h"

/* ===== The C numeric locale =====
 *
 * snprintf and strtod follow LC_NUMERIC, which an embedding
 * host may have set to a locale with a decimal comma (de_DE) or a multi-byte
 * decimal point (ps_AF). JSON always wants '.', so number work switches this
 * thread to the C locale and back; other threads are not affected. */

static locale_t c_numeric;
static pthread_once_t c_numeric_once = PTHREAD_ONCE_INIT;

static void make_c_numeric(void)
{
    c_numeric = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
}

/* Returns the locale to restore, or (locale_t)0 when nothing was changed. */
static locale_t enter_c_numeric(void)
{
    pthread_once(&c_numeric_once, make_c_numeric);
    return c_numeric != (locale_t)0 ? uselocale(c_numeric) : (locale_t)0;
}

static void leave_c_numeric(locale_t previous)
{
    if (previous != (locale_t)0)
        uselocale(previous);
}

/* ===== Writing ===== */

int json_is_utf8(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        unsigned int cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1; cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2; cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3; cp = c & 0x07;
        } else {
            return 0;
        }
        if (len - i <= n)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        /* overlong forms, surrogates, past U+10FFFF */
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff
            || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += n + 1;
    }
    return 1;
}


int json_append_string(buffer *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (buffer_append(b, "\"", 1) != 0)
        return -1;
    size_t run = 0; /* bytes since the last escape, appended in one go */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t n = 0;
        switch (c) {
        case '"': n = 2; memcpy(esc, "\\\"", 2); break;
        case '\\': n = 2; memcpy(esc, "\\\\", 2); break;
        case '\n': n = 2; memcpy(esc, "\\n", 2); break;
        case '\r': n = 2; memcpy(esc, "\\r", 2); break;
        case '\t': n = 2; memcpy(esc, "\\t", 2); break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                n = 6;
            }
        }
        if (n == 0) {
            run++;
            continue;
        }
        if (buffer_append(b, s + i - run, run) != 0 || buffer_append(b, esc, n) != 0)
            return -1;
        run = 0;
    }
    if (buffer_append(b, s + len - run, run) != 0)
        return -1;
    return buffer_append(b, "\"", 1);
}

int json_format_number(double v, char out[JSON_NUMBER_MAX])
{
    if (!isfinite(v))
        return -1;
    if (v == 0)
        v = 0; /* -0 becomes 0 */
    int n = -1;
    locale_t previous = enter_c_numeric();
    if (v == floor(v) && fabs(v) < 9007199254740992.0) {
        n = snprintf(out, JSON_NUMBER_MAX, "%.0f", v);
    } else {
        /* The first precision whose text reads back exactly is the shortest. */
        for (int precision = 1; precision <= 17; precision++) {
            n = snprintf(out, JSON_NUMBER_MAX, "%.*g", precision, v);
            if (n > 0 && n < JSON_NUMBER_MAX && strtod(out, NULL) == v)
                break;
        }
    }
    leave_c_numeric(previous);
    if (n <= 0 || n >= JSON_NUMBER_MAX)
        return -1;
    return n;
}

/* ===== Writing Lua values =====
 *
 * For bodies a caller gives as a Lua table (client:request). Tables are
 * read raw, without metamethods, and nothing here raises a Lua error: the
 * text goes into a C buffer the caller owns. */

#define WRITE_DEPTH_MAX 100
/* A table shared many times over can spell an enormous text. */
#define WRITE_BYTES_MAX ((size_t)8 * 1024 * 1024)

typedef struct write_state {
    lua_State *L;
    buffer *out;
    char *why;
    size_t whylen;
} write_state;

static int write_failed(write_state *w, const char *why)
{
    snprintf(w->why, w->whylen, "%s", why);
    return -1;
}

static int write_value(write_state *w, int idx, int depth);

static int write_number(write_state *w, int idx)
{
    char text[JSON_NUMBER_MAX + 8];
    int n;
    if (orbt_is_integer(w->L, idx))
        n = snprintf(text, sizeof text, "%lld", (long long)lua_tointeger(w->L, idx));
    else
        n = json_format_number((double)lua_tonumber(w->L, idx), text);
    if (n <= 0)
        return write_failed(w, "a number that is not finite (NaN or infinity) has no JSON form");
    return buffer_append(w->out, text, (size_t)n);
}

static int write_string(write_state *w, int idx)
{
    size_t len = 0;
    const char *s = lua_tolstring(w->L, idx, &len);
    if (!json_is_utf8(s, len))
        return write_failed(w, "a string that is not UTF-8 has no JSON form");
    return json_append_string(w->out, s, len);
}

typedef struct key_text {
    const char *ptr;
    size_t len;
} key_text;

static int compare_keys(const void *a, const void *b)
{
    const key_text *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->ptr, y->ptr, n);
    return c != 0 ? c : (x->len > y->len) - (x->len < y->len);
}

/* The table's keys: all 1..n (a list, *is_list), or all strings (sorted into
 * *keys, which the caller frees), or -1. */
static int table_keys(write_state *w, int idx, key_text **keys, size_t *count, int *is_list)
{
    lua_State *L = w->L;
    size_t n = lua_rawlen(L, idx), total = 0, strings = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        total++;
        strings += lua_type(L, -1) == LUA_TSTRING;
    }
    *keys = NULL;
    *count = total;
    *is_list = n > 0 && total == n;
    if (*is_list || total == 0)
        return 0;
    if (strings != total)
        return write_failed(w, "a table must be a list (keys 1..n) or have only string keys");
    *keys = malloc(total * sizeof **keys);
    if (*keys == NULL)
        return write_failed(w, "out of memory");
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        lua_pop(L, 1);
        (*keys)[i].ptr = lua_tolstring(L, -1, &(*keys)[i].len); /* a string key: no conversion */
        i++;
    }
    qsort(*keys, total, sizeof **keys, compare_keys);
    return 0;
}

static int write_table(write_state *w, int idx, int depth)
{
    lua_State *L = w->L;
    if (depth > WRITE_DEPTH_MAX)
        return write_failed(w, "tables nested more than 100 deep (or a table inside itself)");
    if (!lua_checkstack(L, 4))
        return write_failed(w, "out of Lua stack");
    key_text *keys;
    size_t count;
    int is_list, rc = table_keys(w, idx, &keys, &count, &is_list);
    if (rc == 0 && is_list) {
        rc = buffer_append(w->out, "[", 1);
        for (size_t i = 1; rc == 0 && i <= count; i++) {
            lua_rawgeti(L, idx, (lua_Integer)i);
            rc = (i > 1 ? buffer_append(w->out, ",", 1) : 0) || write_value(w, lua_gettop(L), depth + 1) ? -1 : 0;
            lua_pop(L, 1);
        }
        rc = rc || buffer_append(w->out, "]", 1) ? -1 : 0;
    } else if (rc == 0) {
        rc = buffer_append(w->out, "{", 1);
        for (size_t i = 0; rc == 0 && i < count; i++) {
            lua_pushlstring(L, keys[i].ptr, keys[i].len);
            lua_rawget(L, idx);
            rc = (i > 0 ? buffer_append(w->out, ",", 1) : 0) || !json_is_utf8(keys[i].ptr, keys[i].len)
                         || json_append_string(w->out, keys[i].ptr, keys[i].len) || buffer_append(w->out, ":", 1)
                         || write_value(w, lua_gettop(L), depth + 1)
                     ? -1
                     : 0;
            lua_pop(L, 1);
        }
        rc = rc || buffer_append(w->out, "}", 1) ? -1 : 0;
    }
    free(keys);
    if (rc != 0 && w->why[0] == '\0')
        write_failed(w, "a key that is not UTF-8, or out of memory");
    return rc;
}

static int write_value(write_state *w, int idx, int depth)
{
    if (w->out->len > WRITE_BYTES_MAX)
        return write_failed(w, "the JSON text would be larger than 8 MiB");
    switch (lua_type(w->L, idx)) {
    case LUA_TSTRING:
        return write_string(w, idx);
    case LUA_TNUMBER:
        return write_number(w, idx);
    case LUA_TBOOLEAN:
        return buffer_append_str(w->out, lua_toboolean(w->L, idx) ? "true" : "false");
    case LUA_TTABLE:
        return write_table(w, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(w->L, idx) == NULL)
            return buffer_append_str(w->out, "null");
        return write_failed(w, "a light userdata other than orbt.null has no JSON form");
    default:
        snprintf(w->why, w->whylen, "a %s has no JSON form", luaL_typename(w->L, idx));
        return -1;
    }
}

int json_append_value(lua_State *L, int idx, buffer *out, char *why, size_t whylen)
{
    write_state w = {L, out, why, whylen};
    why[0] = '\0';
    int top = lua_gettop(L);
    int rc = write_value(&w, lua_absindex(L, idx), 0);
    lua_settop(L, top);
    return rc;
}

/* ===== Reading =====
 *
 * A single-pass decoder from the answer's bytes straight into Lua values,
 * the way lua-cjson does it: no intermediate tree, no copy of keys and
 * strings before Lua's own. Integers are read from their digits, so ids past
 * 2^53 stay exact; other numbers go through strtod in the C locale. It is
 * strict JSON (RFC 8259): anything else is a decode error with a reason and
 * the offset of the offending byte (the length when the text ends short). */

void json_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
}

/* The deepest nesting of arrays and objects an answer may have: enough for
 * any real answer, and it bounds the C recursion and the Lua stack. */
#define JSON_DEPTH_MAX 1000

/* Longest number text accepted (digits, sign, point, exponent). */
#define JSON_NUMBER_TEXT_MAX 400

/* The most fields an object is sized for ahead: a sibling with a key
 * repeated many times must not make every object after it large. */
#define OBJECT_HINT_MAX 64

typedef struct decoder {
    lua_State *L;
    const char *start, *p, *end;
    int depth;
    const char *why;      /* set on the first error */
    const char *where;    /* and the byte at fault: end when the text ended */
    int too_deep;
    int object_hint;      /* fields to size the next object for (see push_array) */
    int object_fields;    /* fields of the object decoded last */
} decoder;

/* Every error names the offending byte itself, not the one after it. */
static int fail_at(decoder *d, const char *at, const char *why)
{
    if (d->why == NULL) {
        d->why = why;
        d->where = at;
    }
    return -1;
}

static void skip_space(decoder *d)
{
    while (d->p < d->end && (*d->p == ' ' || *d->p == '\n' || *d->p == '\r' || *d->p == '\t'))
        d->p++;
}

/* true, false or null at d->p: the first byte that differs is the fault. */
static int expect_word(decoder *d, const char *word, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (d->p + i >= d->end)
            return fail_at(d, d->end, "unexpected end");
        if (d->p[i] != word[i])
            return fail_at(d, d->p + i, "unexpected character");
    }
    d->p += len;
    return 0;
}

/* Reads the 4 hex digits of a \u escape at d->p; -1 if they are not, with
 * d->p left on the first byte that is not a hex digit (or at the end). */
static long read_hex4(decoder *d)
{
    long v = 0;
    for (int i = 0; i < 4; i++, d->p++) {
        int h = d->p < d->end ? ascii_hex_value(*d->p) : -1;
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A \u escape (the backslash at escape, d->p after its 'u'), with a
 * surrogate pair joined into one code point. \u0000 is kept: Lua strings
 * hold NUL. A surrogate that cannot be paired is at fault from its backslash. */
static int add_unicode_escape(decoder *d, luaL_Buffer *b, const char *escape)
{
    long cp = read_hex4(d);
    if (cp < 0)
        return fail_at(d, d->p, "bad \\u escape");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail_at(d, escape, "lone low surrogate in \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* The low half must follow at once: the first byte of "\u" that
         * is missing or different is the fault. */
        const char *low_escape = d->p;
        if (d->p >= d->end || d->p[0] != '\\')
            return fail_at(d, d->p, "lone high surrogate in \\u escape");
        if (d->p + 1 >= d->end || d->p[1] != 'u')
            return fail_at(d, d->p + 1, "lone high surrogate in \\u escape");
        d->p += 2;
        long low = read_hex4(d);
        if (low < 0)
            return fail_at(d, d->p, "bad \\u escape");
        if (low < 0xDC00 || low > 0xDFFF)
            return fail_at(d, low_escape, "bad surrogate pair in \\u escape");
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    char utf8[4];
    luaL_addlstring(b, utf8, utf8_encode((unsigned long)cp, utf8));
    return 0;
}

/* The rest of a string with escapes, from d->p (just after a backslash run
 * started) into a Lua buffer. */
static int push_escaped_string(decoder *d, const char *from)
{
    lua_State *L = d->L;
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    const char *run = from;
    while (d->p < d->end) {
        unsigned char c = (unsigned char)*d->p;
        if (c == '"') {
            luaL_addlstring(&b, run, (size_t)(d->p - run));
            d->p++;
            luaL_pushresult(&b);
            return 0;
        }
        if (c < 0x20) {
            luaL_pushresult(&b);
            lua_pop(L, 1);
            return fail_at(d, d->p, "control character in a string");
        }
        if (c != '\\') {
            d->p++;
            continue;
        }
        luaL_addlstring(&b, run, (size_t)(d->p - run));
        const char *escape = d->p++;
        if (d->p >= d->end)
            break;
        const char *letter = d->p;
        char e = *d->p++;
        char out;
        switch (e) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u':
            if (add_unicode_escape(d, &b, escape) != 0) {
                luaL_pushresult(&b);
                lua_pop(L, 1);
                return -1;
            }
            run = d->p;
            continue;
        default:
            luaL_pushresult(&b);
            lua_pop(L, 1);
            return fail_at(d, letter, "bad escape in a string");
        }
        luaL_addchar(&b, out);
        run = d->p;
    }
    luaL_pushresult(&b);
    lua_pop(L, 1);
    return fail_at(d, d->end, "unterminated string");
}

/* A string at d->p (on its opening quote). Most strings have no escape and
 * become a Lua string straight from the answer's bytes. */
static int push_string(decoder *d)
{
    const char *begin = ++d->p;
    while (d->p < d->end) {
        unsigned char c = (unsigned char)*d->p;
        if (c == '"') {
            lua_pushlstring(d->L, begin, (size_t)(d->p - begin));
            d->p++;
            return 0;
        }
        if (c == '\\')
            return push_escaped_string(d, begin);
        if (c < 0x20)
            return fail_at(d, d->p, "control character in a string");
        d->p++;
    }
    return fail_at(d, d->end, "unterminated string");
}

/* The number text (valid JSON) as a double, read in the C locale without
 * switching the thread's locale. When no C locale could be made, strtod
 * reads it in the current one, as json_format_number then writes. */
static double read_double(const char *text)
{
    pthread_once(&c_numeric_once, make_c_numeric);
    if (c_numeric != (locale_t)0)
        return strtod_l(text, NULL, c_numeric);
    return strtod(text, NULL);
}

/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? . Integers that fit
 * 64 bits become Lua integers (5.3+); the rest doubles. A number beyond the
 * double range would come back as inf: for amounts that is a wrong answer,
 * not a value, so the document is refused. */
static int push_number(decoder *d)
{
    const char *begin = d->p, *q = d->p, *end = d->end;
    int negative = 0, integral = 1;
    if (q < end && *q == '-') {
        negative = 1;
        q++;
    }
    if (q >= end || *q < '0' || *q > '9')
        return fail_at(d, q, "bad number");
    const char *digits = q;
    if (*q == '0') {
        q++;
        if (q < end && ascii_is_digit(*q)) /* 01: no leading zeros */
            return fail_at(d, q, "bad number");
    } else {
        while (q < end && *q >= '0' && *q <= '9')
            q++;
    }
    size_t ndigits = (size_t)(q - digits);
    if (q < end && *q == '.') {
        integral = 0;
        q++;
        const char *fraction = q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == fraction)
            return fail_at(d, q, "bad number");
    }
    if (q < end && (*q == 'e' || *q == 'E')) {
        integral = 0;
        q++;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        const char *exponent = q;
        while (q < end && *q >= '0' && *q <= '9')
            q++;
        if (q == exponent)
            return fail_at(d, q, "bad number");
    }
    d->p = q;
    if (integral && ndigits <= 18) {
        int64_t v = 0;
        for (size_t i = 0; i < ndigits; i++)
            v = v * 10 + (digits[i] - '0');
        if (negative && v == 0)
            lua_pushnumber(d->L, -0.0); /* -0 has no integer: it keeps its sign as a float */
        else
            orbt_push_int64(d->L, negative ? -v : v);
        return 0;
    }
    size_t len = (size_t)(q - begin);
    if (len > JSON_NUMBER_TEXT_MAX)
        return fail_at(d, begin, "number too long");
    char text[JSON_NUMBER_TEXT_MAX + 1];
    memcpy(text, begin, len);
    text[len] = '\0';
    if (integral) { /* 19 digits or more: exact when it fits 64 bits */
        errno = 0;
        char *stop = NULL;
        long long v = strtoll(text, &stop, 10);
        if (errno == 0 && stop == text + len) {
            orbt_push_int64(d->L, (int64_t)v);
            return 0;
        }
    }
    double v = read_double(text);
    if (!isfinite(v))
        return fail_at(d, begin, "a number too large to represent");
    lua_pushnumber(d->L, (lua_Number)v);
    return 0;
}

static int push_value(decoder *d);

static int enter_level(decoder *d)
{
    if (++d->depth > JSON_DEPTH_MAX) {
        d->too_deep = 1;
        return fail_at(d, d->p, "nested too deeply");
    }
    /* The table, a key and a value at each level. */
    luaL_checkstack(d->L, 4, "orbt: JSON nested too deeply");
    return 0;
}

static int push_array(decoder *d)
{
    lua_State *L = d->L;
    if (enter_level(d) != 0)
        return -1;
    d->p++; /* [ */
    lua_newtable(L);
    skip_space(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        d->depth--;
        return 0;
    }
    /* Objects in one array tend to have the same fields (a page's
     * consumers): each is made with room for as many as the one before,
     * instead of growing field by field. */
    int sibling_fields = 0;
    for (int i = 1;; i++) {
        skip_space(d);
        int is_object = d->p < d->end && *d->p == '{';
        d->object_hint = is_object ? (sibling_fields < OBJECT_HINT_MAX ? sibling_fields : OBJECT_HINT_MAX) : 0;
        if (push_value(d) != 0)
            return -1;
        sibling_fields = is_object ? d->object_fields : 0;
        lua_rawseti(L, -2, i);
        skip_space(d);
        if (d->p >= d->end)
            return fail_at(d, d->end, "unterminated array");
        if (*d->p == ']') {
            d->p++;
            break;
        }
        if (*d->p != ',')
            return fail_at(d, d->p, "expected ',' or ']' in an array");
        d->p++;
    }
    d->depth--;
    return 0;
}

static int push_object(decoder *d)
{
    lua_State *L = d->L;
    if (enter_level(d) != 0)
        return -1;
    d->p++; /* { */
    lua_createtable(L, 0, d->object_hint);
    d->object_hint = 0; /* not for the objects inside this one */
    int fields = 0;
    skip_space(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        d->depth--;
        d->object_fields = 0;
        return 0;
    }
    for (;; fields++) {
        skip_space(d);
        if (d->p >= d->end || *d->p != '"')
            return fail_at(d, d->p, "expected a string key in an object");
        if (push_string(d) != 0)
            return -1;
        skip_space(d);
        if (d->p >= d->end || *d->p != ':')
            return fail_at(d, d->p, "expected ':' in an object");
        d->p++;
        if (push_value(d) != 0)
            return -1;
        lua_rawset(L, -3);
        skip_space(d);
        if (d->p >= d->end)
            return fail_at(d, d->end, "unterminated object");
        if (*d->p == '}') {
            d->p++;
            break;
        }
        if (*d->p != ',')
            return fail_at(d, d->p, "expected ',' or '}' in an object");
        d->p++;
    }
    d->depth--;
    d->object_fields = fields + 1;
    return 0;
}

static int push_value(decoder *d)
{
    skip_space(d);
    if (d->p >= d->end)
        return fail_at(d, d->end, "unexpected end");
    switch (*d->p) {
    case '{': return push_object(d);
    case '[': return push_array(d);
    case '"': return push_string(d);
    case 't':
        if (expect_word(d, "true", 4) != 0)
            return -1;
        lua_pushboolean(d->L, 1);
        return 0;
    case 'f':
        if (expect_word(d, "false", 5) != 0)
            return -1;
        lua_pushboolean(d->L, 0);
        return 0;
    case 'n':
        if (expect_word(d, "null", 4) != 0)
            return -1;
        json_push_null(d->L);
        return 0;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        return push_number(d);
    default: /* a separator, a bracket, a quote, a BOM, a bare word, '+', '.' */
        return fail_at(d, d->p, "unexpected character");
    }
}

int json_push_document(lua_State *L, const char *text, size_t len, char *err, size_t errlen)
{
    int base = lua_gettop(L);
    decoder d = {L, text, text, text + len, 0, NULL, NULL, 0, 0, 0};
    int status = push_value(&d);
    if (status == 0) {
        skip_space(&d);
        if (d.p < d.end)
            status = fail_at(&d, d.p, "data after the JSON value");
    }
    if (status == 0)
        return 0;
    lua_settop(L, base);
    if (d.too_deep)
        snprintf(err, errlen, "the answer is nested more than %d levels deep", JSON_DEPTH_MAX);
    else if (strcmp(d.why, "data after the JSON value") == 0)
        snprintf(err, errlen, "the answer has data after its JSON value");
    else if (strcmp(d.why, "a number too large to represent") == 0)
        snprintf(err, errlen, "the answer has a number too large to represent");
    else
        snprintf(err, errlen, "the answer is not valid JSON (%s at byte %zu)", d.why,
                 (size_t)(d.where - d.start));
    return -1;
}
