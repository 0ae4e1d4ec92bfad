/* orbt-mock entry point: command line, start-up, signal handling and clean shutdown. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "config.h"
#include "control.h"
#include "fault.h"
#include "server.h"
#include "stats.h"
#include "store.h"
#include "tls.h"
#include "util.h"
#include "../src/version.h"   /* orbt-mock carries the module's version */

#define DEFAULT_API_KEY "test-api-key"
#define DEFAULT_CLIENT_ID "3f1c2a9e-8b7d-4e6f-9a01-23456789abcd"
#define DEFAULT_SECRET "test-secret"
#define DEFAULT_BALANCE (100000 * MICRO)
#define DEFAULT_SKEW 300
#define SECRET_ENV "ORBT_MOCK_SECRET"

static void usage(FILE *f)
{
    fputs(
        "Usage: orbt-mock [OPTION]...\n"
        "A local sandbox of the Orbt partner API.\n"
        "\n"
        "Options:\n"
        "  --host ADDR        address to bind (default 127.0.0.1)\n"
        "  --port N           port to bind; 0 lets the OS pick a free one (default 0)\n"
        "  --api-key K        expected x-api-key (default " DEFAULT_API_KEY ")\n"
        "  --client-id ID     expected x-client-id (default " DEFAULT_CLIENT_ID ")\n"
        "  --secret S         HMAC secret (default " DEFAULT_SECRET "). The command line\n"
        "                     is visible to other local users (ps); prefer the\n"
        "                     environment variable " SECRET_ENV ", which wins when set\n"
        "  --balance AMOUNT   starting partner balance (default 100000.00)\n"
        "  --skew SECONDS     allowed clock difference for x-timestamp (default 300)\n"
        "  --lifetime SECONDS exit by itself (status 0) after this long (default: never)\n"
        "  --tls-cert FILE    serve HTTPS with this PEM certificate (needs --tls-key)\n"
        "  --tls-key FILE     the certificate's PEM private key, unencrypted\n"
        "  --quiet            no per-request log lines on stderr\n"
        "  --help             this text\n"
        "  --version          the version, which is the orbt module's\n"
        "\n"
        "Prints \"listening on http://HOST:PORT\" (https:// with --tls-cert) as its\n"
        "first line on stdout and stops cleanly on SIGTERM or SIGINT. The\n"
        "loopback-only control path /__mock/{stats,reset,requests,faults,wallets}\n"
        "needs no signature. Consumers, their wallets and transactions live in\n"
        "memory; a transaction is applied once per referenceId.\n",
        f);
}

static int bad_option(const char *message, const char *arg)
{
    fprintf(stderr, "orbt-mock: %s%s%s\n", message, arg ? ": " : "", arg ? arg : "");
    fputs("try 'orbt-mock --help'\n", stderr);
    return 2;
}

static bool parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > 1e9)
        return false;
    *out = v;
    return true;
}

static void set_string(char **slot, const char *value)
{
    free(*slot);
    *slot = xstrdup(value);
}

/* Credentials and host must not be empty: nothing could ever match them. */
static int set_nonempty(char **slot, const char *value, const char *flag)
{
    if (*value == '\0')
        return bad_option("empty value for", flag);
    set_string(slot, value);
    return 0;
}

static int set_secret(struct mock_config *cfg, char *arg)
{
    int rc = set_nonempty(&cfg->secret, arg, "--secret");
    /* Best effort: blank the argument so later `ps` listings do not show it. */
    OPENSSL_cleanse(arg, strlen(arg));
    return rc;
}

static int set_number(unsigned long long max, const char *arg, const char *message,
                      unsigned long long *out)
{
    return parse_uint(arg, max, out) ? 0 : bad_option(message, arg);
}

/* Applies one option; returns 0, or the exit status for a bad value. */
static int apply_option(int opt, char *arg, struct mock_config *cfg)
{
    unsigned long long n = 0;
    int rc = 0;
    switch (opt) {
    case 'h': return set_nonempty(&cfg->host, arg, "--host");
    case 'k': return set_nonempty(&cfg->api_key, arg, "--api-key");
    case 'c': return set_nonempty(&cfg->client_id, arg, "--client-id");
    case 's': return set_secret(cfg, arg);
    case 'q': cfg->quiet = true; return 0;
    case 'C': return set_nonempty(&cfg->tls_cert_file, arg, "--tls-cert");
    case 'K': return set_nonempty(&cfg->tls_key_file, arg, "--tls-key");
    case 'p':
        rc = set_number(65535, arg, "--port must be an integer 0..65535", &n);
        cfg->port = (unsigned)n;
        return rc;
    case 'w':
        rc = set_number(1000000000, arg, "--skew must be a whole number of seconds", &n);
        cfg->skew = (long)n;
        return rc;
    case 'b':
        return money_parse(arg, &cfg->balance) ? 0
               : bad_option("--balance must be a decimal amount like 100000.00", arg);
    case 'l':
        return parse_seconds(arg, &cfg->lifetime) ? 0
               : bad_option("--lifetime must be a positive number of seconds", arg);
    default:
        return bad_option("unknown option", NULL);
    }
}

/* Returns -1 to run, or an exit status (0 after --help or --version). */
static int parse_args(int argc, char **argv, struct mock_config *cfg)
{
    static const struct option opts[] = {
        {"host", required_argument, 0, 'h'},    {"port", required_argument, 0, 'p'},
        {"api-key", required_argument, 0, 'k'}, {"client-id", required_argument, 0, 'c'},
        {"secret", required_argument, 0, 's'},  {"balance", required_argument, 0, 'b'},
        {"skew", required_argument, 0, 'w'},    {"lifetime", required_argument, 0, 'l'},
        {"tls-cert", required_argument, 0, 'C'}, {"tls-key", required_argument, 0, 'K'},
        {"quiet", no_argument, 0, 'q'},         {"help", no_argument, 0, 'H'},
        {"version", no_argument, 0, 'V'},       {0, 0, 0, 0},
    };
    opterr = 0;   /* we print our own messages */
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == 'H') {
            usage(stdout);
            return 0;
        }
        if (opt == 'V') {
            puts("orbt-mock " ORBT_VERSION);
            return 0;
        }
        if (opt == '?') {
            /* getopt sets optopt only for a known long option with a bad value. */
            const char *bad = argv[optind - 1];
            bool value = optopt != 0 && strncmp(bad, "--", 2) == 0;
            return bad_option(value ? "missing or unexpected value for" : "unknown option", bad);
        }
        int rc = apply_option(opt, optarg, cfg);
        if (rc)
            return rc;
    }
    if (optind < argc)
        return bad_option("unexpected argument", argv[optind]);
    if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL))
        return bad_option("--tls-cert and --tls-key go together", NULL);
    const char *env = getenv(SECRET_ENV);
    if (env && *env)
        set_string(&cfg->secret, env);
    return -1;
}

static void config_defaults(struct mock_config *cfg)
{
    cfg->host = xstrdup("127.0.0.1");
    cfg->api_key = xstrdup(DEFAULT_API_KEY);
    cfg->client_id = xstrdup(DEFAULT_CLIENT_ID);
    cfg->secret = xstrdup(DEFAULT_SECRET);
    cfg->balance = DEFAULT_BALANCE;
    cfg->skew = DEFAULT_SKEW;
}

static void config_free(struct mock_config *cfg)
{
    OPENSSL_cleanse(cfg->secret, strlen(cfg->secret));
    free(cfg->host);
    free(cfg->api_key);
    free(cfg->client_id);
    free(cfg->secret);
    free(cfg->tls_cert_file);
    free(cfg->tls_key_file);
    free(cfg->tls_cert);
    tls_free_key(cfg->tls_key);
}

/* Blocks until SIGTERM/SIGINT arrives or the lifetime runs out. */
static void wait_for_stop(const sigset_t *set, double lifetime)
{
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)lifetime;
    end.tv_nsec += (long)((lifetime - floor(lifetime)) * 1e9);
    if (end.tv_nsec >= 1000000000L) {
        end.tv_sec++;
        end.tv_nsec -= 1000000000L;
    }
    for (;;) {
        if (lifetime <= 0) {
            int sig;
            if (sigwait(set, &sig) == 0)
                return;
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        struct timespec left = {end.tv_sec - now.tv_sec, end.tv_nsec - now.tv_nsec};
        if (left.tv_nsec < 0) {
            left.tv_sec--;
            left.tv_nsec += 1000000000L;
        }
        if (left.tv_sec < 0) {
            fputs("orbt-mock: lifetime reached\n", stderr);
            return;
        }
        if (sigtimedwait(set, NULL, &left) > 0)
            return;
    }
}

int main(int argc, char **argv)
{
    struct mock_config cfg = {0};
    config_defaults(&cfg);
    int rc = parse_args(argc, argv, &cfg);
    if (rc < 0 && cfg.tls_cert_file
        && !tls_load(cfg.tls_cert_file, cfg.tls_key_file, &cfg.tls_cert, &cfg.tls_key))
        rc = 2;
    if (rc >= 0) {
        config_free(&cfg);
        return rc;
    }
    /* Blocked before any thread exists, so libmicrohttpd's threads inherit
     * the mask and the signals reach only sigwait below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);   /* a closed log pipe must not kill the server */

    store_init(cfg.balance);
    stats_init(cfg.secret);
    control_init(&cfg);
    char url[128];
    rc = server_start(&cfg, url, sizeof url);
    if (rc == 0) {
        printf("listening on %s\n", url);
        fflush(stdout);
        wait_for_stop(&set, cfg.lifetime);
        server_stop();
    }
    faults_shutdown();
    stats_shutdown();
    store_shutdown();
    config_free(&cfg);
    if (rc != 0)
        return 1;
    fputs("orbt-mock: stopped\n", stderr);
    return 0;
}
