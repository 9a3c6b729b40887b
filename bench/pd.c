#include "pd.h"

#include <event2/event.h>
#include <event2/http.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "http.h"
#include "tls.h"
#include "util.h"

struct pd_run {
    struct event_base *base;
    int remaining, inflight, failed;
    double *lat;
    int n_lat;
    char last_error[300];
};

struct pd_req {
    struct pd_run *run;
    struct http_client *client;
    bool one_shot;
    double t0;
};

static void pd_send(struct pd_req *r);

static void pd_done(int status, const char *body, size_t len, const char *err, void *arg)
{
    (void)body;
    (void)len;
    struct pd_req *r = arg;
    struct pd_run *run = r->run;
    run->inflight--;
    if (status != 200) {
        run->failed++;
        snprintf(run->last_error, sizeof run->last_error, "%s", err ? err : "HTTP error");
    } else {
        run->lat[run->n_lat++] = bench_now_ms() - r->t0;
    }
    if (run->remaining > 0 && !r->one_shot) {
        pd_send(r);
        return;
    }
    if (run->inflight == 0)
        event_base_loopexit(run->base, NULL);
}

static void pd_send(struct pd_req *r)
{
    r->run->remaining--;
    r->run->inflight++;
    r->t0 = bench_now_ms();
    if (http_client_request(r->client, EVHTTP_REQ_POST, "/pd/api/v1/tso", NULL, 0, pd_done, r) != 0) {
        r->run->inflight--;
        r->run->failed++;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void pd_report(const char *what, struct pd_run *run, double wall)
{
    qsort(run->lat, (size_t)run->n_lat, sizeof *run->lat, cmp_double);
    double p50 = run->n_lat ? run->lat[run->n_lat / 2] : 0;
    double p99 = run->n_lat ? run->lat[(run->n_lat * 99) / 100] : 0;
    printf("  %-34s %6d ok %4d failed  %8.0f req/s  p50 %.2f ms  p99 %.2f ms\n", what, run->n_lat,
           run->failed, run->n_lat / (wall / 1000.0), p50, p99);
    if (run->failed)
        printf("    last error: %s\n", run->last_error);
}

int bench_pd(const char *url, struct tls_opts *o, int n, int conns)
{
    char err[300];
    struct tls_ctx *tls = o->ca_path ? tls_ctx_new(TLS_CLIENT, o, err, sizeof err) : NULL;
    struct event_base *base = event_base_new();
    if ((o->ca_path && !tls) || !base) {
        fprintf(stderr, "tisim-bench: %s\n", err);
        return 1;
    }
    printf("pd %s: POST /pd/api/v1/tso\n", url);
    struct pd_run run = {.base = base, .remaining = n, .lat = calloc((size_t)n, sizeof(double))};
    struct pd_req *reqs = calloc((size_t)conns, sizeof *reqs);
    for (int i = 0; i < conns; i++) {
        reqs[i] = (struct pd_req){&run, http_client_new(base, url, tls, 10, err, sizeof err), false, 0};
        if (!reqs[i].client) {
            fprintf(stderr, "tisim-bench: %s\n", err);
            return 1;
        }
    }
    double t0 = bench_now_ms();
    for (int i = 0; i < conns && run.remaining > 0; i++)
        pd_send(&reqs[i]);
    event_base_dispatch(base);
    char what[64];
    snprintf(what, sizeof what, "kept-alive, %d connection%s", conns, conns == 1 ? "" : "s");
    pd_report(what, &run, bench_now_ms() - t0);
    for (int i = 0; i < conns; i++)
        http_client_free(reqs[i].client);

    /* New connection per request, each with a fresh TLS ctx (no session to resume). */
    int m = n / 10 ? n / 10 : 1;
    struct pd_run once = {.base = base, .lat = run.lat};
    t0 = bench_now_ms();
    for (int i = 0; i < m; i++) {
        struct tls_ctx *fresh = o->ca_path ? tls_ctx_new(TLS_CLIENT, o, err, sizeof err) : NULL;
        struct pd_req r = {&once, http_client_new(base, url, fresh, 10, err, sizeof err), true, 0};
        once.remaining = 1;
        if (r.client) {
            pd_send(&r);
            event_base_dispatch(base);
            http_client_free(r.client);
        }
        tls_ctx_free(fresh);
    }
    pd_report("new connection + full handshake", &once, bench_now_ms() - t0);
    free(run.lat);
    free(reqs);
    tls_ctx_free(tls);
    event_base_free(base);
    return run.failed || once.failed;
}

