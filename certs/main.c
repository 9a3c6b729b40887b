/* tisim-certs — makes the cluster's certificates (a thin CLI over common/certgen).
 * Exit status: 0 success, 1 failure, 2 usage error. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certgen.h"

#define PROG "tisim-certs"

static const char usage_main[] =
    "Usage: " PROG " COMMAND [OPTIONS]\n"
    "Makes X.509 certificates and keys for a tisim cluster (ECDSA P-256 by default).\n"
    "\n"
    "Commands:\n"
    "  pki    the cluster set: a CA, a server cert per role, one client cert\n"
    "  ca     another self-signed CA (for \"wrong CA\" cases)\n"
    "  cert   one leaf certificate signed by a given CA, with any CN, SANs and validity\n"
    "\n"
    "Run '" PROG " COMMAND --help' for the options of a command.\n";

static const char usage_pki[] =
    "Usage: " PROG " pki --out DIR [--san HOST]... [--client-cn CN] [--rsa] [--days N]\n"
    "Writes into DIR (created 0700 if missing; keys are 0600):\n"
    "  ca.pem ca-key.pem                 CN \"tisim CA\"\n"
    "  pd-server.pem pd-server-key.pem   CN \"PD-Server\"\n"
    "  tikv-server.pem tikv-server-key.pem  CN \"TiKV-Server\"\n"
    "  tidb-server.pem tidb-server-key.pem  CN \"TiDB-Server\"\n"
    "  client.pem client-key.pem         CN \"Control-Client\" (see --client-cn)\n"
    "Server certs carry SANs 127.0.0.1, ::1, localhost and every --san.\n"
    "\n"
    "Options:\n"
    "  --out DIR        output directory (required)\n"
    "  --san HOST       extra DNS name or IP address for the server certs (repeatable)\n"
    "  --client-cn CN   Common Name of the client cert (default \"Control-Client\")\n"
    "  --rsa            RSA-2048 keys instead of ECDSA P-256\n"
    "  --days N         validity in days from now - 1 hour (default 365)\n"
    "  -h, --help       show this help\n";

static const char usage_ca[] =
    "Usage: " PROG " ca --out-cert FILE --out-key FILE [--cn CN] [--rsa] [--days N]\n"
    "Writes a new self-signed CA (e.g. to make certificates the cluster must reject).\n"
    "\n"
    "Options:\n"
    "  --out-cert FILE  certificate output (PEM, mode 0644)\n"
    "  --out-key FILE   private key output (PEM, mode 0600)\n"
    "  --cn CN          Common Name (default \"tisim Other CA\")\n"
    "  --rsa            RSA-2048 key instead of ECDSA P-256\n"
    "  --days N         validity in days from now - 1 hour (default 365)\n"
    "  -h, --help       show this help\n";

static const char usage_cert[] =
    "Usage: " PROG " cert --ca-cert FILE --ca-key FILE --cn CN --out-cert FILE --out-key FILE\n"
    "                   [--san HOST]... [--rsa] [--days N]\n"
    "                   [--not-before YYYYMMDDhhmmss] [--not-after YYYYMMDDhhmmss]\n"
    "                   [--expired] [--not-yet-valid]\n"
    "Writes one leaf certificate (serverAuth+clientAuth) signed by the given CA.\n"
    "\n"
    "Options:\n"
    "  --ca-cert FILE   issuing CA certificate (PEM)\n"
    "  --ca-key FILE    issuing CA private key (PEM)\n"
    "  --cn CN          subject Common Name (required)\n"
    "  --out-cert FILE  certificate output (PEM, mode 0644)\n"
    "  --out-key FILE   private key output (PEM, mode 0600)\n"
    "  --san HOST       DNS name or IP address subjectAltName (repeatable; none by default)\n"
    "  --rsa            RSA-2048 key instead of ECDSA P-256\n"
    "  --days N         validity in days (default 365), from --not-before or now - 1 hour\n"
    "  --not-before T   start of validity, UTC, YYYYMMDDhhmmss\n"
    "  --not-after T    end of validity, UTC, YYYYMMDDhhmmss\n"
    "  --expired        valid from now - 2 days to now - 1 day\n"
    "  --not-yet-valid  valid from now + 1 day to now + 2 days\n"
    "  -h, --help       show this help\n";

enum {
    OPT_OUT = 256, OPT_SAN, OPT_CLIENT_CN, OPT_RSA, OPT_DAYS, OPT_OUT_CERT, OPT_OUT_KEY, OPT_CN,
    OPT_CA_CERT, OPT_CA_KEY, OPT_NOT_BEFORE, OPT_NOT_AFTER, OPT_EXPIRED, OPT_NOT_YET_VALID,
};

struct args {
    const char *out, *client_cn, *out_cert, *out_key, *cn, *ca_cert, *ca_key;
    char **sans;
    size_t n_sans;
    bool rsa, expired, not_yet_valid;
    int days;
    time_t not_before, not_after;
};

static int usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '" PROG "%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
    return 2;
}

static bool parse_days(const char *s, int *out)
{
    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v <= 0 || v > 36500)
        return false;
    *out = (int)v;
    return true;
}

/* "YYYYMMDDhhmmss" (UTC) → time_t; rejects impossible dates such as Feb 30. */
static bool parse_time(const char *s, time_t *out)
{
    if (strlen(s) != 14)
        return false;
    for (int i = 0; i < 14; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    int v[6];
    static const int w[6] = {4, 2, 2, 2, 2, 2};
    const char *p = s;
    for (int i = 0; i < 6; i++) {
        v[i] = 0;
        for (int j = 0; j < w[i]; j++)
            v[i] = v[i] * 10 + (*p++ - '0');
    }
    if (v[0] < 1950 || v[0] > 9999)
        return false;
    struct tm tm = {.tm_year = v[0] - 1900, .tm_mon = v[1] - 1, .tm_mday = v[2],
                    .tm_hour = v[3], .tm_min = v[4], .tm_sec = v[5]};
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t == 0)
        return false;
    struct tm chk;
    if (gmtime_r(&t, &chk) == NULL || chk.tm_year != v[0] - 1900 || chk.tm_mon != v[1] - 1 ||
        chk.tm_mday != v[2] || chk.tm_hour != v[3] || chk.tm_min != v[4] || chk.tm_sec != v[5])
        return false;
    *out = t;
    return true;
}

/* Parses the options of one command. Returns -1 to go on, or an exit status. */
static int parse_args(const char *cmd, const char *usage, const struct option *opts, int argc,
                      char **argv, struct args *a)
{
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 0;
        case OPT_OUT: a->out = optarg; break;
        case OPT_CLIENT_CN: a->client_cn = optarg; break;
        case OPT_OUT_CERT: a->out_cert = optarg; break;
        case OPT_OUT_KEY: a->out_key = optarg; break;
        case OPT_CN: a->cn = optarg; break;
        case OPT_CA_CERT: a->ca_cert = optarg; break;
        case OPT_CA_KEY: a->ca_key = optarg; break;
        case OPT_RSA: a->rsa = true; break;
        case OPT_EXPIRED: a->expired = true; break;
        case OPT_NOT_YET_VALID: a->not_yet_valid = true; break;
        case OPT_SAN:
            if (*optarg == '\0')
                return usage_error(cmd, "--san must not be empty");
            a->sans[a->n_sans++] = optarg; /* sans has room for argc entries */
            break;
        case OPT_DAYS:
            if (!parse_days(optarg, &a->days))
                return usage_error(cmd, "--days must be a positive integer (at most 36500), "
                                        "not '%s'", optarg);
            break;
        case OPT_NOT_BEFORE:
            if (!parse_time(optarg, &a->not_before))
                return usage_error(cmd, "--not-before must be a UTC time YYYYMMDDhhmmss, not '%s'",
                                   optarg);
            break;
        case OPT_NOT_AFTER:
            if (!parse_time(optarg, &a->not_after))
                return usage_error(cmd, "--not-after must be a UTC time YYYYMMDDhhmmss, not '%s'",
                                   optarg);
            break;
        case ':':
            return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    return -1;
}

static int need(const char *cmd, const char *val, const char *name)
{
    if (val == NULL || *val == '\0')
        return usage_error(cmd, "%s is required", name);
    return -1;
}

static int cmd_pki(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, OPT_OUT},
        {"san", required_argument, NULL, OPT_SAN},
        {"client-cn", required_argument, NULL, OPT_CLIENT_CN},
        {"rsa", no_argument, NULL, OPT_RSA},
        {"days", required_argument, NULL, OPT_DAYS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc;
    if ((rc = parse_args("pki", usage_pki, opts, argc, argv, a)) >= 0 ||
        (rc = need("pki", a->out, "--out DIR")) >= 0)
        return rc;
    if (a->client_cn != NULL && *a->client_cn == '\0')
        return usage_error("pki", "--client-cn must not be empty");

    struct certgen_pki_opts po = {
        .key_type = a->rsa ? CERTGEN_RSA_2048 : CERTGEN_EC_P256,
        .client_cn = a->client_cn,
        .extra_sans = a->sans,
        .n_extra_sans = a->n_sans,
        .days = a->days,
    };
    char err[512];
    if (certgen_pki(a->out, &po, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    static const char *const files[] = {"ca", "pd-server", "tikv-server", "tidb-server",
                                        "client"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        printf("wrote %s/%s.pem %s/%s-key.pem\n", a->out, files[i], a->out, files[i]);
    return 0;
}

static int cmd_ca(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"out-cert", required_argument, NULL, OPT_OUT_CERT},
        {"out-key", required_argument, NULL, OPT_OUT_KEY},
        {"cn", required_argument, NULL, OPT_CN},
        {"rsa", no_argument, NULL, OPT_RSA},
        {"days", required_argument, NULL, OPT_DAYS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc;
    if ((rc = parse_args("ca", usage_ca, opts, argc, argv, a)) >= 0 ||
        (rc = need("ca", a->out_cert, "--out-cert FILE")) >= 0 ||
        (rc = need("ca", a->out_key, "--out-key FILE")) >= 0)
        return rc;
    if (a->cn != NULL && *a->cn == '\0')
        return usage_error("ca", "--cn must not be empty");
    if (strcmp(a->out_cert, a->out_key) == 0)
        return usage_error("ca", "--out-cert and --out-key must be different files");

    struct certgen_req req = {
        .cn = a->cn ? a->cn : "tisim Other CA",
        .is_ca = true,
        .key_type = a->rsa ? CERTGEN_RSA_2048 : CERTGEN_EC_P256,
        .days = a->days,
    };
    char err[512];
    struct certgen_pair *pair = NULL;
    if (certgen_make(&req, NULL, &pair, err, sizeof(err)) != 0 ||
        certgen_write(pair, a->out_cert, a->out_key, err, sizeof(err)) != 0) {
        certgen_free(pair);
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    certgen_free(pair);
    printf("wrote %s %s (CA \"%s\")\n", a->out_cert, a->out_key, req.cn);
    return 0;
}

static int cmd_cert(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"ca-cert", required_argument, NULL, OPT_CA_CERT},
        {"ca-key", required_argument, NULL, OPT_CA_KEY},
        {"cn", required_argument, NULL, OPT_CN},
        {"out-cert", required_argument, NULL, OPT_OUT_CERT},
        {"out-key", required_argument, NULL, OPT_OUT_KEY},
        {"san", required_argument, NULL, OPT_SAN},
        {"rsa", no_argument, NULL, OPT_RSA},
        {"days", required_argument, NULL, OPT_DAYS},
        {"not-before", required_argument, NULL, OPT_NOT_BEFORE},
        {"not-after", required_argument, NULL, OPT_NOT_AFTER},
        {"expired", no_argument, NULL, OPT_EXPIRED},
        {"not-yet-valid", no_argument, NULL, OPT_NOT_YET_VALID},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int rc;
    if ((rc = parse_args("cert", usage_cert, opts, argc, argv, a)) >= 0 ||
        (rc = need("cert", a->ca_cert, "--ca-cert FILE")) >= 0 ||
        (rc = need("cert", a->ca_key, "--ca-key FILE")) >= 0 ||
        (rc = need("cert", a->cn, "--cn CN")) >= 0 ||
        (rc = need("cert", a->out_cert, "--out-cert FILE")) >= 0 ||
        (rc = need("cert", a->out_key, "--out-key FILE")) >= 0)
        return rc;
    if (strcmp(a->out_cert, a->out_key) == 0)
        return usage_error("cert", "--out-cert and --out-key must be different files");
    bool explicit_validity = a->days || a->not_before || a->not_after;
    if (a->expired && a->not_yet_valid)
        return usage_error("cert", "--expired and --not-yet-valid exclude each other");
    if ((a->expired || a->not_yet_valid) && explicit_validity)
        return usage_error("cert", "%s excludes --days, --not-before and --not-after",
                           a->expired ? "--expired" : "--not-yet-valid");
    if (a->days && a->not_before && a->not_after)
        return usage_error("cert", "give at most two of --days, --not-before, --not-after");
    time_t now = time(NULL);
    if (a->expired) {
        a->not_before = now - 2 * 86400;
        a->not_after = now - 86400;
    } else if (a->not_yet_valid) {
        a->not_before = now + 86400;
        a->not_after = now + 2 * 86400;
    } else if (a->not_after && !a->not_before) {
        /* --not-after alone (or with --days): count back from it, else start now - 1 hour */
        a->not_before = a->days ? a->not_after - (time_t)a->days * 86400 : now - 3600;
    }
    if (a->not_before && a->not_after && a->not_before >= a->not_after)
        return usage_error("cert", "--not-before must be earlier than --not-after");

    char err[512];
    struct certgen_pair *ca = NULL, *pair = NULL;
    if (certgen_load(a->ca_cert, a->ca_key, &ca, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    struct certgen_req req = {
        .cn = a->cn,
        .sans = a->sans,
        .n_sans = a->n_sans,
        .key_type = a->rsa ? CERTGEN_RSA_2048 : CERTGEN_EC_P256,
        .not_before = a->not_before,
        .not_after = a->not_after,
        .days = a->days,
    };
    rc = 0;
    if (certgen_make(&req, ca, &pair, err, sizeof(err)) != 0 ||
        certgen_write(pair, a->out_cert, a->out_key, err, sizeof(err)) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        rc = 1;
    } else {
        printf("wrote %s %s (CN \"%s\")\n", a->out_cert, a->out_key, a->cn);
    }
    certgen_free(pair);
    certgen_free(ca);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_main, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_main, stdout);
        return 0;
    }
    struct args a = {0};
    a.sans = calloc((size_t)argc, sizeof(*a.sans));
    if (a.sans == NULL) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    int rc;
    if (strcmp(cmd, "pki") == 0)
        rc = cmd_pki(argc - 1, argv + 1, &a);
    else if (strcmp(cmd, "ca") == 0)
        rc = cmd_ca(argc - 1, argv + 1, &a);
    else if (strcmp(cmd, "cert") == 0)
        rc = cmd_cert(argc - 1, argv + 1, &a);
    else
        rc = usage_error(NULL, "unknown command '%s'", cmd);
    free(a.sans);
    return rc;
}
