/* json.c: JSON <-> Lua on top of cJSON. */
#include "json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>
#include <lauxlib.h>

#include "compat.h"

/* ===== The C numeric locale =====
 *
 * snprintf, strtod and cJSON's parser follow LC_NUMERIC, which an embedding
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

/* ===== Reading ===== */

void json_push_null(lua_State *L)
{
    lua_pushlightuserdata(L, NULL);
}

/* cJSON keeps numbers only as doubles. To return integers exactly (ids past
 * 2^53) and to tell 50 from 50.00, each number node is paired with its own
 * text: cJSON builds the tree in document order, so the n-th number met in a
 * depth-first walk is the n-th number token in the text. */
typedef struct number_cursor {
    const char *p;
    const char *end;
    int out_of_range; /* a number did not fit a double (1e400) */
} number_cursor;

static int is_number_char(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

static const char *next_number_token(number_cursor *cur, size_t *len)
{
    const char *p = cur->p;
    while (p < cur->end) {
        if (*p == '"') { /* skip a string, escapes included */
            for (p++; p < cur->end && *p != '"'; p++) {
                if (*p == '\\')
                    p++;
            }
            p++;
        } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
            const char *start = p;
            while (p < cur->end && is_number_char(*p))
                p++;
            cur->p = p;
            *len = (size_t)(p - start);
            return start;
        } else {
            p++;
        }
    }
    cur->p = cur->end;
    return NULL;
}

/* Whether the token has a fraction or an exponent. Only its own len bytes
 * are read: the text need not be NUL-terminated, and scanning on to the next
 * '.' or 'e' would make a long array of integers quadratic. */
static int has_fraction_or_exponent(const char *tok, size_t len)
{
    return memchr(tok, '.', len) != NULL || memchr(tok, 'e', len) != NULL ||
           memchr(tok, 'E', len) != NULL;
}

static void push_number(lua_State *L, const cJSON *item, number_cursor *cur)
{
    size_t len = 0;
    const char *tok = next_number_token(cur, &len);
    if (tok != NULL && len < 24 && !has_fraction_or_exponent(tok, len)) {
        char digits[24];
        memcpy(digits, tok, len);
        digits[len] = '\0';
        errno = 0;
        long long v = strtoll(digits, NULL, 10);
        if (errno == 0) {
            orbt_push_int64(L, (int64_t)v);
            return;
        }
    }
    /* A number past the double range would come back as inf: for amounts
     * that is a wrong answer, not a value, so the document is refused. */
    if (!isfinite(item->valuedouble))
        cur->out_of_range = 1;
    lua_pushnumber(L, (lua_Number)item->valuedouble);
}

static void push_value(lua_State *L, const cJSON *item, number_cursor *cur);

static void push_children(lua_State *L, const cJSON *item, number_cursor *cur, int is_array)
{
    int n = cJSON_GetArraySize(item);
    lua_createtable(L, is_array ? n : 0, is_array ? 0 : n);
    int i = 1;
    for (const cJSON *child = item->child; child != NULL; child = child->next) {
        if (is_array) {
            push_value(L, child, cur);
            lua_rawseti(L, -2, i++);
        } else {
            lua_pushstring(L, child->string != NULL ? child->string : "");
            push_value(L, child, cur);
            lua_rawset(L, -3);
        }
    }
}

static void push_value(lua_State *L, const cJSON *item, number_cursor *cur)
{
    luaL_checkstack(L, 3, "orbt: JSON nested too deeply");
    if (cJSON_IsObject(item))
        push_children(L, item, cur, 0);
    else if (cJSON_IsArray(item))
        push_children(L, item, cur, 1);
    else if (cJSON_IsString(item))
        lua_pushstring(L, item->valuestring);
    else if (cJSON_IsNumber(item))
        push_number(L, item, cur);
    else if (cJSON_IsBool(item))
        lua_pushboolean(L, cJSON_IsTrue(item));
    else
        json_push_null(L);
}

typedef struct convert_job {
    const cJSON *root;
    number_cursor cursor;
} convert_job;

static int convert_protected(lua_State *L)
{
    convert_job *job = lua_touserdata(L, 1);
    push_value(L, job->root, &job->cursor);
    return 1;
}

static int only_whitespace(const char *p, const char *end)
{
    for (; p < end; p++) {
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
            return 0;
    }
    return 1;
}

/* The deepest nesting of arrays and objects an answer may have. cJSON has
 * its own limit (CJSON_NESTING_LIMIT, 1000 unless the build changed it) and
 * says only "not valid JSON"; the conversion recurses once per level on the
 * C stack. Checking here, before parsing, gives a clear reason and holds
 * whatever cJSON was built with. */
#define JSON_DEPTH_MAX 1000

static int nested_too_deeply(const char *text, size_t len)
{
    size_t depth = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (c == '"') { /* skip a string, escapes included */
            for (i++; i < len && text[i] != '"'; i++) {
                if (text[i] == '\\')
                    i++;
            }
        } else if (c == '[' || c == '{') {
            if (++depth > JSON_DEPTH_MAX)
                return 1;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }
    return 0;
}

int json_push_document(lua_State *L, const char *text, size_t len, char *err, size_t errlen)
{
    if (nested_too_deeply(text, len)) {
        snprintf(err, errlen, "the answer is nested more than %d levels deep", JSON_DEPTH_MAX);
        return -1;
    }
    const char *end = NULL;
    locale_t previous = enter_c_numeric();
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    leave_c_numeric(previous);
    if (root == NULL) {
        snprintf(err, errlen, "the answer is not valid JSON");
        return -1;
    }
    /* cJSON stops after the first value; anything but whitespace after it
     * means this is not one JSON document. */
    if (end == NULL || !only_whitespace(end, text + len)) {
        cJSON_Delete(root);
        snprintf(err, errlen, "the answer has data after its JSON value");
        return -1;
    }
    /* A Lua error (out of memory) while building tables must not leak the
     * tree: convert under lua_pcall, free, then re-raise. */
    convert_job job = {root, {text, text + len, 0}};
    lua_pushcfunction(L, convert_protected);
    lua_pushlightuserdata(L, &job);
    int status = lua_pcall(L, 1, 1, 0);
    cJSON_Delete(root);
    if (status != 0)
        lua_error(L);
    if (job.cursor.out_of_range) {
        lua_pop(L, 1);
        snprintf(err, errlen, "the answer has a number too large to represent");
        return -1;
    }
    return 0;
}
