/* json.h: JSON <-> Lua. Writing request bodies byte-exactly, and turning
 * answer documents into Lua tables. */
#ifndef ORBT_JSON_H
#define ORBT_JSON_H

#include <stddef.h>

#include <lua.h>

#include "buffer.h"

/* Longest text json_format_number produces, with its NUL. */
#define JSON_NUMBER_MAX 32

/* Whether text is valid UTF-8: no overlong forms, surrogates or code
 * points past U+10FFFF. */
int json_is_utf8(const char *text, size_t len);

/* Appends s as a JSON string literal (quotes included). s must be valid UTF-8. */
int json_append_string(buffer *b, const char *s, size_t len);

/* The shortest decimal text that reads back as exactly v (19.99, not
 * 19.989999999999998), always with '.' as the decimal point whatever the
 * C locale says. v must be finite. Returns the length, or -1. */
int json_format_number(double v, char out[JSON_NUMBER_MAX]);

/* Appends the Lua value at idx as JSON: a table with keys 1..n as an array,
 * one with string keys as an object (keys sorted), an empty table as {},
 * strings (UTF-8), numbers exactly (integers by their digits, others as
 * the shortest text that reads back), booleans, and orbt.null as null.
 * Tables are read raw, to a depth of 100 and 8 MiB of text; nothing raises
 * but a memory error. Returns 0, or -1 with a reason in why (out may then
 * hold part of the text). */
int json_append_value(lua_State *L, int idx, buffer *out, char *why, size_t whylen);

/* The value orbt.null stands for: JSON null in decoded answers. */
void json_push_null(lua_State *L);

/* Parses text and pushes the decoded value: objects and arrays as tables,
 * integers as Lua integers (5.3+), null as orbt.null. On failure pushes
 * nothing, writes a reason into err and returns -1. */
int json_push_document(lua_State *L, const char *text, size_t len, char *err, size_t errlen);

#endif
