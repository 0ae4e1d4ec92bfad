/* ascii.h: character classes the wire formats (JSON, HTTP/1.1) are defined
 * in, independent of the C locale. */
#ifndef ORBT_ASCII_H
#define ORBT_ASCII_H

static inline int ascii_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The value of one hex digit, or -1 if c is not one. */
static inline int ascii_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
