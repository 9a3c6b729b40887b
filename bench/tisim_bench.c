/* tisim-bench — figures for what matters for speed, never assertions:
 *   compare [--rsa] [-n N] [-r ROUNDS] [-c CONNS] [--server-log info|warn]
 *        server CPU per full and per resumed mutual-TLS handshake, the project's transport
 *        (common/tls.c under libevent) against a bare blocking mbedTLS server with the same
 *        certs, suites, curves and ticket settings: both servers run at once and the client
 *        alternates between them, so they see the same machine load; then server memory per
 *        idle mutual-TLS connection with CONNS (default 1000) held open, both ways
 *   handshake [--rsa] [-n N] [-r ROUNDS] [--impl transport|bare|both] [--full N] [--resumed N]
 *             [--server-log info|warn]
 *        the handshake part alone (under callgrind: see scripts/bench --profile)
 *   idle [--rsa] [-c CONNS]          the memory part alone
 *   pd URL --cacert CA --cert C --key K [-n N] [-c CONNS]   PD's TSO endpoint (pd.h)
 * Defaults: -n sets --full and --resumed (100 and 1000), 3 rounds, 1000 connections.
 * Each server runs in a child process, so its CPU and memory are its own; one blocking
 * mbedTLS client (bare.h) drives both. TISIM_BENCH_KEEP=1 keeps the temporary directory
 * (certs, the transport server's log). Exit 1 only when a measurement itself failed. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bare.h"
#include "log.h"
#include "pd.h"
#include "tls.h"
#include "transport.h"
#include "util.h"

#define MAX_ROUNDS 9

struct impl {
    const char *name;
    bench_server_fn server;
};

static const struct impl impls[] = {{"transport", transport_server}, {"bare", bare_server}};

struct opts {
    bool rsa;
    int full, resumed, rounds, conns;
    int impl_mask; /* bit 0 transport, bit 1 bare */
    bool server_log_warn; /* --server-log warn: the transport server logs no good handshake */
};

struct hs_figures {
    double full_ms, resumed_ms;           /* server CPU per handshake */
    double sys_full_ms, sys_resumed_ms;   /* of which kernel */
    double csw_full, csw_resumed;         /* server sleeps per handshake */
    double wall_full_ms, wall_resumed_ms; /* client: connect + handshake + byte each way */
    char suite[64];
};

static int check_result(const char *who, const struct bench_result *r, int full, int resumed)
{
    if (r->failed || r->full_seen != full || r->resumed_seen != resumed) {
        fprintf(stderr, "tisim-bench: %s server: %d failed, %d full (expected %d), %d resumed "
                        "(expected %d)%s%s\n", who, r->failed, r->full_seen, full,
                r->resumed_seen, resumed, r->error[0] ? ": " : "", r->error);
        return -1;
    }
    return 0;
}

/* The servers of one round, each with its own client (and session). */
struct hs_side {
    int id; /* index in impls[] */
    const struct impl *im;
    struct bench_child ch;
    struct bare_client *cl;
    bool running;
    double wall_full, wall_resumed;
};

static int sides_start(struct hs_side *sd, int n, const struct bench_certs *c,
                       const struct bench_plan *plan)
{
    char err[256];
    for (int k = 0; k < n; k++) {
        sd[k].cl = bare_client_new(c, err, sizeof err);
        if (!sd[k].cl) {
            fprintf(stderr, "tisim-bench: client: %s\n", err);
            return -1;
        }
        if (bench_spawn(&sd[k].ch, sd[k].im->server, c, plan) != 0)
            return -1;
        sd[k].running = true;
    }
    return 0;
}

/* n connections from cl; resume offers the previous session. Returns the summed wall ms. */
static double client_run(struct bare_client *cl, int port, int n, bool resume, int *failed,
                         char *err, size_t errlen)
{
    double t0 = bench_now_ms();
    for (int i = 0; i < n && *failed == 0; i++)
        *failed += bare_client_once(cl, port, resume, NULL, err, errlen) != 0;
    return bench_now_ms() - t0;
}

/* count connections to each server in turn, so that all see the same machine load. */
static int sides_run(struct hs_side *sd, int n, int count, bool resume, bool full_phase)
{
    char err[300];
    for (int i = 0; i < count; i++) {
        for (int k = 0; k < n; k++) {
            double t0 = bench_now_ms();
            if (bare_client_once(sd[k].cl, sd[k].ch.port, resume, NULL, err, sizeof err) != 0) {
                fprintf(stderr, "tisim-bench: client against the %s server: %s\n",
                        sd[k].im->name, err);
                return -1;
            }
            *(full_phase ? &sd[k].wall_full : &sd[k].wall_resumed) += bench_now_ms() - t0;
        }
    }
    return 0;
}

/* Collects each server's figures (or, after a client failure, stops the servers). */
static int sides_finish(struct hs_side *sd, int n, const struct opts *o, bool client_ok,
                        struct hs_figures *f)
{
    int rc = client_ok ? 0 : -1;
    int nf = o->full ? o->full : 1, nr = o->resumed ? o->resumed : 1;
    for (int k = 0; k < n; k++) {
        struct bench_result r;
        if (sd[k].running && !client_ok)
            bench_stop(&sd[k].ch);
        else if (sd[k].running && (bench_wait(&sd[k].ch, &r) != 0 ||
                                   check_result(sd[k].im->name, &r, o->full + 1, o->resumed)))
            rc = -1;
        else if (sd[k].running)
            f[sd[k].id] = (struct hs_figures){r.cpu_full_ms / nf, r.cpu_resumed_ms / nr,
                                              r.sys_full_ms / nf, r.sys_resumed_ms / nr,
                                              (double)r.csw_full / nf,
                                              (double)r.csw_resumed / nr,
                                              sd[k].wall_full / nf, sd[k].wall_resumed / nr, ""};
        if (sd[k].cl)
            snprintf(f[sd[k].id].suite, sizeof f->suite, "%s", bare_client_suite(sd[k].cl));
        bare_client_free(sd[k].cl);
    }
    return rc;
}

/* One round: every selected server in its own process, 1 warm-up + o->full full + o->resumed
 * resumed handshakes each, the client alternating between them connection by connection.
 * f[i] gets the figures of impls[i]. */
static int hs_round(const struct opts *o, const struct bench_certs *c, const char *log_path,
                    struct hs_figures *f)
{
    struct bench_plan plan = {.warm = 1, .full = o->full, .resumed = o->resumed,
                              .log_path = log_path, .log_warn_only = o->server_log_warn};
    struct hs_side sd[2] = {{0}};
    int n = 0;
    for (int k = 0; k < 2; k++)
        if (o->impl_mask & (1 << k))
            sd[n++] = (struct hs_side){.id = k, .im = &impls[k]};
    int rc = sides_start(sd, n, c, &plan);
    if (rc == 0)
        rc = sides_run(sd, n, 1, false, true);
    for (int k = 0; k < n; k++)
        sd[k].wall_full = 0; /* the warm-up does not count */
    if (rc == 0)
        rc = sides_run(sd, n, o->full, false, true);
    if (rc == 0)
        rc = sides_run(sd, n, o->resumed, true, false);
    return sides_finish(sd, n, o, rc == 0, f);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof *v);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* One table row: medians of both, the median of the per-round fractions, and each round's. */
static void hs_row(const char *what, const double (*v)[MAX_ROUNDS], int rounds, bool both,
                   const char *target)
{
    double frac[MAX_ROUNDS];
    printf("  %-26s %9.3f ms %9.3f ms", what, median(v[0], rounds), median(v[1], rounds));
    if (!both) {
        printf("\n");
        return;
    }
    for (int i = 0; i < rounds; i++)
        frac[i] = v[0][i] > 0 ? v[1][i] / v[0][i] : 0;
    printf("   %5.2fx %-9s  (", median(frac, rounds), target);
    for (int i = 0; i < rounds; i++)
        printf("%s%.2f", i ? " " : "", frac[i]);
    printf(")\n");
}

static void count_row(const char *what, const double (*v)[MAX_ROUNDS], int rounds)
{
    printf("  %-26s %12.1f %12.1f   per handshake\n", what, median(v[0], rounds),
           median(v[1], rounds));
}

static int bench_handshake(const struct bench_certs *c, const struct opts *o)
{
    char log_path[128];
    snprintf(log_path, sizeof log_path, "%s/server.log", c->dir);
    double full[2][MAX_ROUNDS] = {{0}}, resumed[2][MAX_ROUNDS] = {{0}};
    double wfull[2][MAX_ROUNDS] = {{0}}, wres[2][MAX_ROUNDS] = {{0}};
    double sfull[2][MAX_ROUNDS] = {{0}}, sres[2][MAX_ROUNDS] = {{0}};
    double cfull[2][MAX_ROUNDS] = {{0}}, cres[2][MAX_ROUNDS] = {{0}};
    char suite[64] = "";
    for (int round = 0; round < o->rounds; round++) {
        struct hs_figures f[2] = {{0}};
        if (hs_round(o, c, log_path, f) != 0)
            return 1;
        for (int k = 0; k < 2; k++) {
            full[k][round] = f[k].full_ms;
            resumed[k][round] = f[k].resumed_ms;
            wfull[k][round] = f[k].wall_full_ms;
            wres[k][round] = f[k].wall_resumed_ms;
            sfull[k][round] = f[k].sys_full_ms;
            sres[k][round] = f[k].sys_resumed_ms;
            cfull[k][round] = f[k].csw_full;
            cres[k][round] = f[k].csw_resumed;
            if (f[k].suite[0])
                snprintf(suite, sizeof suite, "%s", f[k].suite);
        }
    }
    bool both = o->impl_mask == 3;
    printf("mutual-TLS handshakes, %s certs, %s, loopback; per round %d full + %d resumed per "
           "server, %d round%s, medians; transport server logs at %s:\n",
           o->rsa ? "RSA-2048" : "ECDSA P-256", suite, o->full, o->resumed, o->rounds,
           o->rounds == 1 ? "" : "s", o->server_log_warn ? "WARN" : "INFO (every handshake)");
    printf("  %-26s %12s %12s   %s\n", "", "transport", "bare mbedTLS",
           both ? "bare-speed fraction (per round)" : "");
    hs_row("server CPU, full", full, o->rounds, both, ">= 0.95x");
    hs_row("  of which kernel (rough)", sfull, o->rounds, false, "");
    hs_row("server CPU, resumed", resumed, o->rounds, both, ">= 0.90x");
    hs_row("  of which kernel (rough)", sres, o->rounds, false, "");
    count_row("server sleeps, full", cfull, o->rounds);
    count_row("server sleeps, resumed", cres, o->rounds);
    hs_row("client wall, full", wfull, o->rounds, false, "");
    hs_row("client wall, resumed", wres, o->rounds, false, "");
    return 0;
}

/* One server process holding o->conns idle connections (after one warm-up connection). */
static int idle_round(const struct impl *im, const struct bench_certs *c, const struct opts *o,
                      const char *log_path, struct bench_result *r)
{
    char err[256];
    struct bench_plan plan = {.warm = 1, .hold = o->conns, .log_path = log_path,
                              .log_warn_only = o->server_log_warn};
    struct bench_child ch;
    int *fds = calloc((size_t)o->conns, sizeof *fds), n = 0, failed = 0;
    struct bare_client *cl = bare_client_new(c, err, sizeof err);
    if (!fds || !cl || bench_spawn(&ch, im->server, c, &plan) != 0) {
        fprintf(stderr, "tisim-bench: client: %s\n", cl ? "cannot start the server" : err);
        bare_client_free(cl);
        free(fds);
        return -1;
    }
    client_run(cl, ch.port, 1, false, &failed, err, sizeof err);
    for (; n < o->conns && !failed; n++)
        failed = bare_client_once(cl, ch.port, false, &fds[n], err, sizeof err) != 0;
    bare_client_free(cl);
    int rc = 0;
    if (failed) {
        fprintf(stderr, "tisim-bench: client against the %s server, connection %d: %s\n",
                im->name, n, err);
        bench_stop(&ch);
        rc = -1;
    } else if (bench_wait(&ch, r) != 0 || check_result(im->name, r, o->conns + 1, 0) != 0) {
        rc = -1;
    }
    for (int i = 0; i < n - failed; i++)
        close(fds[i]);
    free(fds);
    return rc;
}

static int bench_idle(const struct bench_certs *c, const struct opts *o)
{
    char log_path[128];
    struct bench_result r[2] = {{0}};
    snprintf(log_path, sizeof log_path, "%s/server.log", c->dir);
    for (int k = 0; k < 2; k++)
        if ((o->impl_mask & (1 << k)) && idle_round(&impls[k], c, o, log_path, &r[k]) != 0)
            return 1;
    printf("idle mutual-TLS connections (handshake done, one byte each way), %d held, server "
           "memory per connection:\n", o->conns);
    printf("  %-26s %12s %12s\n", "", "transport", "bare mbedTLS");
    printf("  %-26s %9.1f KB %9.1f KB   target <= 40 KB (transport)\n", "RSS delta / conns",
           (double)(r[0].rss_after_kb - r[0].rss_before_kb) / o->conns,
           (double)(r[1].rss_after_kb - r[1].rss_before_kb) / o->conns);
    printf("  %-26s %9.1f KB %9.1f KB\n", "malloc in use delta / conns",
           (double)(r[0].heap_after - r[0].heap_before) / 1024.0 / o->conns,
           (double)(r[1].heap_after - r[1].heap_before) / 1024.0 / o->conns);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: tisim-bench compare [--rsa] [-n N] [-r ROUNDS] [-c CONNS]"
            " [--server-log info|warn]\n"
            "       tisim-bench handshake [--rsa] [-n N] [-r ROUNDS] [--impl transport|bare|both]"
            " [--full N] [--resumed N] [--server-log info|warn]\n"
            "       tisim-bench idle [--rsa] [-c CONNS]\n"
            "       tisim-bench pd URL [--cacert CA --cert CERT --key KEY] [-n N] [-c CONNS]\n");
    return 2;
}

static bool int_arg(const char *a, const char *name, const char *v, int *out, int min)
{
    if (strcmp(a, name) != 0 || !v)
        return false;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < min || x > 1000000)
        return false;
    *out = (int)x;
    return true;
}

static int impl_arg(const char *v)
{
    if (strcmp(v, "transport") == 0)
        return 1;
    if (strcmp(v, "bare") == 0)
        return 2;
    return strcmp(v, "both") == 0 ? 3 : 0;
}

/* Parses argv[2..]; returns -1 on a bad argument. */
static int parse(int argc, char **argv, struct opts *o, struct tls_opts *t, const char **url)
{
    int n = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = v != NULL;
        if (strcmp(a, "--rsa") == 0) {
            o->rsa = true;
            takes = false;
        } else if (int_arg(a, "-n", v, &n, 1))
            o->full = o->resumed = n;
        else if (int_arg(a, "--full", v, &o->full, 0) ||
                 int_arg(a, "--resumed", v, &o->resumed, 0) ||
                 int_arg(a, "-r", v, &o->rounds, 1) || int_arg(a, "-c", v, &o->conns, 1))
            ;
        else if (strcmp(a, "--impl") == 0 && v && (o->impl_mask = impl_arg(v)) != 0)
            ;
        else if (strcmp(a, "--server-log") == 0 && v &&
                 (strcmp(v, "info") == 0 || strcmp(v, "warn") == 0))
            o->server_log_warn = strcmp(v, "warn") == 0;
        else if (strcmp(a, "--cacert") == 0 && v)
            t->ca_path = v;
        else if (strcmp(a, "--cert") == 0 && v)
            t->cert_path = v;
        else if (strcmp(a, "--key") == 0 && v)
            t->key_path = v;
        else if (!*url && a[0] != '-') {
            *url = a;
            takes = false;
        } else {
            return -1;
        }
        i += takes;
    }
    return o->rounds <= MAX_ROUNDS ? 0 : -1;
}

static int run_tls(const char *cmd, struct opts *o)
{
    char err[300];
    struct bench_certs c;
    if (bench_certs_make(&c, o->rsa, err, sizeof err) != 0) {
        fprintf(stderr, "tisim-bench: %s\n", err);
        return 1;
    }
    int rc = 0;
    if (strcmp(cmd, "idle") != 0)
        rc = bench_handshake(&c, o);
    if (rc == 0 && strcmp(cmd, "handshake") != 0)
        rc = bench_idle(&c, o);
    if (!getenv("TISIM_BENCH_KEEP"))
        bench_certs_remove(&c);
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    bench_raise_nofile();
    log_open("bench", "/dev/null", LOG_ERROR);
    struct opts o = {.full = -1, .resumed = -1, .rounds = 3, .conns = 0, .impl_mask = 3};
    struct tls_opts t = {.role = "bench"};
    const char *url = NULL;
    if (argc < 2 || parse(argc, argv, &o, &t, &url) != 0)
        return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "pd") == 0 && url)
        return bench_pd(url, &t, o.full > 0 ? o.full : 5000, o.conns ? o.conns : 4);
    if (url || (strcmp(cmd, "compare") && strcmp(cmd, "handshake") && strcmp(cmd, "idle")))
        return usage();
    o.full = o.full >= 0 ? o.full : 100;
    o.resumed = o.resumed >= 0 ? o.resumed : 1000;
    o.conns = o.conns ? o.conns : 1000;
    return run_tls(cmd, &o);
}
