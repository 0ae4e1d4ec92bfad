/* HTTPS for orbt-mock: the certificate and key, read from PEM files at start. */
#include "tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "util.h"

#define PEM_MAX ((size_t)1024 * 1024)

static void complain(const char *flag, const char *file, const char *why)
{
    fprintf(stderr, "orbt-mock: %s %s: %s\n", flag, file, why);
}

/* The whole file as NUL-terminated text, or NULL after complaining. */
static char *read_pem(const char *flag, const char *file)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        complain(flag, file, strerror(errno));
        return NULL;
    }
    char *text = xmalloc(PEM_MAX + 1);
    size_t n = fread(text, 1, PEM_MAX + 1, f);
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    const char *why = failed ? strerror(failed)
                      : n > PEM_MAX ? "larger than 1 MiB, not a PEM file"
                      : memchr(text, '\0', n) ? "not a PEM file"
                      : NULL;
    if (why) {
        complain(flag, file, why);
        OPENSSL_clear_free(text, PEM_MAX + 1);
        return NULL;
    }
    char *pem = xmemdup(text, n);
    OPENSSL_clear_free(text, PEM_MAX + 1);
    return pem;
}

/* Never prompts on the terminal for an encrypted key: it is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *ud)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)ud;
    return -1;
}

/* Whether cert holds a certificate and key its private key; complains if not. */
static bool check_pair(const char *cert, const char *key, const char *cert_file,
                       const char *key_file)
{
    BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, no_passphrase, NULL) : NULL;
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
    bool ok = false;
    if (x == NULL)
        complain("--tls-cert", cert_file, "holds no PEM certificate");
    else if (k == NULL)
        complain("--tls-key", key_file, "holds no unencrypted PEM private key");
    else if (X509_check_private_key(x, k) != 1)
        complain("--tls-key", key_file, "is not the private key of the --tls-cert certificate");
    else
        ok = true;
    EVP_PKEY_free(k);
    X509_free(x);
    BIO_free(kb);
    BIO_free(cb);
    ERR_clear_error();
    return ok;
}

bool tls_load(const char *cert_file, const char *key_file, char **cert, char **key)
{
    *cert = read_pem("--tls-cert", cert_file);
    *key = *cert ? read_pem("--tls-key", key_file) : NULL;
    if (*key && check_pair(*cert, *key, cert_file, key_file))
        return true;
    free(*cert);
    tls_free_key(*key);
    *cert = *key = NULL;
    return false;
}

void tls_free_key(char *key)
{
    if (key)
        OPENSSL_clear_free(key, strlen(key));
}
