/* HTTPS for orbt-mock: the certificate and key, read from PEM files at start. */
#ifndef ORBT_MOCK_TLS_H
#define ORBT_MOCK_TLS_H

#include <stdbool.h>

/* Reads cert_file and key_file and checks that the first holds a PEM
 * certificate and the second its unencrypted PEM private key. On success
 * *cert and *key are the files' text (free the key with tls_free_key).
 * On failure prints one line on stderr and returns false. */
bool tls_load(const char *cert_file, const char *key_file, char **cert, char **key);
/* Wipes and frees key text from tls_load (NULL is fine). */
void tls_free_key(char *key);

#endif
