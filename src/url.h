/* url.h: the one place URLs are read. The base URL a client talks to and
 * the proxy it may go through are parsed with libcurl's URL API into their
 * parts, once, when the client is made; the transports (libcurl, nginx
 * cosockets) and the request framing use the parts. The proxy is chosen
 * here too, from the `proxy` option or the environment, by libcurl's rules,
 * so that every transport goes the same way. */
#ifndef ORBT_URL_H
#define ORBT_URL_H

#include <stddef.h>

typedef struct url_parts {
    char *scheme;      /* lower case: "https", "http", "socks5h"... */
    char *host;        /* as written, without the brackets of an IPv6 literal */
    char *authority;   /* host (bracketed if IPv6), with ":port" when the URL gave one:
                          what the Host header says */
    char *origin;      /* scheme://host:port, the port always written: what libcurl connects to */
    char *host_port;   /* host:port, the port always written: a CONNECT's target */
    char *prefix;      /* the path without its trailing slashes: "" or "/sandbox" */
    char *user;        /* decoded user info, or NULL */
    char *password;
    int port;
    int tls;           /* https (for a proxy: TLS to the proxy itself) */
} url_parts;

#define URL_WHY_MAX 192

/* A base URL: http:// or https://, a host and optional port and path; no
 * user info, query or fragment. Returns 0, or -1 with why filled in. */
int url_parse_base(const char *text, url_parts *out, char why[URL_WHY_MAX]);

/* A proxy URL: http://, https://, socks5:// or socks5h://, with optional
 * user:password@ and port (libcurl's default, 1080, or 443 for https). */
int url_parse_proxy(const char *text, url_parts *out, char why[URL_WHY_MAX]);

void url_parts_free(url_parts *u);

/* localhost, 127.0.0.0/8 or ::1. */
int url_host_is_loopback(const char *host);

/* Whether a no_proxy list (libcurl's form: "*", or host names, domain
 * suffixes, IP addresses and CIDR ranges separated by commas) covers host. */
int url_no_proxy_matches(const char *no_proxy, const char *host);

/* The proxy URL the environment gives for a request to a URL with this
 * scheme and host, by libcurl's rules (https_proxy or HTTPS_PROXY for https,
 * http_proxy for http, then all_proxy or ALL_PROXY; none when no_proxy or
 * NO_PROXY covers the host), or NULL. The string belongs to the environment. */
const char *url_proxy_from_environment(const char *scheme, const char *host);

#endif
