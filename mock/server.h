/* HTTP front end: the libmicrohttpd daemon, request lifecycle, faults and answers. */
#ifndef ORBT_MOCK_SERVER_H
#define ORBT_MOCK_SERVER_H

#include <stddef.h>

#include "config.h"

/* Binds cfg->host:cfg->port and starts serving, over HTTPS when cfg has a
 * TLS certificate; writes the base URL ("http://127.0.0.1:PORT", or
 * "https://...") into url. Returns 0 on success. */
int server_start(const struct mock_config *cfg, char *url, size_t url_size);
/* Wakes delayed requests, stops the daemon and joins its threads. */
void server_stop(void);

#endif
