/* test_tikv_status.c — TiKV's status port over mutual TLS: /status and /metrics for any
 * certificate of the CA, "certificate role error" (403) elsewhere for a CN outside
 * cert-allowed-cn, request and handshake counters in Prometheus text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certgen.h"
#include "http.h"
#include "testutil.h"
#include "tikv_status.h"
#include "tls.h"

static char g_dir[200];

struct reply {
    bool done;
    int status;
    char body[4096];
    char err[600];
};

static void on_reply(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct reply *r = arg;
    r->done = true;
    r->status = status;
    snprintf(r->body, sizeof r->body, "%.*s", (int)len, body ? body : "");
    snprintf(r->err, sizeof r->err, "%s", err ? err : "");
}

static struct tls_ctx *mkctx(enum tls_side side, const char *name, char *const *allowed,
                             size_t n)
{
    struct tls_ctx *ctx = tu_tls_ctx(g_dir, side, name, allowed, n, TLS_CN_SERVICE);
    assert_non_null(ctx);
    return ctx;
}

static json_t *status_json(void *arg)
{
    (void)arg;
    return json_pack("{s:I, s:s, s:b}", "store_id", (json_int_t)7, "role", "leader",
                     "encrypted", 1);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    return tu_pki_dir(g_dir, sizeof g_dir, "tikv-status", "TiKV-Control");
}

static int group_teardown(void **state)
{
    (void)state;
    tu_rm_rf(g_dir);
    return 0;
}

static void get(struct event_base *base, struct http_client *c, const char *path,
                struct reply *r)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(http_client_request(c, EVHTTP_REQ_GET, path, NULL, 0, on_reply, r), 0);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!r->done && now.tv_sec - t0.tv_sec < 5);
    assert_true(r->done);
}

static void test_role_check_and_metrics(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    char *allowed[] = {"TiDB-Server", "PD-Server"};
    struct tls_ctx *sctx = mkctx(TLS_SERVER, "tikv-server", allowed, 2);
    struct tls_ctx *tidb = mkctx(TLS_CLIENT, "tidb-server", NULL, 0);
    struct tls_ctx *ctl = mkctx(TLS_CLIENT, "client", NULL, 0); /* CN TiKV-Control: not listed */
    char err[600], url[64];
    struct tikv_status *st =
        tikv_status_new(base, "127.0.0.1", 0, sctx, status_json, NULL, err, sizeof err);
    assert_non_null(st);
    assert_int_equal(tikv_status_watch_tls(st, "status", sctx), 0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d", tikv_status_port(st));
    struct http_client *good = http_client_new(base, url, tidb, 5, err, sizeof err);
    struct http_client *other = http_client_new(base, url, ctl, 5, err, sizeof err);
    assert_non_null(good);
    assert_non_null(other);
    struct reply r;

    /* a listed CN reads everything; an unknown path is 404 for it */
    get(base, good, "/status", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "\"store_id\": 7");
    get(base, good, "/config", &r);
    assert_int_equal(r.status, 404);

    /* a CN outside the list: /status and /metrics yes, anything else 403 as real TiKV */
    get(base, other, "/status", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "\"role\": \"leader\"");
    get(base, other, "/config", &r);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.body, "certificate role error");
    get(base, other, "/debug/pprof/profile", &r);
    assert_int_equal(r.status, 403);

    /* counters: by kind, and the handshakes of the watched ctx (two full ones above) */
    tikv_status_count(st, "get");
    tikv_status_count(st, "get");
    tikv_status_count(st, "put");
    get(base, other, "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_contains(r.body, "# TYPE tikv_kv_requests_total counter\n");
    assert_contains(r.body, "tikv_kv_requests_total{kind=\"get\"} 2\n");
    assert_contains(r.body, "tikv_kv_requests_total{kind=\"put\"} 1\n");
    assert_contains(r.body, "tisim_tls_handshakes_total{port=\"status\",result=\"full\"} 2\n");
    assert_contains(r.body, "tisim_tls_handshakes_total{port=\"status\",result=\"failed\"} 0\n");

    /* a wrong method on a known path is 405, not the role check */
    memset(&r, 0, sizeof r);
    assert_int_equal(http_client_request(good, EVHTTP_REQ_POST, "/status", "{}", 2, on_reply, &r),
                     0);
    while (!r.done)
        event_base_loop(base, EVLOOP_ONCE);
    assert_int_equal(r.status, 405);

    http_client_free(good);
    http_client_free(other);
    tikv_status_free(st);
    tls_ctx_free(ctl);
    tls_ctx_free(tidb);
    tls_ctx_free(sctx);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_check_and_metrics),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
