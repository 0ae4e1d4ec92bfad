/* The request view's accessors, over libmicrohttpd's connection values. */
#include "request.h"

#include <string.h>

#include <microhttpd.h>

bool request_arg(const struct request *rq, const char *key, const char **value)
{
    *value = NULL;
    return MHD_lookup_connection_value_n(rq->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key),
                                         value, NULL) == MHD_YES;
}

struct header_walk {
    header_fn fn;
    void *ud;
};

static enum MHD_Result each_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    struct header_walk *w = cls;
    w->fn(w->ud, key, value ? value : "");
    return MHD_YES;
}

void request_each_header(const struct request *rq, header_fn fn, void *ud)
{
    struct header_walk w = {fn, ud};
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, each_header, &w);
}
