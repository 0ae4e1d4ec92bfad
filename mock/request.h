/* The view of one HTTP exchange shared by the server, API and control modules;
 * its accessors are in request.c. */
#ifndef ORBT_MOCK_REQUEST_H
#define ORBT_MOCK_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

/* Largest request body kept and processed; larger ones are answered 413. */
#define BODY_MAX ((size_t)1024 * 1024)

struct MHD_Connection;

struct request {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;          /* as decoded by libmicrohttpd, without query */
    const char *query;         /* raw query string from the request line, "" if none */
    const char *content_type;  /* NULL when absent */
    const char *body;          /* NUL-terminated; at most BODY_MAX bytes kept */
    size_t body_len;
    bool body_too_large;       /* more than BODY_MAX bytes arrived */
};

/* An answer under construction; every pointer is owned by the reply. */
struct reply {
    unsigned status;
    char *body;
    size_t len;
    char *content_type;        /* NULL means application/json */
    char *retry_after;         /* NULL means no Retry-After header */
    const char *allow;         /* static text for 405 answers, or NULL */
    size_t pad_size;           /* > 0: body is generated {"pad":"xx.."} of this size */
};

/* Query argument lookup (decoded by libmicrohttpd). Returns false when the
 * key is absent; *value may be NULL for a bare "?key". */
bool request_arg(const struct request *rq, const char *key, const char **value);

typedef void (*header_fn)(void *ud, const char *name, const char *value);

/* Calls fn for every request header, in the order received. */
void request_each_header(const struct request *rq, header_fn fn, void *ud);

#endif
