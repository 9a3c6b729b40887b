/* tisim-kvload — a load generator for tikv-server's KV service: figures, never assertions.
 *
 *   tisim-kvload --addr HOST:PORT --ca-path CA --cert-path CERT --key-path KEY
 *                [-c CONNS] [-d DEPTH] [--ops put,get] [--seconds S | -n COUNT]
 *                [--value-size BYTES] [--keys N]
 *
 * Opens CONNS (default 50) mutual-TLS connections with the project's async RPC client
 * (common/rpc.h) on one event loop, completes every handshake (not measured), then for each
 * operation in --ops keeps DEPTH (default 1) requests in flight on every connection (a
 * finished request is replaced at once) for S seconds (default 5) or COUNT requests in all,
 * and prints one line per operation:
 *
 *   put 50x1: 12345 puts/s, p50 1.234 ms, p99 5.678 ms (61725 requests in 5.00 s, 0 failed)
 *
 * The rate is requests answered OK over the time from the first send to the last reply (of
 * any kind); latency is per OK request, from rpc_client_call to its reply. puts write
 * raw_put of key "key:%012d" (cycling through --keys, default 10000, as redis-benchmark -r
 * does) with a --value-size (default 100) value; gets read raw_get of keys written before in
 * this run (when no put ran first, or the puts had failures, the keys are written first,
 * unmeasured).
 *
 * Failures:
 * - An error answer during a measured operation (NOT_LEADER from a store that lost the
 *   leadership, NOT_FOUND, INTERNAL, ...) is not a success: it is left out of the rate and
 *   the latencies, counted in "N failed", and the run goes on; after the line, stderr gets
 *   "tisim-kvload: put 50x1: 12 of 61737 requests failed: NOT_LEADER 12; first: key:...:
 *   NOT_LEADER ... the leader is 127.0.0.1:20161", and the exit status is 3 (every operation
 *   ran and printed its line, with failures).
 * - An error answer to the warm-up (e.g. --addr is a follower: NOT_LEADER naming the
 *   leader) or to the unmeasured writes, or a lost connection at any time, stops the run:
 *   exit 1 with the reason in one line (lines already printed stay; the rest never come).
 * - Exit 2: a usage error.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "flags.h"
#include "log.h"
#include "rpc.h"
#include "tls.h"
#include "url.h"

#define KVLOAD_EXIT_FAILED_REQUESTS 3
#define KVLOAD_MAX_CONNS 10000
#define KVLOAD_MAX_DEPTH 1024
#define KVLOAD_CALL_TIMEOUT_MS 30000
/* "key: STATUS message": a key, a status name, a message of up to RPC_ERR_LEN - 1 */
#define KVLOAD_WHY_LEN (RPC_ERR_LEN + 64)
/* the run's reason: an operation name and a "why", or a sentence around one */
#define KVLOAD_ERR_LEN (KVLOAD_WHY_LEN + 192)
#define KVLOAD_KEY_LEN 32 /* "key:" + 12 digits (up to 20 for a long) + NUL */

enum op { OP_PUT, OP_GET, OP_WARM };

struct opts {
    const char *addr, *ca, *cert, *key;
    long conns, depth, count, value_size, keys;
    double seconds;
    bool put, get, put_first;
};

struct load;

/* One request slot: each connection has DEPTH of them, each always busy during a phase. */
struct slot {
    struct load *l;
    struct rpc_client *cli;
    double t0;
    char key[KVLOAD_KEY_LEN];
};

struct load {
    const struct opts *o;
    struct event_base *base;
    struct tls_ctx *tls;
    struct rpc_client **clients;
    struct slot *slots;
    size_t nslots;
    char *value;
    /* the phase */
    enum op op;
    long limit;      /* requests to issue, 0: until the deadline */
    double deadline; /* seconds on the monotonic clock, 0: none */
    long populated;  /* keys written so far (gets read below this) */
    long issued, done, busy;
    long failed_by[RPC_STATUS_MAX + 2]; /* error answers of the phase, by status (last: other) */
    long nfailed;
    char first_failure[KVLOAD_WHY_LEN];
    double t_start, t_last;
    uint32_t *lat_us; /* per completed request */
    size_t nlat, caplat;
    bool failed;        /* the run stops */
    bool any_failures;  /* some measured request had an error answer: exit 3 */
    char err[KVLOAD_ERR_LEN];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *op_name(enum op op)
{
    return op == OP_PUT ? "put" : op == OP_GET ? "get" : "warm-up";
}

/* The run's first failure: "put: why". */
static void fail_run(struct load *l, enum op op, const char *why)
{
    if (l->failed)
        return;
    l->failed = true;
    snprintf(l->err, sizeof l->err, "%s: %s", op_name(op), why);
}

static bool keep_going(const struct load *l)
{
    if (l->failed)
        return false;
    if (l->limit > 0)
        return l->issued < l->limit;
    return now_s() < l->deadline;
}

static int record_latency(struct load *l, double seconds)
{
    if (l->nlat == l->caplat) {
        size_t cap = l->caplat ? l->caplat * 2 : 1 << 16;
        uint32_t *p = realloc(l->lat_us, cap * sizeof *p);
        if (!p)
            return -1;
        l->lat_us = p;
        l->caplat = cap;
    }
    double us = seconds * 1e6;
    l->lat_us[l->nlat++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    return 0;
}

static void issue(struct slot *s);

/* An error answer: the warm-up's stops the run; a phase's is counted and the phase goes on. */
static void on_error_answer(struct load *l, const struct slot *s, const struct rpc_frame *resp)
{
    char msg[RPC_ERR_LEN], why[KVLOAD_WHY_LEN];
    rpc_frame_message(resp, msg, sizeof msg);
    snprintf(why, sizeof why, "%.*s: %s %s", KVLOAD_KEY_LEN, s->key,
             rpc_status_name(resp->status), msg);
    if (l->op == OP_WARM) {
        fail_run(l, l->op, why);
        return;
    }
    unsigned st = resp->status <= RPC_STATUS_MAX ? (unsigned)resp->status : RPC_STATUS_MAX + 1;
    l->failed_by[st]++;
    if (l->nfailed++ == 0)
        snprintf(l->first_failure, sizeof l->first_failure, "%s", why);
}

static void on_reply(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct slot *s = arg;
    struct load *l = s->l;
    double t = now_s();
    l->busy--;
    l->t_last = t;
    if (!resp) {
        fail_run(l, l->op, err);
    } else if (resp->status != RPC_OK && !(l->op == OP_WARM && resp->status == RPC_NOT_FOUND)) {
        on_error_answer(l, s, resp);
    } else {
        l->done++;
        if (l->op != OP_WARM && record_latency(l, t - s->t0) != 0)
            fail_run(l, l->op, "out of memory for the latencies");
    }
    if (l->op != OP_WARM)
        issue(s);
    if (l->busy == 0)
        event_base_loopbreak(l->base);
}

/* Sends the slot's next request, unless the phase is over. */
static void issue(struct slot *s)
{
    struct load *l = s->l;
    if (!keep_going(l))
        return;
    long k = l->op == OP_GET ? random() % l->populated : l->issued % l->o->keys;
    snprintf(s->key, sizeof s->key, "key:%012ld", k);
    struct rpc_buf args[2] = {{s->key, strlen(s->key)}, {l->value, (size_t)l->o->value_size}};
    char err[RPC_ERR_LEN];
    s->t0 = now_s();
    if (rpc_client_call(s->cli, l->op == OP_PUT ? "raw_put" : "raw_get", args,
                        l->op == OP_PUT ? 2 : 1, KVLOAD_CALL_TIMEOUT_MS, on_reply, s, err,
                        sizeof err) != 0) {
        fail_run(l, l->op, err);
        return;
    }
    l->issued++;
    l->busy++;
}

/* Runs one phase to its end: every slot busy until the limit or deadline, then drained. */
static int run_phase(struct load *l, enum op op, long limit, double seconds)
{
    l->op = op;
    l->limit = limit;
    l->issued = l->done = l->nfailed = 0;
    memset(l->failed_by, 0, sizeof l->failed_by);
    l->first_failure[0] = '\0';
    l->nlat = 0;
    l->t_start = l->t_last = now_s();
    l->deadline = limit > 0 ? 0 : l->t_start + seconds;
    for (size_t i = 0; i < l->nslots; i++)
        issue(&l->slots[i]);
    while (l->busy > 0)
        if (event_base_dispatch(l->base) < 0) {
            fail_run(l, op, "cannot run the event loop");
            return -1;
        }
    long written = l->done < l->o->keys ? l->done : l->o->keys; /* from key 0 up */
    if (op == OP_PUT && l->nfailed == 0 && written > l->populated)
        l->populated = written;
    return l->failed ? -1 : 0;
}

/* Every connection makes one call (a get of a key nobody writes): the handshakes are done
 * before anything is measured. */
static int warm_up(struct load *l)
{
    l->op = OP_WARM;
    l->limit = 0;
    l->deadline = now_s() + 3600;
    for (long i = 0; i < l->o->conns; i++) {
        struct slot *s = &l->slots[i * l->o->depth];
        snprintf(s->key, sizeof s->key, "kvload:warm");
        struct rpc_buf arg = {s->key, strlen(s->key)};
        char err[RPC_ERR_LEN];
        if (rpc_client_call(s->cli, "raw_get", &arg, 1, KVLOAD_CALL_TIMEOUT_MS, on_reply, s,
                            err, sizeof err) != 0) {
            fail_run(l, OP_WARM, err);
            break;
        }
        l->busy++;
    }
    while (l->busy > 0 && event_base_dispatch(l->base) >= 0)
        ;
    return l->failed ? -1 : 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(const struct load *l, double p)
{
    if (l->nlat == 0)
        return 0;
    size_t i = (size_t)(p * (double)(l->nlat - 1) + 0.5);
    return l->lat_us[i] / 1000.0;
}

/* "NOT_LEADER 12, INTERNAL 1" into buf. */
static void failures_by_status(const struct load *l, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (unsigned st = 0; st <= RPC_STATUS_MAX + 1 && used < len; st++) {
        if (l->failed_by[st] == 0)
            continue;
        int n = snprintf(buf + used, len - used, "%s%s %ld", used ? ", " : "",
                         st <= RPC_STATUS_MAX ? rpc_status_name((enum rpc_status)st) : "other",
                         l->failed_by[st]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

static void report_failures(struct load *l)
{
    char by[256];
    failures_by_status(l, by, sizeof by);
    fprintf(stderr, "tisim-kvload: %s %ldx%ld: %ld of %ld requests failed: %s; first: %s\n",
            op_name(l->op), l->o->conns, l->o->depth, l->nfailed, l->done + l->nfailed, by,
            l->first_failure);
    l->any_failures = true;
}

static void report(struct load *l)
{
    qsort(l->lat_us, l->nlat, sizeof *l->lat_us, cmp_u32);
    double secs = l->t_last - l->t_start;
    printf("%s %ldx%ld: %.0f %ss/s, p50 %.3f ms, p99 %.3f ms (%ld requests in %.2f s, "
           "%ld failed)\n",
           op_name(l->op), l->o->conns, l->o->depth, secs > 0 ? (double)l->done / secs : 0,
           op_name(l->op), percentile_ms(l, 0.50), percentile_ms(l, 0.99), l->done, secs,
           l->nfailed);
    fflush(stdout);
    if (l->nfailed > 0)
        report_failures(l);
}

static int measure(struct load *l, enum op op)
{
    if (run_phase(l, op, l->o->count, l->o->seconds) != 0)
        return -1;
    report(l);
    return 0;
}

/* The keys the gets read, written unmeasured: every one must be written. */
static int populate(struct load *l)
{
    const struct opts *o = l->o;
    fprintf(stderr, "tisim-kvload: writing keys 0 to %ld for the gets (not measured)\n",
            o->keys - 1);
    if (run_phase(l, OP_PUT, o->keys, 0) != 0)
        return -1;
    if (l->nfailed == 0)
        return 0;
    snprintf(l->err, sizeof l->err, "writing the keys for the gets: %ld failed; first: %s",
             l->nfailed, l->first_failure);
    l->failed = true;
    return -1;
}

static int run(struct load *l)
{
    const struct opts *o = l->o;
    if (warm_up(l) != 0)
        return -1;
    if (o->put && o->put_first && measure(l, OP_PUT) != 0)
        return -1;
    if (o->get) {
        if (l->populated < o->keys && populate(l) != 0)
            return -1;
        if (measure(l, OP_GET) != 0)
            return -1;
    }
    if (o->put && !o->put_first && measure(l, OP_PUT) != 0)
        return -1;
    return 0;
}

static int setup(struct load *l, char *err, size_t errlen)
{
    const struct opts *o = l->o;
    struct url u;
    if (url_parse(o->addr, false, &u, err, errlen) != 0)
        return -1;
    struct tls_opts t = {.role = "kvload", .ca_path = o->ca, .cert_path = o->cert,
                         .key_path = o->key};
    if (!(l->tls = tls_ctx_new(TLS_CLIENT, &t, err, errlen)))
        return -1;
    l->nslots = (size_t)(o->conns * o->depth);
    l->base = event_base_new();
    l->clients = calloc((size_t)o->conns, sizeof *l->clients);
    l->slots = calloc(l->nslots, sizeof *l->slots);
    l->value = malloc((size_t)o->value_size + 1);
    if (!l->base || !l->clients || !l->slots || !l->value)
        goto nomem;
    for (long i = 0; i < o->value_size; i++)
        l->value[i] = (char)('a' + i % 26);
    for (long i = 0; i < o->conns; i++)
        if (!(l->clients[i] = rpc_client_new(l->base, u.host, u.port, l->tls, 0)))
            goto nomem;
    for (size_t i = 0; i < l->nslots; i++)
        l->slots[i] = (struct slot){.l = l, .cli = l->clients[i / (size_t)o->depth]};
    return 0;
nomem:
    snprintf(err, errlen, "out of memory");
    return -1;
}

static void teardown(struct load *l)
{
    if (l->clients)
        for (long i = 0; i < l->o->conns; i++)
            rpc_client_free(l->clients[i]);
    if (l->base) {
        event_base_loop(l->base, EVLOOP_NONBLOCK); /* let the closing connections finish */
        event_base_free(l->base);
    }
    tls_ctx_free(l->tls);
    free(l->clients);
    free(l->slots);
    free(l->value);
    free(l->lat_us);
}

/* "put,get" → which operations, in which order. */
static int parse_ops(const char *s, struct opts *o, char *err, size_t errlen)
{
    o->put = o->get = false;
    if (!strcmp(s, "put,get") || !strcmp(s, "put"))
        o->put = o->put_first = true;
    if (!strcmp(s, "put,get") || !strcmp(s, "get,put") || !strcmp(s, "get"))
        o->get = true;
    if (!strcmp(s, "get,put"))
        o->put = true;
    if (o->put || o->get)
        return 0;
    snprintf(err, errlen, "--ops takes put, get, put,get or get,put, not '%s'", s);
    return -1;
}

static int parse_long(const char *name, const char *s, long lo, long hi, long *out, char *err,
                      size_t errlen)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        snprintf(err, errlen, "--%s takes a whole number from %ld to %ld, not '%s'", name, lo,
                 hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static const char *v_addr, *v_ca, *v_cert, *v_key, *v_conns = "50", *v_depth = "1",
                  *v_ops = "put,get", *v_seconds = "5", *v_count = "0", *v_vsize = "100",
                  *v_keys = "10000";
static bool help;
static const struct flag table[] = {
    {"addr", 0, false, &v_addr, NULL, "tikv-server's KV address HOST:PORT"},
    {"ca-path", 0, false, &v_ca, NULL, "CA certificate (PEM)"},
    {"cert-path", 0, false, &v_cert, NULL, "client certificate (PEM; its CN in cert-allowed-cn)"},
    {"key-path", 0, false, &v_key, NULL, "client key (PEM)"},
    {"conns", 'c', false, &v_conns, NULL, "connections (default 50)"},
    {"depth", 'd', false, &v_depth, NULL, "requests in flight per connection (default 1)"},
    {"ops", 0, false, &v_ops, NULL, "put, get, put,get or get,put (default put,get)"},
    {"seconds", 0, false, &v_seconds, NULL, "duration of each operation (default 5)"},
    {"requests", 'n', false, &v_count, NULL, "requests per operation instead of --seconds"},
    {"value-size", 0, false, &v_vsize, NULL, "value bytes (default 100)"},
    {"keys", 0, false, &v_keys, NULL, "key space (default 10000)"},
    {"help", 'h', true, NULL, &help, "this text"},
};
#define NFLAGS (sizeof table / sizeof table[0])

static int parse_opts(int argc, char **argv, struct opts *o, char *err, size_t errlen)
{
    int i = flags_parse(table, NFLAGS, argc, argv, err, errlen);
    if (i < 0)
        return -1;
    if (help)
        return 0;
    if (i < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[i]);
        return -1;
    }
    if (!v_addr || !v_ca || !v_cert || !v_key) {
        snprintf(err, errlen, "--addr, --ca-path, --cert-path and --key-path are required");
        return -1;
    }
    char *end;
    o->seconds = strtod(v_seconds, &end);
    if (!*v_seconds || *end || !(o->seconds > 0 && o->seconds <= 3600)) {
        snprintf(err, errlen, "--seconds takes a number of seconds (0..3600], not '%s'",
                 v_seconds);
        return -1;
    }
    *o = (struct opts){.addr = v_addr, .ca = v_ca, .cert = v_cert, .key = v_key,
                       .seconds = o->seconds};
    if (parse_long("conns", v_conns, 1, KVLOAD_MAX_CONNS, &o->conns, err, errlen) ||
        parse_long("depth", v_depth, 1, KVLOAD_MAX_DEPTH, &o->depth, err, errlen) ||
        parse_long("requests", v_count, 0, 1000000000L, &o->count, err, errlen) ||
        parse_long("value-size", v_vsize, 0, 1 << 20, &o->value_size, err, errlen) ||
        parse_long("keys", v_keys, 1, 100000000L, &o->keys, err, errlen))
        return -1;
    return parse_ops(v_ops, o, err, errlen);
}

int main(int argc, char **argv)
{
    struct opts o;
    char err[KVLOAD_ERR_LEN];
    if (parse_opts(argc, argv, &o, err, sizeof err) != 0) {
        fprintf(stderr, "tisim-kvload: %s (see --help)\n", err);
        return 2;
    }
    if (help) {
        printf("usage: tisim-kvload --addr HOST:PORT --ca-path CA --cert-path CERT "
               "--key-path KEY [flags]\n");
        flags_usage(stdout, table, NFLAGS);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    log_open("kvload", NULL, LOG_WARN);
    struct load l = {.o = &o};
    int rc = setup(&l, err, sizeof err);
    if (rc == 0 && (rc = run(&l)) != 0)
        snprintf(err, sizeof err, "%s", l.err);
    bool failures = l.any_failures;
    teardown(&l);
    if (rc != 0)
        fprintf(stderr, "tisim-kvload: %s\n", err);
    log_close();
    if (rc != 0)
        return 1;
    return failures ? KVLOAD_EXIT_FAILED_REQUESTS : 0;
}
