/* test_tikv_pd.c — a store's link to a real pd-server (TISIM_BIN/pd-server) over mutual TLS:
 * registration while PD is not up yet, heartbeats PD records, and the encryption rule ("all
 * TiKV instances or none") refusing a store whose state differs, with PD's words. */
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
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "certgen.h"
#include "http.h"
#include "testutil.h"
#include "tikv_pd.h"
#include "tls.h"

static char g_dir[200];
static pid_t g_pd = -1;
static int g_port;

static struct tls_ctx *client_ctx(const char *name)
{
    char ca[300], c[300], k[300], err[600];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(c, sizeof c, "%s/%s.pem", g_dir, name);
    snprintf(k, sizeof k, "%s/%s-key.pem", g_dir, name);
    struct tls_opts o = {.role = "tikv", .ca_path = ca, .cert_path = c, .key_path = k};
    struct tls_ctx *ctx = tls_ctx_new(TLS_CLIENT, &o, err, sizeof err);
    if (!ctx)
        print_error("%s\n", err);
    assert_non_null(ctx);
    return ctx;
}

/* A free port below the ephemeral range. */
static int pick_port(void)
{
    return 10000 + (int)((unsigned)getpid() * 7919u + (unsigned)time(NULL)) % 20000;
}

static void start_pd(void)
{
    char conf[300], data[300], log[300], curl[64], purl[64], bin[300];
    snprintf(conf, sizeof conf, "%s/pd.toml", g_dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "[security]\ncacert-path = \"%s/ca.pem\"\ncert-path = \"%s/pd-server.pem\"\n"
               "key-path = \"%s/pd-server-key.pem\"\ncert-allowed-cn = [\"TiKV-Server\"]\n",
            g_dir, g_dir, g_dir);
    fclose(f);
    snprintf(data, sizeof data, "%s/pd", g_dir);
    snprintf(log, sizeof log, "%s/pd.log", g_dir);
    snprintf(curl, sizeof curl, "https://127.0.0.1:%d", g_port);
    snprintf(purl, sizeof purl, "https://127.0.0.1:%d", g_port + 1);
    const char *binenv = getenv("TISIM_BIN");
    snprintf(bin, sizeof bin, "%s/pd-server", binenv ? binenv : "build/bin");
    g_pd = fork();
    assert_true(g_pd >= 0);
    if (g_pd == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        execl(bin, "pd-server", "--name", "pd1", "--data-dir", data, "--client-urls", curl,
              "--peer-urls", purl, "--config", conf, "--log-file", log, (char *)NULL);
        _exit(127);
    }
}

static void stop_pd(void)
{
    if (g_pd > 0) {
        kill(g_pd, SIGTERM);
        waitpid(g_pd, NULL, 0);
    }
    g_pd = -1;
}

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    snprintf(g_dir, sizeof g_dir, "/tmp/tisim-test-tikv-pd-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    g_port = pick_port();
    return certgen_pki(g_dir, &(struct certgen_pki_opts){0}, err, sizeof err);
}

static int group_teardown(void **state)
{
    (void)state;
    stop_pd();
    tu_rm_rf(g_dir);
    return 0;
}

struct store_events {
    uint64_t registered;
    char refused[600];
    unsigned regions; /* region objects received */
    struct tikv_pd_region region;
};

static void on_region(const struct tikv_pd_region *r, void *arg)
{
    struct store_events *ev = arg;
    ev->regions++;
    ev->region = *r;
}

static void on_registered(uint64_t id, void *arg)
{
    ((struct store_events *)arg)->registered = id;
}

static void on_refused(const char *why, void *arg)
{
    snprintf(((struct store_events *)arg)->refused, sizeof ((struct store_events *)arg)->refused,
             "%s", why);
}

static void stats(struct tikv_pd_stats *out, void *arg)
{
    (void)arg;
    out->capacity = 1000;
    out->available = 900;
    out->used_size = 100;
    out->region_count = 1;
    out->leader_of = 1; /* this store says it leads region 1 in term 3 */
    out->term = 3;
}

static void run_until(struct event_base *base, bool (*done)(void *), void *arg, int ms)
{
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!done(arg) &&
             (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 < ms);
}

static bool registered(void *arg)
{
    return ((struct store_events *)arg)->registered != 0;
}

static bool refused(void *arg)
{
    return ((struct store_events *)arg)->refused[0] != '\0';
}

struct fetched {
    bool done;
    int status;
    char body[4096];
};

static void on_fetch(int status, const char *body, size_t len, const char *err, void *arg)
{
    (void)err;
    struct fetched *f = arg;
    f->done = true;
    f->status = status;
    snprintf(f->body, sizeof f->body, "%.*s", (int)len, body ? body : "");
}

static bool fetched(void *arg)
{
    return ((struct fetched *)arg)->done;
}

static void test_register_heartbeat_and_encryption_rule(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct tls_ctx *tls = client_ctx("tikv-server");
    char endpoints[128], err[600];
    /* an endpoint nobody serves first: the store moves on to the next */
    snprintf(endpoints, sizeof endpoints, "https://127.0.0.1:%d, https://127.0.0.1:%d",
             g_port + 2, g_port);
    struct store_events ev1 = {0};
    struct tikv_pd_callbacks cb = {.on_registered = on_registered, .on_refused = on_refused,
                                   .stats = stats, .on_region = on_region, .arg = &ev1};
    struct tikv_pd_store st = {"127.0.0.1:20160", "127.0.0.1:20180", "test", false};
    struct tikv_pd *p = tikv_pd_new(base, endpoints, tls, &st, &cb, err, sizeof err);
    assert_non_null(p);
    tikv_pd_start(p); /* PD is not up yet: it keeps trying */
    run_until(base, registered, &ev1, 1500);
    assert_int_equal(ev1.registered, 0);
    start_pd();
    run_until(base, registered, &ev1, 15000);
    assert_int_equal(ev1.registered, 1);
    assert_int_equal(tikv_pd_store_id(p), 1);
    char want[64];
    snprintf(want, sizeof want, "https://127.0.0.1:%d", g_port);
    assert_string_equal(tikv_pd_endpoint(p), want);

    /* PD shows the store Up, plaintext, with the counters of a heartbeat */
    struct http_client *c = http_client_new(base, want, tls, 5, err, sizeof err);
    assert_non_null(c);
    struct fetched f = {0};
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do { /* until a heartbeat has landed */
        memset(&f, 0, sizeof f);
        run_until(base, registered, &ev1, 300);
        http_client_request(c, EVHTTP_REQ_GET, "/pd/api/v1/store/1", NULL, 0, on_fetch, &f);
        run_until(base, fetched, &f, 5000);
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (!strstr(f.body, "\"capacity\": 1000") && now.tv_sec - t0.tv_sec < 10);
    assert_int_equal(f.status, 200);
    assert_contains(f.body, "\"address\": \"127.0.0.1:20160\"");
    assert_contains(f.body, "\"state_name\": \"Up\"");
    assert_contains(f.body, "\"encrypted\": false");
    assert_contains(f.body, "\"capacity\": 1000");

    /* the first store is region 1's only peer: the reply said so, with its address */
    assert_true(ev1.regions >= 1);
    assert_int_equal(ev1.region.id, 1);
    assert_int_equal(ev1.region.n_peers, 1);
    assert_int_equal(ev1.region.peers[0].store_id, 1);
    assert_string_equal(ev1.region.peers[0].address, "127.0.0.1:20160");
    /* and its heartbeats' leader_of made it the region's leader in PD */
    memset(&f, 0, sizeof f);
    http_client_request(c, EVHTTP_REQ_GET, "/pd/api/v1/region/id/1", NULL, 0, on_fetch, &f);
    run_until(base, fetched, &f, 5000);
    assert_int_equal(f.status, 200);
    assert_contains(f.body, "\"leader\": {");

    /* a second store that encrypts, in a cluster whose first store does not: refused */
    struct store_events ev2 = {0};
    struct tikv_pd_callbacks cb2 = {.on_registered = on_registered, .on_refused = on_refused,
                                    .stats = stats, .on_region = on_region, .arg = &ev2};
    struct tikv_pd_store st2 = {"127.0.0.1:20162", "127.0.0.1:20182", "test", true};
    struct tikv_pd *p2 = tikv_pd_new(base, want, tls, &st2, &cb2, err, sizeof err);
    assert_non_null(p2);
    tikv_pd_start(p2);
    run_until(base, refused, &ev2, 10000);
    assert_int_equal(ev2.registered, 0);
    assert_contains(ev2.refused, "refused this store (HTTP 409)");
    assert_contains(ev2.refused, "encrypt");
    assert_int_equal(ev2.regions, 0); /* a refused store learns no region */

    tikv_pd_free(p2);
    http_client_free(c);
    tikv_pd_free(p);
    tls_ctx_free(tls);
    event_base_free(base);
    stop_pd();
}

static void test_bad_endpoint_lists(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    struct tls_ctx *tls = client_ctx("tikv-server");
    char err[600];
    struct store_events ev = {0};
    struct tikv_pd_callbacks cb = {.on_registered = on_registered, .on_refused = on_refused,
                                   .arg = &ev};
    struct tikv_pd_store st = {"127.0.0.1:20160", "127.0.0.1:20180", "test", false};
    assert_null(tikv_pd_new(base, "https://127.0.0.1:1,,https://127.0.0.1:2", tls, &st, &cb, err,
                            sizeof err));
    assert_contains(err, "an empty PD endpoint");
    assert_null(tikv_pd_new(base, "http://127.0.0.1:2379", tls, &st, &cb, err, sizeof err));
    assert_contains(err, "PD endpoint http://127.0.0.1:2379: ");
    assert_contains(err, "use an https:// URL");
    assert_null(tikv_pd_new(base, "", tls, &st, &cb, err, sizeof err));
    assert_contains(err, "no PD endpoint given");
    tls_ctx_free(tls);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_endpoint_lists),
        cmocka_unit_test(test_register_heartbeat_and_encryption_rule),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
