/* Unit tests for rio (tikv/rio.h): the raft message codec (round trip of every type libraft
 * 0.15 sends, truncation at every byte, bad types and flags, huge counts refused before any
 * allocation, an AppendEntries cut to what fits), the peer check, and three struct raft in one
 * process and one event loop, each on its own rio, rstore directory and rpc_server with mutual
 * TLS: bootstrap, election, 50 entries applied in order everywhere, the leader closed and a new
 * leader in a higher term applying 20 more, the closed store restarted from its directory
 * catching up to all 70; and a store configured with the TLS guide's verbatim allow-list
 * refusing its peers, plainly in the logs, while the other two still elect and replicate.
 *
 * The loop runs until a condition holds, with a generous guard against hangs (WAIT_MS), never
 * a timed assertion. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <raft.h>

#include "certgen.h"
#include "log.h"
#include "rio.h"
#include "rpc.h"
#include "rstore.h"
#include "testutil.h"
#include "tls.h"

#define WAIT_MS 60000
#define N 3
#define MAX_VALUES 128
/* Where a count follows the fixed fields (rio.c layout: 28-byte header, the 15-byte address
 * of test_env, 4 u64s) in AppendEntries (n_entries) and InstallSnapshot (n_servers). */
#define ENV_OFFSET_FOR_TEST (28 + 15 + 32)

static char g_dir[64];

/* ---- helpers ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static void run_until(struct event_base *base, bool (*cond)(void *), void *arg)
{
    double t0 = now_ms();
    while (!cond(arg) && now_ms() - t0 < WAIT_MS)
        event_base_loop(base, EVLOOP_ONCE);
}

/* ---- codec ---- */

static struct rio_env test_env(void)
{
    struct rio_env e = {.region_id = 1, .from_id = 7, .to_id = 9};
    snprintf(e.from_addr, sizeof e.from_addr, "127.0.0.1:20161");
    return e;
}

static struct raft_entry g_entries[3];
static char g_payloads[3][8] = {"one", "", "three"};

static struct raft_message sample(unsigned type)
{
    struct raft_message m = {.type = (unsigned short)type, .server_id = 9,
                             .server_address = "127.0.0.1:20162"};
    switch (type) {
    case RAFT_IO_REQUEST_VOTE:
        m.request_vote = (struct raft_request_vote){5, 7, 100, 4, true, true};
        break;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        m.request_vote_result = (struct raft_request_vote_result){5, true, raft_tribool_false};
        break;
    case RAFT_IO_APPEND_ENTRIES:
        for (unsigned i = 0; i < 3; i++)
            g_entries[i] = (struct raft_entry){.term = 3 + i, .type = RAFT_COMMAND + i,
                                               .buf = {g_payloads[i], strlen(g_payloads[i])}};
        m.append_entries = (struct raft_append_entries){6, 10, 2, 9, g_entries, 3};
        break;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        m.append_entries_result = (struct raft_append_entries_result){6, 11, 12};
        break;
    case RAFT_IO_TIMEOUT_NOW:
        m.timeout_now = (struct raft_timeout_now){8, 30, 7};
        break;
    default: /* install snapshot, conf filled by the caller */
        m.install_snapshot.term = 4;
        m.install_snapshot.last_index = 77;
        m.install_snapshot.last_term = 3;
        m.install_snapshot.conf_index = 70;
        m.install_snapshot.data = (struct raft_buffer){"snapshot-bytes", 14};
        break;
    }
    return m;
}

static void encode(const struct raft_message *m, uint8_t **buf, size_t *len)
{
    struct rio_env env = test_env();
    char err[256];
    unsigned k;
    int rv = rio_msg_encode(&env, m, RPC_MAX_BODY, buf, len, &k, err, sizeof err);
    if (rv != 0)
        print_error("%s\n", err);
    assert_int_equal(rv, 0);
}

static void check_same(const struct raft_message *a, const struct raft_message *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case RAFT_IO_APPEND_ENTRIES: {
        const struct raft_append_entries *x = &a->append_entries, *y = &b->append_entries;
        assert_int_equal(x->term, y->term);
        assert_int_equal(x->prev_log_index, y->prev_log_index);
        assert_int_equal(x->prev_log_term, y->prev_log_term);
        assert_int_equal(x->leader_commit, y->leader_commit);
        assert_int_equal(x->n_entries, y->n_entries);
        for (unsigned i = 0; i < x->n_entries; i++) {
            assert_int_equal(x->entries[i].term, y->entries[i].term);
            assert_int_equal(x->entries[i].type, y->entries[i].type);
            assert_int_equal(x->entries[i].buf.len, y->entries[i].buf.len);
            assert_memory_equal(x->entries[i].buf.base, y->entries[i].buf.base,
                                x->entries[i].buf.len);
            assert_ptr_equal(y->entries[i].batch, y->entries[0].batch); /* one batch */
        }
        break;
    }
    case RAFT_IO_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *x = &a->install_snapshot, *y = &b->install_snapshot;
        assert_int_equal(x->term, y->term);
        assert_int_equal(x->last_index, y->last_index);
        assert_int_equal(x->last_term, y->last_term);
        assert_int_equal(x->conf_index, y->conf_index);
        assert_int_equal(x->conf.n, y->conf.n);
        for (unsigned i = 0; i < x->conf.n; i++) {
            assert_int_equal(x->conf.servers[i].id, y->conf.servers[i].id);
            assert_int_equal(x->conf.servers[i].role, y->conf.servers[i].role);
            assert_string_equal(x->conf.servers[i].address, y->conf.servers[i].address);
        }
        assert_int_equal(x->data.len, y->data.len);
        assert_memory_equal(x->data.base, y->data.base, x->data.len);
        break;
    }
    case RAFT_IO_REQUEST_VOTE:
        assert_memory_equal(&a->request_vote, &b->request_vote, sizeof a->request_vote);
        break;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        assert_int_equal(a->request_vote_result.term, b->request_vote_result.term);
        assert_int_equal(a->request_vote_result.vote_granted, b->request_vote_result.vote_granted);
        assert_int_equal(a->request_vote_result.pre_vote, b->request_vote_result.pre_vote);
        break;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        assert_memory_equal(&a->append_entries_result, &b->append_entries_result,
                            sizeof a->append_entries_result);
        break;
    default:
        assert_memory_equal(&a->timeout_now, &b->timeout_now, sizeof a->timeout_now);
        break;
    }
}

static void with_conf(struct raft_message *m)
{
    raft_configuration_init(&m->install_snapshot.conf);
    assert_int_equal(raft_configuration_add(&m->install_snapshot.conf, 1, "127.0.0.1:1", RAFT_VOTER), 0);
    assert_int_equal(raft_configuration_add(&m->install_snapshot.conf, 2, "[::1]:2", RAFT_STANDBY), 0);
}

static void test_codec_round_trip(void **state)
{
    (void)state;
    for (unsigned t = RAFT_IO_APPEND_ENTRIES; t <= RAFT_IO_TIMEOUT_NOW; t++) {
        struct raft_message m = sample(t), d;
        if (t == RAFT_IO_INSTALL_SNAPSHOT)
            with_conf(&m);
        uint8_t *buf;
        size_t len;
        struct rio_env env;
        char err[256];
        encode(&m, &buf, &len);
        assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), 0);
        assert_int_equal(env.region_id, 1);
        assert_int_equal(d.server_id, 7);
        assert_int_equal(env.to_id, 9);
        assert_string_equal(d.server_address, "127.0.0.1:20161");
        check_same(&m, &d);
        rio_msg_discard(&d);
        free(buf);
        if (t == RAFT_IO_INSTALL_SNAPSHOT)
            raft_configuration_close(&m.install_snapshot.conf);
    }
}

static void test_codec_empty_append_entries(void **state)
{
    (void)state;
    struct raft_message m = sample(RAFT_IO_APPEND_ENTRIES), d;
    m.append_entries.n_entries = 0; /* a heartbeat */
    uint8_t *buf;
    size_t len;
    struct rio_env env;
    char err[256];
    encode(&m, &buf, &len);
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), 0);
    assert_int_equal(d.append_entries.n_entries, 0);
    assert_null(d.append_entries.entries);
    assert_int_equal(d.append_entries.leader_commit, 9);
    free(buf);
}

static void test_codec_truncated_at_every_byte(void **state)
{
    (void)state;
    for (unsigned t = RAFT_IO_APPEND_ENTRIES; t <= RAFT_IO_TIMEOUT_NOW; t++) {
        struct raft_message m = sample(t), d;
        if (t == RAFT_IO_INSTALL_SNAPSHOT)
            with_conf(&m);
        uint8_t *buf;
        size_t len;
        struct rio_env env;
        char err[256];
        encode(&m, &buf, &len);
        for (size_t cut = 0; cut < len; cut++) {
            uint8_t *part = malloc(cut + 1); /* exactly cut bytes readable for ASan */
            memcpy(part, buf, cut);
            if (rio_msg_decode(part, cut, &env, &d, err, sizeof err) == 0) {
                print_error("type %u cut at %zu of %zu decoded\n", t, cut, len);
                fail();
            }
            assert_contains(err, "malformed raft message");
            free(part);
        }
        /* one byte too many is refused as well */
        uint8_t *more = malloc(len + 1);
        memcpy(more, buf, len);
        more[len] = 0;
        assert_int_equal(rio_msg_decode(more, len + 1, &env, &d, err, sizeof err), -1);
        free(more);
        free(buf);
        if (t == RAFT_IO_INSTALL_SNAPSHOT)
            raft_configuration_close(&m.install_snapshot.conf);
    }
}

static void test_codec_bad_type_and_flags(void **state)
{
    (void)state;
    struct raft_message m = sample(RAFT_IO_REQUEST_VOTE), d;
    uint8_t *buf;
    size_t len;
    struct rio_env env;
    char err[256];
    encode(&m, &buf, &len);
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), 0); /* good case */
    buf[1] = 0;
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    assert_contains(err, "type 0");
    buf[1] = 7;
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    assert_contains(err, "type 7");
    buf[1] = RAFT_IO_REQUEST_VOTE;
    buf[0] = 2; /* an unknown format */
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    buf[0] = 1;
    buf[len - 1] = 2; /* pre_vote is a flag: 0 or 1 */
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    free(buf);

    m = sample(RAFT_IO_APPEND_ENTRIES);
    g_entries[1].type = 9; /* no such entry type */
    struct rio_env e = test_env();
    unsigned k;
    assert_int_equal(rio_msg_encode(&e, &m, RPC_MAX_BODY, &buf, &len, &k, err, sizeof err), 0);
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    free(buf);
}

/* Counts raft_malloc calls, to show a refused count allocates nothing. */
static unsigned g_allocs;

static void *count_malloc(void *data, size_t size)
{
    (void)data;
    g_allocs++;
    return malloc(size);
}

static void count_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static void *count_calloc(void *data, size_t nmemb, size_t size)
{
    (void)data;
    g_allocs++;
    return calloc(nmemb, size);
}

static void *count_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    g_allocs++;
    return realloc(ptr, size);
}

static void test_codec_huge_counts_refused_without_allocation(void **state)
{
    (void)state;
    struct raft_heap heap = {.malloc = count_malloc, .free = count_free, .calloc = count_calloc,
                             .realloc = count_realloc};
    struct raft_message m = sample(RAFT_IO_APPEND_ENTRIES), d;
    uint8_t *buf;
    size_t len;
    struct rio_env env;
    char err[256];
    encode(&m, &buf, &len);
    size_t at = ENV_OFFSET_FOR_TEST;
    raft_heap_set(&heap);
    g_allocs = 0;
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), 0); /* good case */
    assert_true(g_allocs > 0);
    rio_msg_discard(&d);
    memset(buf + at, 0xff, 4); /* n_entries = 4294967295 */
    g_allocs = 0;
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    assert_int_equal(g_allocs, 0);
    memset(buf + at, 0, 4);
    buf[at + 3] = 3;
    memset(buf + at + 4 + 9, 0xff, 4); /* entry 0's length 4 GiB */
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    assert_int_equal(g_allocs, 0);
    free(buf);

    m = sample(RAFT_IO_INSTALL_SNAPSHOT);
    with_conf(&m);
    encode(&m, &buf, &len);
    raft_configuration_close(&m.install_snapshot.conf);
    at = ENV_OFFSET_FOR_TEST;
    memset(buf + at, 0xff, 4); /* n_servers */
    g_allocs = 0;
    assert_int_equal(rio_msg_decode(buf, len, &env, &d, err, sizeof err), -1);
    assert_int_equal(g_allocs, 0);
    raft_heap_set_default();
    free(buf);
}

/* The counting heap must not outlive its test, even a failed one. */
static int default_heap(void **state)
{
    (void)state;
    raft_heap_set_default();
    return 0;
}

static void test_codec_append_entries_cut_to_fit(void **state)
{
    (void)state;
    struct raft_message m = sample(RAFT_IO_APPEND_ENTRIES), d;
    struct rio_env env = test_env(), denv;
    uint8_t *buf;
    size_t len, full;
    unsigned k;
    char err[256];
    assert_int_equal(rio_msg_encode(&env, &m, RPC_MAX_BODY, &buf, &full, &k, err, sizeof err), 0);
    assert_int_equal(k, 3);
    free(buf);
    /* room for the first two entries only (the third has 5 payload bytes) */
    assert_int_equal(rio_msg_encode(&env, &m, full - 1, &buf, &len, &k, err, sizeof err), 0);
    assert_int_equal(k, 2);
    assert_int_equal(rio_msg_decode(buf, len, &denv, &d, err, sizeof err), 0);
    assert_int_equal(d.append_entries.n_entries, 2);
    assert_int_equal(d.append_entries.prev_log_index, 10);
    rio_msg_discard(&d);
    free(buf);
    /* not even one entry fits: refused, never an empty AppendEntries in its place */
    assert_int_equal(rio_msg_encode(&env, &m, 60, &buf, &len, &k, err, sizeof err), -1);
    assert_contains(err, "limit");
}

/* rio's own messages for a chunked InstallSnapshot: round trip, every cut and one byte too
 * many refused, a chunk past its total refused, and raft's decoder refusing both types. */
static void test_codec_snapshot_chunk_and_done(void **state)
{
    (void)state;
    struct rio_env env = test_env(), denv;
    char err[256];
    uint8_t *buf;
    size_t len;
    const uint8_t data[] = "part of a snapshot";
    struct rio_chunk c = {.xfer = 5, .off = 100, .total = 300, .data = data, .len = 18}, dc;
    assert_int_equal(rio_chunk_encode(&env, &c, &buf, &len, err, sizeof err), 0);
    assert_int_equal(rio_msg_type(buf, len), RIO_MSG_CHUNK);
    assert_int_equal(rio_chunk_decode(buf, len, &denv, &dc, err, sizeof err), 0);
    assert_int_equal(denv.from_id, 7);
    assert_int_equal(denv.to_id, 9);
    assert_int_equal(dc.xfer, 5);
    assert_int_equal(dc.off, 100);
    assert_int_equal(dc.total, 300);
    assert_int_equal(dc.len, 18);
    assert_memory_equal(dc.data, data, 18);
    struct raft_message rm;
    assert_int_equal(rio_msg_decode(buf, len, &denv, &rm, err, sizeof err), -1);
    assert_contains(err, "type 100");
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(rio_chunk_decode(buf, cut, &denv, &dc, err, sizeof err), -1);
    assert_contains(err, "malformed snapshot chunk");
    free(buf);
    c.off = 290; /* 18 bytes from 290 run past 300 */
    assert_int_equal(rio_chunk_encode(&env, &c, &buf, &len, err, sizeof err), 0);
    assert_int_equal(rio_chunk_decode(buf, len, &denv, &dc, err, sizeof err), -1);
    free(buf);

    struct raft_message m = sample(RAFT_IO_INSTALL_SNAPSHOT), d;
    with_conf(&m);
    m.install_snapshot.data.len = 123456789; /* sent as chunks: only its length goes */
    uint64_t xfer, total;
    assert_int_equal(rio_done_encode(&env, &m, 42, &buf, &len, err, sizeof err), 0);
    assert_int_equal(rio_msg_type(buf, len), RIO_MSG_DONE);
    assert_true(len < 200);
    assert_int_equal(rio_done_decode(buf, len, &denv, &d, &xfer, &total, err, sizeof err), 0);
    assert_int_equal(xfer, 42);
    assert_int_equal(total, 123456789);
    assert_int_equal(d.type, RAFT_IO_INSTALL_SNAPSHOT);
    assert_int_equal(d.server_id, 7);
    assert_int_equal(d.install_snapshot.term, 4);
    assert_int_equal(d.install_snapshot.last_index, 77);
    assert_int_equal(d.install_snapshot.last_term, 3);
    assert_int_equal(d.install_snapshot.conf_index, 70);
    assert_int_equal(d.install_snapshot.conf.n, 2);
    assert_string_equal(d.install_snapshot.conf.servers[1].address, "[::1]:2");
    assert_null(d.install_snapshot.data.base);
    rio_msg_discard(&d);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(rio_done_decode(buf, cut, &denv, &d, &xfer, &total, err, sizeof err),
                         -1);
    uint8_t *more = malloc(len + 1);
    memcpy(more, buf, len);
    more[len] = 0;
    assert_int_equal(rio_done_decode(more, len + 1, &denv, &d, &xfer, &total, err, sizeof err),
                     -1);
    assert_contains(err, "malformed snapshot done");
    free(more);
    free(buf);
    raft_configuration_close(&m.install_snapshot.conf);
}

/* ---- peer check ---- */

static char *g_seed_list[] = {"TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1"};

static void test_peer_check(void **state)
{
    (void)state;
    struct rio_policy p = {0};
    struct conn_peer peer = {.addr = "127.0.0.1:5000", .tls = true, .cn = "TiKV-Server"};
    char msg[512];
    assert_int_equal(rio_check_peer(&p, &peer, msg, sizeof msg), RPC_OK);
    snprintf(peer.cn, sizeof peer.cn, "Control-Client");
    assert_int_equal(rio_check_peer(&p, &peer, msg, sizeof msg), RPC_UNAUTHENTICATED);
    assert_contains(msg, "not CN \"Control-Client\"");
    p.own_cn = "Control-Client"; /* the store's own cert CN */
    assert_int_equal(rio_check_peer(&p, &peer, msg, sizeof msg), RPC_OK);

    struct rio_policy seed = {.allowed_cn = g_seed_list, .n_allowed_cn = 4};
    snprintf(peer.cn, sizeof peer.cn, "TiKV-Server");
    assert_int_equal(rio_check_peer(&seed, &peer, msg, sizeof msg), RPC_UNAUTHENTICATED);
    assert_string_equal(msg, "Common name check fail, reason: x509_common_name from peer is "
                             "TiKV-Server, cert_allowed_cn: {\"TiDB-Server\", \"PD-Server\", "
                             "\"TiKV-Control\", \"RawKvClient1\"}");
    char *fixed[] = {"TiDB-Server", "TiKV-Server"};
    struct rio_policy ok = {.allowed_cn = fixed, .n_allowed_cn = 2};
    assert_int_equal(rio_check_peer(&ok, &peer, msg, sizeof msg), RPC_OK);
}

/* ---- three stores ---- */

struct tiny {
    uint64_t values[MAX_VALUES];
    unsigned n;
    size_t ballast;     /* bytes a snapshot carries besides the values (checked on restore) */
    unsigned restores;  /* snapshots restored: at load or installed from the leader */
};

struct node {
    unsigned id;
    char dir[128];
    char addr[64];
    struct rpc_server *srv;
    struct rio *rio;
    struct raft raft;
    struct raft_fsm fsm;
    struct tiny tiny;
    struct rio_policy pol;
    bool running;
    bool closed;
};

struct cluster {
    struct event_base *base;
    struct tls_ctx *srv_tls, *cli_tls;
    struct node nodes[N];
    unsigned threshold, trailing; /* raft's snapshot settings; 0: no snapshots */
    size_t ballast;
    unsigned election_ms; /* 0: 600 */
};

enum { BOOT_NO = 0, BOOT_YES = 1, BOOT_SKIP = 2 }; /* start_node: bootstrap, or not even try */

static int tiny_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct tiny *t = fsm->data;
    uint64_t v;
    if (buf->len != sizeof v || t->n >= MAX_VALUES)
        return RAFT_MALFORMED;
    memcpy(&v, buf->base, sizeof v);
    t->values[t->n++] = v;
    *result = NULL;
    return 0;
}

static uint8_t ballast_byte(size_t i, unsigned n)
{
    return (uint8_t)(i * 131u + n);
}

/* u32 n | the n values | ballast bytes that depend on n */
static int tiny_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    struct tiny *t = fsm->data;
    size_t len = 4 + t->n * sizeof(uint64_t) + t->ballast;
    struct raft_buffer *b = raft_malloc(sizeof *b);
    uint8_t *p = raft_malloc(len);
    if (!b || !p) {
        raft_free(b);
        raft_free(p);
        return RAFT_NOMEM;
    }
    memcpy(p, &t->n, 4);
    memcpy(p + 4, t->values, t->n * sizeof(uint64_t));
    for (size_t i = 0; i < t->ballast; i++)
        p[4 + t->n * sizeof(uint64_t) + i] = ballast_byte(i, t->n);
    *b = (struct raft_buffer){p, len};
    *bufs = b;
    *n = 1;
    return 0;
}

static int tiny_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct tiny *t = fsm->data;
    const uint8_t *p = buf->base;
    unsigned n;
    if (buf->len < 4)
        return RAFT_MALFORMED;
    memcpy(&n, p, 4);
    if (n > MAX_VALUES || buf->len != 4 + n * sizeof(uint64_t) + t->ballast)
        return RAFT_MALFORMED;
    for (size_t i = 0; i < t->ballast; i++)
        if (p[4 + n * sizeof(uint64_t) + i] != ballast_byte(i, n))
            return RAFT_MALFORMED;
    memcpy(t->values, p + 4, n * sizeof(uint64_t));
    t->n = n;
    t->restores++;
    raft_free(buf->base);
    return 0;
}

static void node_handler(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct node *n = arg;
    if (n->rio && n->running)
        rio_rpc_handler(call, req, n->rio);
    else
        rpc_reply(call, RPC_NOT_FOUND, "raft is not running here", NULL, 0);
}

static enum rpc_status node_hook(const struct conn_peer *peer, const struct rpc_frame *req,
                                 void *arg, char *msg, size_t msglen)
{
    struct node *n = arg;
    if (strcmp(req->method, RIO_METHOD) != 0)
        return RPC_OK;
    return rio_check_peer(&n->pol, peer, msg, msglen);
}

static struct tls_ctx *mkctx(enum tls_side side)
{
    char ca[128], c[128], k[128], err[512];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_dir);
    snprintf(c, sizeof c, "%s/tikv-server.pem", g_dir);
    snprintf(k, sizeof k, "%s/tikv-server-key.pem", g_dir);
    struct tls_opts o = {.role = "tikv", .ca_path = ca, .cert_path = c, .key_path = k,
                         .cn_check = TLS_CN_SERVICE};
    struct tls_ctx *ctx = tls_ctx_new(side, &o, err, sizeof err);
    if (!ctx)
        print_error("tls_ctx_new: %s\n", err);
    assert_non_null(ctx);
    return ctx;
}

static void listen_node(struct cluster *c, struct node *n)
{
    char err[256];
    struct rpc_method m = {.name = RIO_METHOD, .fn = node_handler, .arg = n};
    struct rpc_server_opts o = {.methods = &m, .n_methods = 1, .hook = node_hook, .hook_arg = n};
    n->srv = rpc_server_new(c->base, &o);
    assert_non_null(n->srv);
    assert_int_equal(rpc_server_listen(n->srv, "127.0.0.1", 0, c->srv_tls, err, sizeof err), 0);
    snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", rpc_server_port(n->srv));
}

/* Opens the node's rstore and rio and starts its raft (bootstrapping when asked: BOOT_YES
 * expects it to work, BOOT_NO to be refused, BOOT_SKIP does not try). */
static void start_node(struct cluster *c, struct node *n, int bootstrap)
{
    char err[256];
    struct rstore *s = rstore_open(n->dir, NULL, err, sizeof err);
    if (!s)
        print_error("rstore_open: %s\n", err);
    assert_non_null(s);
    struct rio_opts o = {.base = c->base, .client_tls = c->cli_tls, .region_id = 1,
                         .seed = n->id * 7919u};
    n->rio = rio_new(&o, s, err, sizeof err);
    assert_non_null(n->rio);
    memset(&n->tiny, 0, sizeof n->tiny);
    n->tiny.ballast = c->ballast;
    n->fsm = (struct raft_fsm){.version = 1, .data = &n->tiny, .apply = tiny_apply,
                               .snapshot = tiny_snapshot, .restore = tiny_restore};
    assert_int_equal(raft_init(&n->raft, rio_raft_io(n->rio), &n->fsm, n->id, n->addr), 0);
    raft_set_election_timeout(&n->raft, c->election_ms ? c->election_ms : 600);
    raft_set_heartbeat_timeout(&n->raft, (c->election_ms ? c->election_ms : 600) / 10);
    raft_set_pre_vote(&n->raft, true);
    raft_set_snapshot_threshold(&n->raft, c->threshold ? c->threshold : 1u << 30);
    if (c->trailing)
        raft_set_snapshot_trailing(&n->raft, c->trailing);
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(raft_configuration_add(&conf, c->nodes[i].id, c->nodes[i].addr,
                                                RAFT_VOTER), 0);
    if (bootstrap != BOOT_SKIP) {
        int rv = raft_bootstrap(&n->raft, &conf);
        assert_int_equal(rv, bootstrap == BOOT_YES ? 0 : RAFT_CANTBOOTSTRAP);
    }
    raft_configuration_close(&conf);
    assert_int_equal(raft_start(&n->raft), 0);
    n->running = true;
    n->closed = false;
}

static void on_closed(struct raft *r)
{
    struct node *n = r->data;
    n->closed = true;
}

static bool node_closed(void *arg)
{
    return ((struct node *)arg)->closed;
}

static void stop_node(struct cluster *c, struct node *n)
{
    if (!n->running)
        return;
    n->running = false;
    n->raft.data = n;
    raft_close(&n->raft, on_closed);
    run_until(c->base, node_closed, n);
    assert_true(n->closed);
    rio_free(n->rio);
    n->rio = NULL;
}

static void cluster_up(struct cluster *c)
{
    memset(c, 0, sizeof *c);
    c->base = event_base_new();
    c->srv_tls = mkctx(TLS_SERVER);
    c->cli_tls = mkctx(TLS_CLIENT);
    for (unsigned i = 0; i < N; i++) {
        struct node *n = &c->nodes[i];
        n->id = i + 1;
        snprintf(n->dir, sizeof n->dir, "%s/store%u", g_dir, n->id);
        tu_rm_rf(n->dir);
        listen_node(c, n);
    }
}

static void cluster_down(struct cluster *c)
{
    for (unsigned i = 0; i < N; i++)
        stop_node(c, &c->nodes[i]);
    for (unsigned i = 0; i < N; i++)
        rpc_server_free(c->nodes[i].srv);
    tls_ctx_free(c->cli_tls);
    tls_ctx_free(c->srv_tls);
    event_base_free(c->base);
}

struct leader_wait {
    struct cluster *c;
    raft_term above;
    unsigned skip; /* 0, or the id of a node that cannot lead */
    struct node *leader;
};

static bool has_leader(void *arg)
{
    struct leader_wait *w = arg;
    w->leader = NULL;
    for (unsigned i = 0; i < N; i++) {
        struct node *n = &w->c->nodes[i];
        if (n->running && n->id != w->skip && raft_state(&n->raft) == RAFT_LEADER &&
            n->raft.current_term > w->above)
            w->leader = n;
    }
    return w->leader != NULL;
}

static struct node *wait_leader(struct cluster *c, raft_term above, unsigned skip)
{
    struct leader_wait w = {.c = c, .above = above, .skip = skip};
    run_until(c->base, has_leader, &w);
    if (!w.leader)
        print_error("no leader elected above term %llu\n", (unsigned long long)above);
    assert_non_null(w.leader);
    return w.leader;
}

struct prop {
    struct raft_apply req;
    bool done;
    int status;
};

static struct prop g_props[MAX_VALUES];

static void on_applied(struct raft_apply *req, int status, void *result)
{
    struct prop *p = req->data;
    (void)result;
    p->status = status;
    p->done = true;
}

struct props_wait {
    unsigned from, to;
};

static bool props_done(void *arg)
{
    struct props_wait *w = arg;
    for (unsigned v = w->from; v <= w->to; v++)
        if (!g_props[v].done)
            return false;
    return true;
}

/* Proposes values from..to on the leader and waits for every one to be applied there. */
static void propose(struct cluster *c, struct node *leader, unsigned from, unsigned to)
{
    for (unsigned v = from; v <= to; v++) {
        struct raft_buffer buf = {.base = raft_malloc(sizeof(uint64_t)), .len = sizeof(uint64_t)};
        uint64_t val = v;
        memcpy(buf.base, &val, sizeof val);
        g_props[v] = (struct prop){.req = {.data = &g_props[v]}};
        assert_int_equal(raft_apply(&leader->raft, &g_props[v].req, &buf, 1, on_applied), 0);
    }
    struct props_wait w = {from, to};
    run_until(c->base, props_done, &w);
    for (unsigned v = from; v <= to; v++) {
        assert_true(g_props[v].done);
        assert_int_equal(g_props[v].status, 0);
    }
}

struct applied_wait {
    struct node *nodes[N];
    unsigned n_nodes;
    unsigned count;
};

static bool all_applied(void *arg)
{
    struct applied_wait *w = arg;
    for (unsigned i = 0; i < w->n_nodes; i++)
        if (w->nodes[i]->tiny.n < w->count)
            return false;
    return true;
}

/* Waits until each node applied count values, then checks they are 1..count in order. */
static void expect_applied(struct cluster *c, struct applied_wait *w)
{
    run_until(c->base, all_applied, w);
    for (unsigned i = 0; i < w->n_nodes; i++) {
        struct tiny *t = &w->nodes[i]->tiny;
        if (t->n != w->count)
            print_error("store %u applied %u values, not %u\n", w->nodes[i]->id, t->n, w->count);
        assert_int_equal(t->n, w->count);
        for (unsigned v = 1; v <= w->count; v++)
            assert_int_equal(t->values[v - 1], v);
    }
}

/* The commands in the store's Raft log on disk, read with rstore: values 1..count in order. */
static void expect_on_disk(const struct node *n, unsigned count)
{
    char err[256];
    struct rstore *s = rstore_open(n->dir, NULL, err, sizeof err);
    assert_non_null(s);
    uint64_t term, vote, start;
    struct raft_entry *entries;
    size_t ne;
    assert_int_equal(rstore_load(s, &term, &vote, &start, &entries, &ne, err, sizeof err), 0);
    assert_int_equal(start, 1);
    assert_int_equal(entries[0].type, RAFT_CHANGE); /* the bootstrap configuration */
    unsigned seen = 0;
    for (size_t i = 0; i < ne; i++) {
        uint64_t v;
        if (entries[i].type != RAFT_COMMAND)
            continue;
        memcpy(&v, entries[i].buf.base, sizeof v);
        assert_int_equal(v, ++seen);
    }
    assert_int_equal(seen, count);
    assert_true(term >= 2);
    raft_free(entries[0].batch);
    raft_free(entries);
    rstore_close(s);
}

static bool links_up(void *arg)
{
    struct rio_link_info links[N];
    size_t nl = rio_links(arg, links, N);
    for (size_t i = 0; i < nl; i++)
        if (links[i].link != RIO_LINK_UP)
            return false;
    return nl > 0;
}

static void test_three_stores_replicate_fail_over_and_catch_up(void **state)
{
    (void)state;
    struct cluster c;
    cluster_up(&c);
    for (unsigned i = 0; i < N; i++)
        start_node(&c, &c.nodes[i], true);

    struct node *leader = wait_leader(&c, 0, 0);
    propose(&c, leader, 1, 50);
    struct applied_wait all = {{&c.nodes[0], &c.nodes[1], &c.nodes[2]}, N, 50};
    expect_applied(&c, &all);

    raft_term old_term = leader->raft.current_term;
    struct node *gone = leader;
    stop_node(&c, gone);
    leader = wait_leader(&c, old_term, gone->id);
    assert_true(leader->raft.current_term > old_term);
    propose(&c, leader, 51, 70);
    struct applied_wait survivors = {{NULL}, 0, 70};
    for (unsigned i = 0; i < N; i++)
        if (&c.nodes[i] != gone)
            survivors.nodes[survivors.n_nodes++] = &c.nodes[i];
    expect_applied(&c, &survivors);
    assert_int_equal(gone->tiny.n, 50);
    expect_on_disk(gone, 50);

    /* the closed store restarts from its directory (its raft re-applies from 1) */
    start_node(&c, gone, false);
    struct applied_wait back = {{gone}, 1, 70};
    expect_applied(&c, &back);

    /* the leader's links to both followers are up again (the answer to the last message
     * may still be on its way when the entries are applied) */
    run_until(c.base, links_up, leader->rio);
    struct rio_link_info links[N];
    size_t nl = rio_links(leader->rio, links, N);
    assert_int_equal(nl, 2);
    for (size_t i = 0; i < nl; i++)
        assert_string_equal(rio_link_name(links[i].link), "up");
    cluster_down(&c);
}

#define BALLAST (9u << 20) /* over the 8 MiB RPC body limit: snapshots go in chunks */

static struct node *a_follower(struct cluster *c, const struct node *leader)
{
    for (unsigned i = 0; i < N; i++)
        if (c->nodes[i].running && &c->nodes[i] != leader)
            return &c->nodes[i];
    fail_msg("no follower running");
    return NULL;
}

static bool two_snapshots(void *arg)
{
    struct rio_stats st;
    rio_get_stats(arg, &st);
    return st.snapshot_puts >= 2;
}

enum { CHANGE_REMOVE, CHANGE_ADD, CHANGE_VOTER };

struct change_wait {
    struct raft_change req;
    bool done;
    int status;
};

static void on_change(struct raft_change *req, int status)
{
    struct change_wait *w = req->data;
    w->done = true;
    w->status = status;
}

static bool change_done(void *arg)
{
    return ((struct change_wait *)arg)->done;
}

/* A membership change on the leader, waited for. A promotion to voter fails with
 * RAFT_NOCONNECTION when the catch-up round outlasts the election timeout (a 9 MiB snapshot
 * on a slow machine): it is tried again, as the replica does. */
static void change(struct cluster *c, struct node *leader, int what, struct node *n)
{
    struct change_wait w;
    for (int attempt = 0; attempt < 10; attempt++) {
        w = (struct change_wait){.req = {.data = &w}};
        int rv = what == CHANGE_REMOVE ? raft_remove(&leader->raft, &w.req, n->id, on_change)
                 : what == CHANGE_ADD  ? raft_add(&leader->raft, &w.req, n->id, n->addr,
                                                  on_change)
                                       : raft_assign(&leader->raft, &w.req, n->id, RAFT_VOTER,
                                                     on_change);
        assert_int_equal(rv, 0);
        run_until(c->base, change_done, &w);
        assert_true(w.done);
        if (!(what == CHANGE_VOTER && w.status == RAFT_NOCONNECTION))
            break;
    }
    assert_int_equal(w.status, 0);
}

/* The store's Raft log on disk holds a snapshot after index `after` and was compacted. */
static void expect_compacted(const struct node *n, uint64_t after)
{
    char err[256];
    struct rstore *s = rstore_open(n->dir, NULL, err, sizeof err);
    if (!s)
        fail_msg("rstore_open: %s", err);
    assert_true(rstore_snapshot_index(s) > after);
    assert_true(rstore_first_index(s) > 1);
    assert_true(rstore_first_index(s) <= rstore_snapshot_index(s) + 1);
    rstore_close(s);
}

/* Snapshots end to end over real TLS and files: with a threshold of 16 entries the stores take
 * snapshots and compact their logs; a store that was down while 50 entries went by catches up
 * by InstallSnapshot (9 MiB: over the RPC body limit, so in chunks); the leader, closed and
 * reopened, loads its snapshot and the log after it; a store whose directory was wiped
 * catches up by snapshot too. Every store ends with every value in order. */
static void test_snapshots_install_compact_and_restart(void **state)
{
    (void)state;
    struct cluster c;
    cluster_up(&c);
    c.threshold = 16;
    c.trailing = 4;
    c.ballast = BALLAST;
    c.election_ms = 2000; /* three stores share one loop busy with 9 MiB snapshots */
    for (unsigned i = 0; i < N; i++)
        start_node(&c, &c.nodes[i], BOOT_YES);
    struct node *leader = wait_leader(&c, 0, 0);
    propose(&c, leader, 1, 10);
    struct applied_wait all = {{&c.nodes[0], &c.nodes[1], &c.nodes[2]}, N, 10};
    expect_applied(&c, &all);

    struct node *behind = a_follower(&c, leader);
    stop_node(&c, behind);
    for (unsigned v = 11; v <= 60; v += 10) /* commits in steps: a snapshot every 16 */
        propose(&c, leader, v, v + 9);
    run_until(c.base, two_snapshots, leader->rio);
    struct rio_stats st;
    rio_get_stats(leader->rio, &st);
    assert_true(st.snapshot_puts >= 2);
    start_node(&c, behind, BOOT_NO);
    struct applied_wait one = {{behind}, 1, 60};
    expect_applied(&c, &one);
    assert_true(behind->tiny.restores >= 1); /* not by replaying the log */
    rio_get_stats(behind->rio, &st);
    assert_true(st.snapshots_received >= 1);
    assert_true(st.snapshot_chunks_received >= 3); /* 9 MiB in chunks of 4 MiB */
    assert_true(st.snapshot_puts >= 1);
    rio_get_stats(leader->rio, &st);
    assert_true(st.snapshots_sent >= 1);
    assert_true(st.snapshot_chunks_sent >= 3);
    print_message("far-behind store: %llu snapshot(s) received in %llu chunks\n",
                  (unsigned long long)st.snapshots_sent,
                  (unsigned long long)st.snapshot_chunks_sent);

    /* the leader restarts from a compacted directory: snapshot + the log after it */
    raft_term old_term = leader->raft.current_term;
    struct node *gone = leader;
    stop_node(&c, gone);
    expect_compacted(gone, 10);
    leader = wait_leader(&c, old_term, gone->id);
    start_node(&c, gone, BOOT_NO);
    assert_int_equal(gone->tiny.restores, 1); /* at load, before any message */
    assert_true(gone->tiny.n > 10);
    propose(&c, leader, 61, 70);
    all.count = 70;
    expect_applied(&c, &all);

    /* a new store: one member removed while down, its directory wiped, added again as a new
     * member with an empty log (as the replica adds PD's peers) */
    struct node *fresh = a_follower(&c, leader);
    stop_node(&c, fresh);
    tu_rm_rf(fresh->dir);
    change(&c, leader, CHANGE_REMOVE, fresh);
    start_node(&c, fresh, BOOT_SKIP);
    change(&c, leader, CHANGE_ADD, fresh);
    change(&c, leader, CHANGE_VOTER, fresh);
    one.nodes[0] = fresh;
    one.count = 70;
    expect_applied(&c, &one);
    assert_true(fresh->tiny.restores >= 1);
    cluster_down(&c);
}

struct answer_wait {
    bool done;
    int status;
};

static void on_raw_answer(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct answer_wait *w = arg;
    (void)err;
    w->done = true;
    w->status = resp ? (int)resp->status : -1;
}

static bool answered(void *arg)
{
    return ((struct answer_wait *)arg)->done;
}

/* The status a store answers to an encoded raft_message (buf, freed here). */
static int call_node(struct cluster *c, struct node *n, uint8_t *buf, size_t len)
{
    char err[256];
    const char *colon = strrchr(n->addr, ':');
    struct rpc_client *cl = rpc_client_new(c->base, "127.0.0.1", atoi(colon + 1), c->cli_tls,
                                           5000);
    struct rpc_buf arg = {buf, len};
    struct answer_wait w = {false, 0};
    assert_int_equal(rpc_client_call(cl, RIO_METHOD, &arg, 1, 5000, on_raw_answer, &w, err,
                                     sizeof err), 0);
    run_until(c->base, answered, &w);
    rpc_client_free(cl);
    free(buf);
    return w.status;
}

static struct rio_env env_to(const struct node *n)
{
    struct rio_env env = {.region_id = 1, .from_id = 9, .to_id = n->id};
    snprintf(env.from_addr, sizeof env.from_addr, "127.0.0.1:9");
    return env;
}

/* A chunk of transfer xfer, as store 9 would send it. */
static int send_chunk(struct cluster *c, struct node *n, uint64_t xfer, uint64_t off,
                      uint64_t total, size_t len)
{
    struct rio_env env = env_to(n);
    static const uint8_t data[256];
    struct rio_chunk ch = {.xfer = xfer, .off = off, .total = total, .data = data, .len = len};
    uint8_t *buf;
    size_t blen;
    char err[256];
    assert_int_equal(rio_chunk_encode(&env, &ch, &buf, &blen, err, sizeof err), 0);
    return call_node(c, n, buf, blen);
}

static int send_chunk_to(struct cluster *c, struct node *n)
{
    return send_chunk(c, n, 1, 0, 128, 64);
}

/* DONE of transfer xfer, for a snapshot of total bytes at index 500 of term 900. */
static int send_done(struct cluster *c, struct node *n, uint64_t xfer, uint64_t total)
{
    struct rio_env env = env_to(n);
    struct raft_message m = {.type = RAFT_IO_INSTALL_SNAPSHOT};
    m.install_snapshot = (struct raft_install_snapshot){.term = 900, .last_index = 500,
                                                         .last_term = 900, .conf_index = 1};
    raft_configuration_init(&m.install_snapshot.conf);
    m.install_snapshot.data.len = total;
    uint8_t *buf;
    size_t len;
    char err[256];
    assert_int_equal(rio_done_encode(&env, &m, xfer, &buf, &len, err, sizeof err), 0);
    raft_configuration_close(&m.install_snapshot.conf);
    return call_node(c, n, buf, len);
}

static bool restored(void *arg)
{
    return ((struct tiny *)arg)->restores > 0;
}

/* The receiver's rules for chunked snapshots, each beside the good case: chunks in order
 * only; a newer transfer replaces an older one, whose chunks are then refused; DONE only
 * when every byte came; a snapshot over the size limit refused at its first chunk. */
static void test_receiver_refuses_bad_transfers(void **state)
{
    (void)state;
    struct cluster c;
    cluster_up(&c);
    struct node *n = &c.nodes[0];
    start_node(&c, n, BOOT_YES);
    assert_int_equal(send_chunk(&c, n, 1, 0, 200, 100), RPC_OK);
    assert_int_equal(send_chunk(&c, n, 1, 150, 200, 50), RPC_BAD_REQUEST); /* a gap */
    assert_int_equal(send_chunk(&c, n, 1, 100, 200, 100), RPC_BAD_REQUEST); /* dropped */
    assert_int_equal(send_chunk(&c, n, 2, 0, 200, 100), RPC_OK);
    assert_int_equal(send_done(&c, n, 2, 200), RPC_BAD_REQUEST); /* 100 of 200 bytes */
    /* 4 zero bytes: a valid snapshot for tiny (no values), so raft installs it cleanly */
    assert_int_equal(send_chunk(&c, n, 3, 0, 4, 2), RPC_OK);
    assert_int_equal(send_chunk(&c, n, 4, 0, 4, 2), RPC_OK); /* replaces 3 */
    assert_int_equal(send_chunk(&c, n, 3, 2, 4, 2), RPC_BAD_REQUEST);
    assert_int_equal(send_chunk(&c, n, 4, 2, 4, 2), RPC_OK); /* 4 goes on */
    struct rio_stats st;
    rio_get_stats(n->rio, &st);
    assert_int_equal(st.snapshots_received, 0);
    assert_int_equal(send_done(&c, n, 4, 4), RPC_OK); /* whole: handed to raft */
    rio_get_stats(n->rio, &st);
    assert_int_equal(st.snapshots_received, 1);
    /* raft installs it (libraft 0.15 leaks the snapshot's buffer array when closed during an
     * install: wait for it) */
    run_until(c.base, restored, &n->tiny);
    assert_int_equal(n->tiny.restores, 1);
    assert_int_equal(send_chunk(&c, n, 5, 0, RIO_SNAPSHOT_MAX + 1, 10), RPC_TOO_LARGE);
    cluster_down(&c);
}

static void test_verbatim_allow_list_refuses_peers(void **state)
{
    (void)state;
    char logpath[128];
    snprintf(logpath, sizeof logpath, "%s/refusal.log", g_dir);
    assert_int_equal(log_open("test", logpath, LOG_INFO), 0);
    struct cluster c;
    cluster_up(&c);
    struct node *strict = &c.nodes[2];
    strict->pol.allowed_cn = g_seed_list; /* the guide's list: no TiKV-Server */
    strict->pol.n_allowed_cn = 4;
    for (unsigned i = 0; i < N; i++)
        start_node(&c, &c.nodes[i], true);

    struct node *leader = wait_leader(&c, 0, strict->id);
    propose(&c, leader, 1, 10);
    struct applied_wait good = {{&c.nodes[0], &c.nodes[1]}, 2, 10};
    expect_applied(&c, &good);
    assert_int_equal(strict->tiny.n, 0);
    assert_int_not_equal(raft_state(&strict->raft), RAFT_LEADER);

    struct rio_link_info links[N];
    size_t nl = rio_links(leader->rio, links, N);
    bool saw_refused = false, saw_up = false;
    for (size_t i = 0; i < nl; i++) {
        if (links[i].id == strict->id) {
            saw_refused = links[i].link == RIO_LINK_REFUSED;
            assert_contains(links[i].reason, "Common name check fail");
        } else {
            saw_up = links[i].link == RIO_LINK_UP;
        }
    }
    assert_true(saw_refused);
    assert_true(saw_up);
    /* a snapshot chunk travels on the same method: refused alike, taken by a listing store */
    assert_int_equal(send_chunk_to(&c, strict), RPC_UNAUTHENTICATED);
    assert_int_equal(send_chunk_to(&c, leader), RPC_OK);
    cluster_down(&c);
    log_open("test", NULL, LOG_ERROR);

    char *log = tu_read_file(logpath);
    assert_non_null(log);
    assert_contains(log, "refused raft peer 127.0.0.1:");
    assert_contains(log, "CN \"TiKV-Server\" not in cert-allowed-cn");
    char want[256];
    snprintf(want, sizeof want,
             "raft link to store 3 (%s) refused: Common name check fail, reason: "
             "x509_common_name from peer is TiKV-Server, cert_allowed_cn: {\"TiDB-Server\", "
             "\"PD-Server\", \"TiKV-Control\", \"RawKvClient1\"}",
             strict->addr);
    assert_contains(log, want);
    free(log);
}

/* ---- the disk worker ---- */

#define W_APPENDS 40

static struct raft_entry g_w_entries[W_APPENDS + 8];
static char g_w_pay[W_APPENDS + 8][16];
static struct raft_io_append g_w_reqs[W_APPENDS + 8];

struct wtest {
    char dir[96];
    unsigned done, out_of_order, not_on_disk, failed;
    bool check_disk, closed;
};
static struct wtest g_w;

/* The last index on disk, read through a second rstore. Called only while the worker is idle
 * (every append of the first part is queued in one loop turn, so it is one batch). */
static uint64_t on_disk_last(const char *dir)
{
    char err[256];
    struct rstore *s = rstore_open(dir, NULL, err, sizeof err);
    if (!s) {
        print_error("rstore_open: %s\n", err);
        return 0;
    }
    uint64_t last = rstore_last_index(s);
    rstore_close(s);
    return last;
}

static void w_appended(struct raft_io_append *req, int status)
{
    unsigned i = (unsigned)(req - g_w_reqs);
    if (i != g_w.done)
        g_w.out_of_order++;
    if (status != 0)
        g_w.failed++;
    if (g_w.check_disk && on_disk_last(g_w.dir) < i + 1)
        g_w.not_on_disk++;
    g_w.done++;
}

static void w_append(struct raft_io *io, unsigned i, raft_term term, const char *text)
{
    snprintf(g_w_pay[i], sizeof g_w_pay[i], "%s", text);
    g_w_entries[i] = (struct raft_entry){.term = term, .type = RAFT_COMMAND,
                                         .buf = {.base = g_w_pay[i], .len = strlen(g_w_pay[i])}};
    assert_int_equal(io->append(io, &g_w_reqs[i], &g_w_entries[i], 1, w_appended), 0);
}

static bool w_all_done(void *arg)
{
    return g_w.done == *(unsigned *)arg;
}

static void w_closed(struct raft_io *io)
{
    (void)io;
    g_w.closed = true;
}

static bool w_is_closed(void *arg)
{
    (void)arg;
    return g_w.closed;
}

/* Appends report only once on disk, in order, many share one fsync; a truncate queued between
 * appends lands after the earlier ones and before the later ones; close drains first. */
static void test_worker_group_commit_and_order(void **state)
{
    (void)state;
    char err[256];
    g_w = (struct wtest){.check_disk = true};
    snprintf(g_w.dir, sizeof g_w.dir, "%s/worker", g_dir);
    struct event_base *base = event_base_new();
    struct rstore *s = rstore_open(g_w.dir, NULL, err, sizeof err);
    assert_non_null(base);
    assert_non_null(s);
    struct rio_opts o = {.base = base, .region_id = 1, .seed = 7};
    struct rio *rio = rio_new(&o, s, err, sizeof err);
    assert_non_null(rio);
    struct raft_io *io = rio_raft_io(rio);
    assert_int_equal(io->init(io, 1, "127.0.0.1:1"), 0);

    for (unsigned i = 0; i < W_APPENDS; i++)
        w_append(io, i, 1, "first");
    assert_int_equal(g_w.done, 0); /* never inside the call */
    unsigned want = W_APPENDS;
    run_until(base, w_all_done, &want);
    assert_int_equal(g_w.done, W_APPENDS);
    assert_int_equal(g_w.out_of_order, 0);
    assert_int_equal(g_w.failed, 0);
    assert_int_equal(g_w.not_on_disk, 0); /* each callback found its entry on disk */
    struct rio_stats st;
    rio_get_stats(rio, &st);
    assert_int_equal(st.appends, W_APPENDS);
    assert_true(st.syncs >= 1);
    assert_true(st.syncs < st.appends); /* group commit */

    /* 41..45, then truncate at 43, then a new 43 and 44: all in one loop turn */
    g_w.check_disk = false;
    for (unsigned i = W_APPENDS; i < W_APPENDS + 5; i++)
        w_append(io, i, 1, "old");
    assert_int_equal(io->truncate(io, 43), 0);
    w_append(io, W_APPENDS + 5, 2, "new43");
    w_append(io, W_APPENDS + 6, 2, "new44");
    io->close(io, w_closed);
    assert_false(g_w.closed); /* never inside the call */
    run_until(base, w_is_closed, NULL);
    assert_true(g_w.closed);
    assert_int_equal(g_w.done, W_APPENDS + 7); /* close waited for every append */
    assert_int_equal(g_w.out_of_order, 0);
    assert_int_equal(g_w.failed, 0);
    rio_get_stats(rio, &st);
    assert_int_equal(st.truncates, 1);
    rio_free(rio);

    s = rstore_open(g_w.dir, NULL, err, sizeof err);
    assert_non_null(s);
    uint64_t term, vote, start;
    struct raft_entry *entries;
    size_t n;
    assert_int_equal(rstore_load(s, &term, &vote, &start, &entries, &n, err, sizeof err), 0);
    assert_int_equal(start, 1);
    assert_int_equal(n, 44);
    assert_int_equal(entries[41].term, 1);
    assert_memory_equal(entries[41].buf.base, "old", 3);
    assert_int_equal(entries[42].term, 2);
    assert_int_equal(entries[42].buf.len, 5);
    assert_memory_equal(entries[42].buf.base, "new43", 5);
    assert_memory_equal(entries[43].buf.base, "new44", 5);
    raft_free(entries[0].batch);
    raft_free(entries);
    rstore_close(s);
    event_base_free(base);
}

/* The worker's FIFO with a snapshot in it: appends, a snapshot put and more appends submitted
 * in one loop turn complete in that order; the snapshot reads back with a get queued behind
 * it; on disk the log was compacted to index - trailing + 1 and holds the later appends. */
static struct raft_io_snapshot_put g_put_req;
static struct raft_io_snapshot_get g_get_req;
static unsigned g_put_at; /* appends done when the put's callback ran */
static struct raft_snapshot *g_got;

static void w_put_done(struct raft_io_snapshot_put *req, int status)
{
    (void)req;
    assert_int_equal(status, 0);
    g_put_at = g_w.done;
}

static void w_got(struct raft_io_snapshot_get *req, struct raft_snapshot *snap, int status)
{
    (void)req;
    assert_int_equal(status, 0);
    g_got = snap;
}

static bool w_have_snapshot(void *arg)
{
    (void)arg;
    return g_got != NULL;
}

static void test_worker_snapshot_in_order(void **state)
{
    (void)state;
    char err[256];
    g_w = (struct wtest){0};
    g_put_at = 0;
    g_got = NULL;
    snprintf(g_w.dir, sizeof g_w.dir, "%s/worker-snap", g_dir);
    struct event_base *base = event_base_new();
    struct rstore *s = rstore_open(g_w.dir, NULL, err, sizeof err);
    assert_non_null(s);
    struct rio_opts o = {.base = base, .region_id = 1, .seed = 7};
    struct rio *rio = rio_new(&o, s, err, sizeof err);
    assert_non_null(rio);
    struct raft_io *io = rio_raft_io(rio);
    assert_int_equal(io->init(io, 1, "127.0.0.1:1"), 0);

    static char data[] = "state at 8";
    struct raft_buffer buf = {data, sizeof data};
    struct raft_snapshot snap = {.index = 8, .term = 1, .configuration_index = 1, .bufs = &buf,
                                 .n_bufs = 1};
    raft_configuration_init(&snap.configuration);
    assert_int_equal(raft_configuration_add(&snap.configuration, 1, "127.0.0.1:1", RAFT_VOTER),
                     0);
    for (unsigned i = 0; i < 10; i++)
        w_append(io, i, 1, "before");
    assert_int_equal(io->snapshot_put(io, 3, &g_put_req, &snap, w_put_done), 0);
    for (unsigned i = 10; i < 12; i++)
        w_append(io, i, 1, "after");
    assert_int_equal(io->snapshot_get(io, &g_get_req, w_got), 0);
    run_until(base, w_have_snapshot, NULL);
    assert_int_equal(g_put_at, 10); /* after the 10 appends before it, before the 2 after */
    assert_int_equal(g_w.done, 12);
    assert_int_equal(g_w.out_of_order, 0);
    assert_non_null(g_got);
    assert_int_equal(g_got->index, 8);
    assert_int_equal(g_got->bufs[0].len, sizeof data);
    assert_memory_equal(g_got->bufs[0].base, data, sizeof data);
    rstore_snapshot_free(g_got);
    struct rio_stats st;
    rio_get_stats(rio, &st);
    assert_int_equal(st.snapshot_puts, 1);
    assert_int_equal(st.snapshot_gets, 1);
    io->close(io, w_closed);
    run_until(base, w_is_closed, NULL);
    rio_free(rio);
    raft_configuration_close(&snap.configuration);

    s = rstore_open(g_w.dir, NULL, err, sizeof err);
    assert_non_null(s);
    assert_int_equal(rstore_snapshot_index(s), 8);
    assert_int_equal(rstore_first_index(s), 6); /* 8 - 3 + 1 */
    assert_int_equal(rstore_last_index(s), 12);
    rstore_close(s);
    event_base_free(base);
}

static int group_setup(void **state)
{
    (void)state;
    char err[256];
    signal(SIGPIPE, SIG_IGN);
    log_open("test", NULL, getenv("RIO_TEST_LOG") ? LOG_DEBUG : LOG_ERROR);
    snprintf(g_dir, sizeof g_dir, "/tmp/tisim-test-rio-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    struct certgen_pki_opts o = {0};
    if (certgen_pki(g_dir, &o, err, sizeof err) != 0) {
        fprintf(stderr, "pki: %s\n", err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (g_dir[0])
        tu_rm_rf(g_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip),
        cmocka_unit_test(test_codec_empty_append_entries),
        cmocka_unit_test(test_codec_truncated_at_every_byte),
        cmocka_unit_test(test_codec_bad_type_and_flags),
        cmocka_unit_test_teardown(test_codec_huge_counts_refused_without_allocation, default_heap),
        cmocka_unit_test(test_codec_append_entries_cut_to_fit),
        cmocka_unit_test(test_codec_snapshot_chunk_and_done),
        cmocka_unit_test(test_peer_check),
        cmocka_unit_test(test_three_stores_replicate_fail_over_and_catch_up),
        cmocka_unit_test(test_snapshots_install_compact_and_restart),
        cmocka_unit_test(test_receiver_refuses_bad_transfers),
        cmocka_unit_test(test_verbatim_allow_list_refuses_peers),
        cmocka_unit_test(test_worker_group_commit_and_order),
        cmocka_unit_test(test_worker_snapshot_in_order),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
