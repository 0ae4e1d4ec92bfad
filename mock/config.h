/* Run-time settings of orbt-mock: filled once by main.c, read-only while serving. */
#ifndef ORBT_MOCK_CONFIG_H
#define ORBT_MOCK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

struct mock_config {
    char *host;
    unsigned port;      /* 0 = let the OS pick a free port */
    char *api_key;
    char *client_id;
    char *secret;       /* HMAC key; never printed, logged or echoed */
    int64_t balance;    /* starting partner balance, micro-units */
    long skew;          /* allowed |now - x-timestamp|, seconds */
    double lifetime;    /* seconds before exiting by itself; 0 = never */
    bool quiet;
    char *tls_cert_file, *tls_key_file;   /* --tls-cert, --tls-key; NULL for HTTP */
    char *tls_cert, *tls_key;   /* their PEM text, read at start; the key is wiped at exit */
};

#endif
