/* url.c: base and proxy URLs read with libcurl's URL API, and the proxy
 * chosen by libcurl's rules. */
#include "url.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <curl/curl.h>

void url_parts_free(url_parts *u)
{
    free(u->scheme);
    free(u->host);
    free(u->authority);
    free(u->origin);
    free(u->host_port);
    free(u->prefix);
    free(u->user);
    if (u->password != NULL) {
        memset(u->password, 0, strlen(u->password));
        free(u->password);
    }
    memset(u, 0, sizeof *u);
}

static int fail(char why[URL_WHY_MAX], const char *what, const char *message)
{
    snprintf(why, URL_WHY_MAX, "%s %s", what, message);
    return -1;
}

/* Printable ASCII without spaces or backslashes: nothing that could be read
 * two ways, or split a request line. */
static int is_plain_url_text(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return 0;
    }
    return 1;
}

/* One part of a parsed URL as a malloc'd string, NULL when absent. */
static char *get_part(CURLU *h, CURLUPart part, unsigned int flags)
{
    char *value = NULL;
    if (curl_url_get(h, part, &value, flags) != CURLUE_OK)
        return NULL;
    char *copy = strdup(value);
    curl_free(value);
    return copy;
}

static int has_part(CURLU *h, CURLUPart part)
{
    char *value = NULL;
    int present = curl_url_get(h, part, &value, 0) == CURLUE_OK;
    curl_free(value);
    return present;
}

/* Fills host, authority, origin and port from a parsed URL. */
static int fill_address(CURLU *h, url_parts *out, int default_port)
{
    char *host = get_part(h, CURLUPART_HOST, 0);
    char *port_text = get_part(h, CURLUPART_PORT, 0);
    if (host == NULL || host[0] == '\0') {
        free(host);
        free(port_text);
        return -1;
    }
    out->port = port_text != NULL ? atoi(port_text) : default_port;
    size_t len = strlen(host);
    int bracketed = host[0] == '[' && len > 2 && host[len - 1] == ']';
    out->host = bracketed ? strndup(host + 1, len - 2) : strdup(host);
    size_t size = len + strlen(out->scheme) + 32;
    out->authority = malloc(size);
    out->origin = malloc(size);
    out->host_port = malloc(size);
    int ok = out->host != NULL && out->authority != NULL && out->origin != NULL && out->host_port != NULL;
    if (ok) {
        if (port_text != NULL)
            snprintf(out->authority, size, "%s:%s", host, port_text);
        else
            snprintf(out->authority, size, "%s", host);
        snprintf(out->origin, size, "%s://%s:%d", out->scheme, host, out->port);
        snprintf(out->host_port, size, "%s:%d", host, out->port);
    }
    free(host);
    free(port_text);
    return ok ? 0 : -1;
}

/* Parses text with libcurl's URL API and reads its scheme. Returns the
 * handle, or NULL with why filled in ("<what> <usage>" for text that is not
 * such a URL). */
static CURLU *open_url(const char *text, unsigned int flags, const char *what, const char *usage,
                       url_parts *out, char why[URL_WHY_MAX])
{
    memset(out, 0, sizeof *out);
    CURLU *h = is_plain_url_text(text) ? curl_url() : NULL;
    if (h != NULL && curl_url_set(h, CURLUPART_URL, text, flags) == CURLUE_OK
        && (out->scheme = get_part(h, CURLUPART_SCHEME, 0)) != NULL)
        return h;
    curl_url_cleanup(h);
    fail(why, what, usage);
    return NULL;
}

static int close_url(CURLU *h, int rc, url_parts *out)
{
    curl_url_cleanup(h);
    if (rc != 0)
        url_parts_free(out);
    return rc;
}

int url_parse_base(const char *text, url_parts *out, char why[URL_WHY_MAX])
{
    static const char what[] = "base_url";
    CURLU *h = open_url(text, 0, what, "must be a plain https://host[:port][/path] URL (no spaces or control "
                        "characters)", out, why);
    if (h == NULL)
        return -1;
    if (strcmp(out->scheme, "https") != 0 && strcmp(out->scheme, "http") != 0)
        return close_url(h, fail(why, what, "must start with https://"), out);
    if (has_part(h, CURLUPART_USER) || has_part(h, CURLUPART_QUERY) || has_part(h, CURLUPART_FRAGMENT))
        return close_url(h, fail(why, what, "must be a plain https://host[:port][/path] URL (no user info, "
                                 "query or fragment)"), out);
    out->tls = strcmp(out->scheme, "https") == 0;
    if (fill_address(h, out, out->tls ? 443 : 80) != 0)
        return close_url(h, fail(why, what, "has no host"), out);
    out->prefix = get_part(h, CURLUPART_PATH, 0);
    if (out->prefix == NULL)
        return close_url(h, fail(why, what, "could not be read (out of memory)"), out);
    size_t n = strlen(out->prefix);
    while (n > 0 && out->prefix[n - 1] == '/')
        out->prefix[--n] = '\0';
    return close_url(h, 0, out);
}

static int is_proxy_scheme(const char *scheme)
{
    static const char *const schemes[] = {"http", "https", "socks5", "socks5h", NULL};
    for (const char *const *s = schemes; *s != NULL; s++)
        if (strcmp(scheme, *s) == 0)
            return 1;
    return 0;
}

int url_parse_proxy(const char *text, url_parts *out, char why[URL_WHY_MAX])
{
    static const char what[] = "proxy";
    CURLU *h = open_url(text, CURLU_NON_SUPPORT_SCHEME, what, "must be a URL such as http://host:port, "
                        "https://, socks5:// or socks5h://", out, why);
    if (h == NULL)
        return -1;
    if (!is_proxy_scheme(out->scheme))
        return close_url(h, fail(why, what, "must start with http://, https://, socks5:// or socks5h://"), out);
    char *path = get_part(h, CURLUPART_PATH, 0);
    int plain = path != NULL && strcmp(path, "/") == 0;
    free(path);
    if (!plain || has_part(h, CURLUPART_QUERY) || has_part(h, CURLUPART_FRAGMENT))
        return close_url(h, fail(why, what, "must be scheme://[user:password@]host[:port], without a path, "
                                 "query or fragment"), out);
    out->tls = strcmp(out->scheme, "https") == 0;
    /* libcurl's default proxy port, so that every transport uses the same. */
    if (fill_address(h, out, out->tls ? 443 : 1080) != 0)
        return close_url(h, fail(why, what, "has no host"), out);
    out->user = get_part(h, CURLUPART_USER, CURLU_URLDECODE);
    out->password = get_part(h, CURLUPART_PASSWORD, CURLU_URLDECODE);
    return close_url(h, 0, out);
}

int url_host_is_loopback(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (strcasecmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &v6) == 1 && memcmp(&v6, &in6addr_loopback, sizeof v6) == 0;
}

/* ===== Choosing the proxy ===== */

/* Whether the first `bits` bits of a and b agree. */
static int same_prefix(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8, rest = bits % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* An IP address or CIDR range entry against a host that is an IP literal. */
static int address_entry_matches(const char *entry, const char *host)
{
    char address[64];
    const char *slash = strchr(entry, '/');
    size_t len = slash != NULL ? (size_t)(slash - entry) : strlen(entry);
    if (len >= sizeof address)
        return 0;
    memcpy(address, entry, len);
    address[len] = '\0';
    unsigned char want[16], have[16];
    int family = strchr(address, ':') != NULL ? AF_INET6 : AF_INET;
    int max_bits = family == AF_INET6 ? 128 : 32;
    if (inet_pton(family, address, want) != 1 || inet_pton(family, host, have) != 1)
        return 0;
    int bits = slash != NULL ? atoi(slash + 1) : max_bits;
    if (bits < 0 || bits > max_bits)
        return 0;
    return same_prefix(want, have, bits);
}

/* A host name entry: the host itself or any name under it; a leading dot
 * is allowed ("example.com" and ".example.com" both cover api.example.com). */
static int name_entry_matches(const char *entry, size_t len, const char *host)
{
    if (len > 0 && entry[0] == '.')
        entry++, len--;
    size_t host_len = strlen(host);
    while (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (len == 0 || len > host_len)
        return 0;
    const char *tail = host + host_len - len;
    if (strncasecmp(tail, entry, len) != 0)
        return 0;
    return len == host_len || tail[-1] == '.';
}

int url_no_proxy_matches(const char *no_proxy, const char *host)
{
    if (no_proxy == NULL)
        return 0;
    const char *p = no_proxy;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t len = strcspn(p, ", \t");
        if (len == 0)
            break;
        char entry[256];
        if (len < sizeof entry) {
            memcpy(entry, p, len);
            entry[len] = '\0';
            if (strcmp(entry, "*") == 0 || address_entry_matches(entry, host)
                || name_entry_matches(entry, len, host))
                return 1;
        }
        p += len;
    }
    return 0;
}

static const char *non_empty_env(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && v[0] != '\0' ? v : NULL;
}

const char *url_proxy_from_environment(const char *scheme, const char *host)
{
    const char *no_proxy = non_empty_env("no_proxy");
    if (no_proxy == NULL)
        no_proxy = non_empty_env("NO_PROXY");
    if (url_no_proxy_matches(no_proxy, host))
        return NULL;
    const char *proxy = NULL;
    if (strcmp(scheme, "https") == 0) {
        proxy = non_empty_env("https_proxy");
        if (proxy == NULL)
            proxy = non_empty_env("HTTPS_PROXY");
    } else {
        /* Only the lower-case name: HTTP_PROXY can be set by a CGI
         * request's Proxy header (httpoxy), so libcurl ignores it. */
        proxy = non_empty_env("http_proxy");
    }
    if (proxy == NULL)
        proxy = non_empty_env("all_proxy");
    if (proxy == NULL)
        proxy = non_empty_env("ALL_PROXY");
    return proxy;
}
