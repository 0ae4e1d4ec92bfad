/* json.h: JSON <-> Lua. Writing request bodies byte-exactly, and turning
 * answer documents into Lua tables. */
#ifndef ORBT_JSON_H
#define ORBT_JSON_H

#include <stddef.h>

#include <lua.h>

#include "buffer.h"

/* Longest text json_format_number produces, with its NUL. */
#define JSON_NUMBER_MAX 32

/* Appends s as a JSON string literal (quotes included). s must be valid UTF-8. */
int json_append_string(buffer *b, const char *s, size_t len);

/* The shortest decimal text that reads back as exactly v (19.99, not
 * 19.989999999999998), always with '.' as the decimal point whatever the
 * C locale says. v must be finite. Returns the length, or -1. */
int json_format_number(double v, char out[JSON_NUMBER_MAX]);

/* The value orbt.null stands for: JSON null in decoded answers. */
void json_push_null(lua_State *L);

/* Parses text and pushes the decoded value: objects and arrays as tables,
 * integers as Lua integers (5.3+), null as orbt.null. On failure pushes
 * nothing, writes a reason into err and returns -1. */
int json_push_document(lua_State *L, const char *text, size_t len, char *err, size_t errlen);

#endif
