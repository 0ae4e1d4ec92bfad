/* compare_json.c: the C half of the JSON part of `make compare`
 * (bench/compare.lua): orbt's decoder and cJSON on the same bytes.
 *
 *   compare_json CANON_LUA CASES
 *
 * CASES has one case per line, its bytes in hex. For each case, in order,
 * it prints one line per parser:
 *
 *   N <tab> orbt|cjson <tab> ok <tab> VALUE
 *   N <tab> orbt|cjson <tab> error <tab> REASON
 *
 * N counts from 1. VALUE is the decoded value in the one-line form of
 * bench/compare_canon.lua: orbt's value is decoded by json_push_document
 * (src/json.c) into a real Lua 5.4 state and written by that Lua file;
 * cJSON's is written here in the same form (keep the two alike). cJSON is
 * called as its documentation shows for a NUL-terminated text that must end
 * with the value: cJSON_ParseWithOpts(text, &end, 1), on a copy of the bytes
 * with a NUL after them; a NUL inside the bytes ends the text for cJSON.
 * Its numbers are valuedouble (valueint is an int), its strings valuestring,
 * which ends at the first NUL, as it does for any C program using cJSON.
 * The first line is "version <tab> cjson <tab> X.Y.Z". */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "json.h"

/* Ends the run: a broken input or no memory is the harness's failure. */
static _Noreturn void die(const char *what)
{
    fprintf(stderr, "compare_json: %s\n", what);
    exit(2);
}

/* ===== A growable string ===== */

typedef struct text {
    char *data;
    size_t len, cap;
} text;

static void grow(text *t, size_t more)
{
    if (t->len + more + 1 <= t->cap)
        return;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *data = realloc(t->data, cap);
    if (data == NULL)
        die("out of memory");
    t->data = data;
    t->cap = cap;
}

static void add(text *t, const char *s, size_t n)
{
    grow(t, n);
    memcpy(t->data + t->len, s, n);
    t->len += n;
    t->data[t->len] = '\0';
}

static void addf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void addf(text *t, const char *fmt, ...)
{
    char small[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        add(t, small, (size_t)n);
        return;
    }
    grow(t, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(t->data + t->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    t->len += (size_t)n;
}

/* ===== cJSON's value in the form of compare_canon.lua ===== */

static void canon_number(text *t, double v)
{
    if (isnan(v))
        add(t, "nan", 3);
    else if (isinf(v))
        addf(t, "%s", v > 0 ? "inf" : "-inf");
    else if (v == 0)
        addf(t, "%s", signbit(v) ? "-0" : "0");
    else if (v == floor(v) && fabs(v) < 1e21)
        addf(t, "%.0f", v);
    else
        addf(t, "%.17g", v);
}

static void canon_string(text *t, const char *s)
{
    add(t, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p < 32 || *p > 126 || *p == '"' || *p == '\\')
            addf(t, "\\x%02x", *p);
        else
            add(t, (const char *)p, 1);
    }
    add(t, "\"", 1);
}

typedef struct member {
    char *key;   /* the key's form */
    char *value; /* the value's form */
    int index;
} member;

static int member_order(const void *a, const void *b)
{
    const member *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c != 0 ? c : x->index - y->index;
}

static void canon_cjson(text *t, const cJSON *v);

static void canon_object(text *t, const cJSON *v)
{
    int n = cJSON_GetArraySize(v);
    if (n == 0) {
        add(t, "{}", 2);
        return;
    }
    /* Every member, a repeated key as often as it came, in the order of the
     * keys' forms (and, for a repeated key, in the order they came). */
    member *m = calloc((size_t)n, sizeof *m);
    if (m == NULL)
        die("out of memory");
    int i = 0;
    for (const cJSON *c = v->child; c != NULL; c = c->next, i++) {
        text k = {0}, val = {0};
        canon_string(&k, c->string != NULL ? c->string : "");
        canon_cjson(&val, c);
        m[i] = (member){k.data, val.data, i};
    }
    qsort(m, (size_t)n, sizeof *m, member_order);
    add(t, "{", 1);
    for (i = 0; i < n; i++) {
        addf(t, "%s%s:%s", i ? "," : "", m[i].key, m[i].value);
        free(m[i].key);
        free(m[i].value);
    }
    add(t, "}", 1);
    free(m);
}

static void canon_cjson(text *t, const cJSON *v)
{
    if (cJSON_IsNull(v)) {
        add(t, "null", 4);
    } else if (cJSON_IsTrue(v)) {
        add(t, "true", 4);
    } else if (cJSON_IsFalse(v)) {
        add(t, "false", 5);
    } else if (cJSON_IsNumber(v)) {
        canon_number(t, v->valuedouble);
    } else if (cJSON_IsString(v)) {
        canon_string(t, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        if (v->child == NULL) {
            add(t, "{}", 2); /* as a Lua table: empty arrays and objects alike */
            return;
        }
        add(t, "[", 1);
        for (const cJSON *c = v->child; c != NULL; c = c->next) {
            if (c != v->child)
                add(t, ",", 1);
            canon_cjson(t, c);
        }
        add(t, "]", 1);
    } else if (cJSON_IsObject(v)) {
        canon_object(t, v);
    } else {
        add(t, "<raw>", 5);
    }
}

/* ===== orbt's value, through compare_canon.lua ===== */

/* (text, length, canon) -> true, form | false, reason */
static int decode_orbt(lua_State *L)
{
    const char *bytes = lua_touserdata(L, 1);
    size_t len = (size_t)lua_tointeger(L, 2);
    char err[160] = "";
    if (json_push_document(L, bytes, len, err, sizeof err) != 0) {
        lua_pushboolean(L, 0);
        lua_pushstring(L, err);
        return 2;
    }
    int value = lua_gettop(L);
    lua_pushboolean(L, 1);
    lua_pushvalue(L, 3);
    lua_pushvalue(L, value);
    json_push_null(L);
    lua_call(L, 2, 1);
    return 2;
}

/* ===== The run ===== */

static void print_line(int n, const char *parser, int ok, const char *what)
{
    printf("%d\t%s\t%s\t", n, parser, ok ? "ok" : "error");
    for (const char *p = what; *p != '\0'; p++)
        putchar((unsigned char)*p < 32 ? ' ' : *p);
    putchar('\n');
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: compare_json CANON_LUA CASES\n");
        return 2;
    }
    FILE *cases = fopen(argv[2], "r");
    if (cases == NULL)
        die("cannot open the cases");
    lua_State *L = luaL_newstate();
    if (L == NULL)
        die("out of memory");
    luaL_openlibs(L);
    if (luaL_dofile(L, argv[1]) != LUA_OK || !lua_isfunction(L, -1))
        die("the canon file does not give a function");
    int canon = luaL_ref(L, LUA_REGISTRYINDEX);

    printf("version\tcjson\t%s\n", cJSON_Version());
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    for (int n = 1; (got = getline(&line, &cap, cases)) >= 0; n++) {
        size_t hexlen = (size_t)got;
        while (hexlen > 0 && (line[hexlen - 1] == '\n' || line[hexlen - 1] == '\r'))
            hexlen--;
        if (hexlen % 2 != 0)
            die("a case is not hex");
        size_t len = hexlen / 2;
        char *bytes = malloc(len + 1);
        if (bytes == NULL)
            die("out of memory");
        for (size_t i = 0; i < len; i++) {
            int hi = hex_value(line[2 * i]), lo = hex_value(line[2 * i + 1]);
            if (hi < 0 || lo < 0)
                die("a case is not hex");
            bytes[i] = (char)(hi * 16 + lo);
        }
        bytes[len] = '\0';

        lua_settop(L, 0);
        lua_pushcfunction(L, decode_orbt);
        lua_pushlightuserdata(L, bytes);
        lua_pushinteger(L, (lua_Integer)len);
        lua_rawgeti(L, LUA_REGISTRYINDEX, canon);
        if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
            text why = {0};
            addf(&why, "raised: %s", lua_tostring(L, -1));
            print_line(n, "orbt", 0, why.data);
            free(why.data);
        } else {
            print_line(n, "orbt", lua_toboolean(L, 1), lua_tostring(L, 2));
        }

        const char *end = NULL;
        cJSON *v = cJSON_ParseWithOpts(bytes, &end, 1);
        if (v != NULL) {
            text form = {0};
            canon_cjson(&form, v);
            print_line(n, "cjson", 1, form.data);
            free(form.data);
            cJSON_Delete(v);
        } else {
            char why[64];
            snprintf(why, sizeof why, "refused at byte %td", end != NULL ? end - bytes : (ptrdiff_t)-1);
            print_line(n, "cjson", 0, why);
        }
        free(bytes);
    }
    free(line);
    fclose(cases);
    lua_close(L);
    return 0;
}
