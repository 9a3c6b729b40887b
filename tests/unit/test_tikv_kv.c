/* test_tikv_kv.c — TiKV's KV service driven over the framed RPC on a real loopback socket:
 * the good calls, and every malformed request a client other than tikv-ctl could send
 * (tikv-ctl checks its arguments itself, so only this test reaches the server's checks). */
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

#include "kv_engine.h"
#include "log.h"
#include "rpc.h"
#include "testutil.h"
#include "tikv_kv.h"

struct world {
    char dir[200];
    struct event_base *base;
    struct kv_engine *engine;
    struct tikv_kv *kv;
    struct rpc_client *client;
};

struct answer {
    bool done;
    enum rpc_status status;
    char msg[512];
    size_t nfields;
    char field0[256];
};

static int setup(void **state)
{
    static struct world w;
    char err[512];
    signal(SIGPIPE, SIG_IGN);
    log_open("test", NULL, LOG_ERROR);
    memset(&w, 0, sizeof w);
    snprintf(w.dir, sizeof w.dir, "/tmp/tisim-test-tikv-kv-XXXXXX");
    if (!mkdtemp(w.dir) || !(w.base = event_base_new()))
        return -1;
    if (kv_engine_open(w.base, w.dir, NULL, &w.engine, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    struct tikv_kv_opts o = {.engine = w.engine};
    w.kv = tikv_kv_new(w.base, &o, "127.0.0.1", 0, NULL, err, sizeof err);
    if (!w.kv) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    w.client = rpc_client_new(w.base, "127.0.0.1", tikv_kv_port(w.kv), NULL, 5000);
    *state = &w;
    return w.client ? 0 : -1;
}

static int teardown(void **state)
{
    struct world *w = *state;
    rpc_client_free(w->client);
    tikv_kv_free(w->kv);
    kv_engine_close(w->engine);
    event_base_free(w->base);
    tu_rm_rf(w->dir);
    return 0;
}

static void on_answer(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct answer *a = arg;
    a->done = true;
    if (!resp) {
        a->status = RPC_INTERNAL;
        snprintf(a->msg, sizeof a->msg, "transport: %s", err);
        return;
    }
    a->status = resp->status;
    rpc_frame_message(resp, a->msg, sizeof a->msg);
    a->nfields = resp->nfields;
    if (resp->nfields > 0)
        snprintf(a->field0, sizeof a->field0, "%.*s", (int)resp->fields[0].len,
                 (const char *)resp->fields[0].data);
}

/* call(w, method, "arg", ..., NULL): one call, run to its answer. */
static struct answer call(struct world *w, const char *method, ...)
{
    struct rpc_buf args[8];
    size_t n = 0;
    va_list ap;
    va_start(ap, method);
    for (const char *a; n < 8 && (a = va_arg(ap, const char *)) != NULL;)
        args[n++] = (struct rpc_buf){a, strlen(a)};
    va_end(ap);
    struct answer ans = {0};
    char err[256];
    assert_int_equal(rpc_client_call(w->client, method, args, n, 5000, on_answer, &ans, err,
                                     sizeof err),
                     0);
    while (!ans.done)
        event_base_loop(w->base, EVLOOP_ONCE);
    return ans;
}

static void test_good_calls(void **state)
{
    struct world *w = *state;
    struct answer a = call(w, "raw_put", "k1", "v1", NULL);
    assert_int_equal(a.status, RPC_OK);
    a = call(w, "raw_batch_put", "k2", "v2", "k3", "v3", NULL);
    assert_int_equal(a.status, RPC_OK);
    a = call(w, "raw_get", "k2", NULL);
    assert_int_equal(a.status, RPC_OK);
    assert_string_equal(a.field0, "v2");
    a = call(w, "raw_scan", "k1", "", "2", NULL);
    assert_int_equal(a.status, RPC_OK);
    assert_int_equal(a.nfields, 4); /* k1 v1 k2 v2: the limit holds */
    assert_string_equal(a.field0, "k1");
    a = call(w, "raw_delete", "k1", NULL);
    assert_int_equal(a.status, RPC_OK);
    a = call(w, "raw_get", "k1", NULL);
    assert_int_equal(a.status, RPC_NOT_FOUND);
    assert_string_equal(a.msg, "key not found");
    /* a batch delete takes both keys (and a missing one) and leaves the others */
    a = call(w, "raw_batch_put", "d1", "x", "d2", "y", "d3", "z", NULL);
    assert_int_equal(a.status, RPC_OK);
    a = call(w, "raw_batch_delete", "d1", "d3", "no-such-key", NULL);
    assert_int_equal(a.status, RPC_OK);
    a = call(w, "raw_scan", "d", "e", "10", NULL);
    assert_int_equal(a.status, RPC_OK);
    assert_int_equal(a.nfields, 2);
    assert_string_equal(a.field0, "d2");
    a = call(w, "status", NULL);
    assert_int_equal(a.status, RPC_OK);
}

static void test_malformed_requests(void **state)
{
    struct world *w = *state;
    struct answer a = call(w, "raw_get", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_string_equal(a.msg, "raw_get takes 1 argument, got 0");
    a = call(w, "raw_put", "", "v", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_string_equal(a.msg, "a key must not be empty");
    a = call(w, "raw_batch_put", "k", "v", "odd", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_string_equal(a.msg, "raw_batch_put takes key, value pairs");
    a = call(w, "raw_batch_put", "k", "v", "", "v2", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_string_equal(a.msg, "a key must not be empty");
    a = call(w, "raw_batch_delete", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_string_equal(a.msg, "raw_batch_delete takes keys");
    a = call(w, "raw_batch_delete", "k", "", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_string_equal(a.msg, "a key must not be empty");
    static const char *const bad_limits[] = {"0", "abc", "10001", "-1", ""};
    for (size_t i = 0; i < sizeof bad_limits / sizeof bad_limits[0]; i++) {
        a = call(w, "raw_scan", "a", "z", bad_limits[i], NULL);
        assert_int_equal(a.status, RPC_BAD_REQUEST);
        assert_string_equal(a.msg, "the scan limit must be a number from 1 to 10000");
    }
    a = call(w, "raw_scan", "a", "z", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_string_equal(a.msg, "raw_scan takes start, end, limit");
    a = call(w, "raw_frobnicate", "k", NULL);
    assert_int_equal(a.status, RPC_BAD_REQUEST);
    assert_contains(a.msg, "unknown method 'raw_frobnicate'");
    /* a batch that was refused wrote nothing, and the service still serves */
    a = call(w, "raw_get", "k", NULL);
    assert_int_equal(a.status, RPC_NOT_FOUND);
    a = call(w, "raw_put", "k", "v", NULL);
    assert_int_equal(a.status, RPC_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_good_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
