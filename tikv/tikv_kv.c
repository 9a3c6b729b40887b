/* tikv_kv.c — TiKV's KV service. See tikv_kv.h. */
#include "tikv_kv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "replica.h"
#include "rio.h"
#include "rpc.h"
#include "tikv_import.h"

struct tikv_kv {
    struct rpc_server *rpc;
    struct kv_engine *engine;
    struct replica *replica; /* NULL: write to the engine directly */
    char **allowed;
    size_t n_allowed;
    struct tikv_status *status;
    tikv_status_fn status_json;
    void *status_arg;
    struct cipher_keys keys; /* for ingest */
    bool has_keys;
};

/* The counter's kind: a literal that outlives the request (the status port keeps it). */
static const char *request_kind(const char *method)
{
    static const char *const known[] = {"raw_get",          "raw_put",  "raw_delete",
                                        "raw_scan",         "raw_batch_put",
                                        "raw_batch_delete", "status",   TIKV_IMPORT_METHOD,
                                        RIO_METHOD};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(method, known[i]) == 0)
            return known[i];
    return "unknown";
}

/* Real TiKV checks the CN per request, after a successful handshake. */
static enum rpc_status check_peer(const struct conn_peer *peer, const struct rpc_frame *req,
                                  void *arg, char *msg, size_t msglen)
{
    struct tikv_kv *kv = arg;
    if (kv->status)
        tikv_status_count(kv->status, request_kind(req->method));
    if (kv->replica && strcmp(req->method, RIO_METHOD) == 0)
        return replica_check_peer(kv->replica, peer, msg, msglen);
    if (!peer->tls || peer->cn_allowed)
        return RPC_OK;
    rpc_cn_refusal(msg, msglen, peer->cn, kv->allowed, kv->n_allowed);
    log_warnx("refused %s from %s: %s", req->method, peer->addr, msg);
    return RPC_UNAUTHENTICATED;
}

/* Every step-th field (from the first) is a key and must not be empty; else answered. */
static bool keys_present(struct rpc_call *call, const struct rpc_frame *req, size_t step)
{
    for (size_t i = 0; i < req->nfields; i += step) {
        if (req->fields[i].len == 0) {
            rpc_reply(call, RPC_BAD_REQUEST, "a key must not be empty", NULL, 0);
            return false;
        }
    }
    return true;
}

static bool has_args(struct rpc_call *call, const struct rpc_frame *req, size_t n)
{
    if (req->nfields != n) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s takes %zu argument%s, got %zu", req->method, n,
                 n == 1 ? "" : "s", req->nfields);
        rpc_reply(call, RPC_BAD_REQUEST, msg, NULL, 0);
        return false;
    }
    return keys_present(call, req, 2); /* keys: the even fields of these methods */
}

static void write_done(int status, const char *err, void *arg)
{
    struct rpc_call *call = arg;
    if (status == 0)
        rpc_reply(call, RPC_OK, NULL, NULL, 0);
    else
        rpc_reply(call, RPC_INTERNAL, err, NULL, 0);
}

/* Answers a request the replica did not take: NOT_LEADER carries the leader's address. */
static void reply_replica(struct rpc_call *call, int st, const char *msg, const char *leader)
{
    struct rpc_buf addr = {leader ? leader : "", leader ? strlen(leader) : 0};
    rpc_reply(call, (enum rpc_status)st, msg, &addr, st == RPC_NOT_LEADER ? 1 : 0);
}

static void replica_done(int st, const char *msg, const char *leader, void *arg)
{
    reply_replica(arg, st, msg, leader);
}

/* Queues ops as one durable write answered from write_done (or, replicated, replica_done). */
static void write_ops(struct tikv_kv *kv, struct rpc_call *call, const struct kv_op *ops,
                      size_t n)
{
    char err[256];
    if (kv->replica) {
        const char *leader;
        int st = replica_write(kv->replica, ops, n, replica_done, call, err, sizeof err, &leader);
        if (st != REPLICA_QUEUED)
            reply_replica(call, st, err, leader);
        return;
    }
    if (kv_engine_write(kv->engine, ops, n, write_done, call, err, sizeof err) != 0)
        rpc_reply(call, strstr(err, "over") ? RPC_TOO_LARGE : RPC_INTERNAL, err, NULL, 0);
}

static void raw_get(struct rpc_call *call, const struct rpc_frame *req, void *arg);
static void raw_scan(struct rpc_call *call, const struct rpc_frame *req, void *arg);

struct read_wait {
    struct tikv_kv *kv;
    struct rpc_call *call;
    rpc_handler_fn fn;
};

static void read_resume(int st, const char *msg, const char *leader, void *arg)
{
    struct read_wait *w = arg;
    if (st == RPC_OK)
        w->fn(w->call, rpc_call_request(w->call), w->kv);
    else
        reply_replica(w->call, st, msg, leader);
    free(w);
}

/* True when a read may be served now; otherwise it is answered (NOT_LEADER) or resumed
 * later, once the leader has applied everything committed. */
static bool may_read(struct tikv_kv *kv, struct rpc_call *call, rpc_handler_fn fn)
{
    if (!kv->replica)
        return true;
    char msg[256];
    const char *leader;
    struct read_wait *w = malloc(sizeof *w);
    if (!w) {
        rpc_reply(call, RPC_INTERNAL, "out of memory", NULL, 0);
        return false;
    }
    *w = (struct read_wait){kv, call, fn};
    int st = replica_read(kv->replica, read_resume, w, msg, sizeof msg, &leader);
    if (st == REPLICA_QUEUED)
        return false;
    free(w);
    if (st == RPC_OK)
        return true;
    reply_replica(call, st, msg, leader);
    return false;
}

static void raw_get(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct tikv_kv *kv = arg;
    if (!has_args(call, req, 1) || !may_read(kv, call, raw_get))
        return;
    const void *val;
    size_t vlen;
    if (kv_engine_get(kv->engine, req->fields[0].data, req->fields[0].len, &val, &vlen) != 0) {
        rpc_reply(call, RPC_NOT_FOUND, "key not found", NULL, 0);
        return;
    }
    struct rpc_buf out = {val, vlen};
    rpc_reply(call, RPC_OK, NULL, &out, 1);
}

static void raw_put(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    if (!has_args(call, req, 2))
        return;
    struct kv_op op = {KV_OP_PUT, req->fields[0].data, req->fields[0].len, req->fields[1].data,
                       req->fields[1].len};
    write_ops(arg, call, &op, 1);
}

static void raw_delete(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    if (!has_args(call, req, 1))
        return;
    struct kv_op op = {KV_OP_DELETE, req->fields[0].data, req->fields[0].len, NULL, 0};
    write_ops(arg, call, &op, 1);
}

static void raw_batch_put(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    size_t n = req->nfields / 2;
    if (req->nfields == 0 || req->nfields % 2 != 0) {
        rpc_reply(call, RPC_BAD_REQUEST, "raw_batch_put takes key, value pairs", NULL, 0);
        return;
    }
    if (!has_args(call, req, req->nfields))
        return;
    struct kv_op *ops = calloc(n, sizeof *ops);
    if (!ops) {
        rpc_reply(call, RPC_INTERNAL, "out of memory", NULL, 0);
        return;
    }
    for (size_t i = 0; i < n; i++)
        ops[i] = (struct kv_op){KV_OP_PUT, req->fields[2 * i].data, req->fields[2 * i].len,
                                req->fields[2 * i + 1].data, req->fields[2 * i + 1].len};
    write_ops(arg, call, ops, n); /* the engine copies them */
    free(ops);
}

/* TiDB's DROP TABLE and DELETE: one Raft entry and one sync for a page of keys, where one
 * raw_delete each cost a round trip and a sync apiece. */
static void raw_batch_delete(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    if (req->nfields == 0) {
        rpc_reply(call, RPC_BAD_REQUEST, "raw_batch_delete takes keys", NULL, 0);
        return;
    }
    if (!keys_present(call, req, 1)) /* every field is a key */
        return;
    struct kv_op *ops = calloc(req->nfields, sizeof *ops);
    if (!ops) {
        rpc_reply(call, RPC_INTERNAL, "out of memory", NULL, 0);
        return;
    }
    for (size_t i = 0; i < req->nfields; i++)
        ops[i] = (struct kv_op){KV_OP_DELETE, req->fields[i].data, req->fields[i].len, NULL, 0};
    write_ops(arg, call, ops, req->nfields); /* the engine copies them */
    free(ops);
}

struct scan_out {
    struct rpc_buf *items;
    size_t n, cap, bytes;
};

/* Collects key/value pairs while they fit in one reply (pointers into the index stay valid
 * until control returns to the loop, and the reply is encoded before that). */
static int scan_item(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct scan_out *s = arg;
    if (s->bytes + klen + vlen + 64 > RPC_MAX_BODY - 4096 || s->n + 2 > s->cap)
        return 1; /* stop */
    s->items[s->n++] = (struct rpc_buf){key, klen};
    s->items[s->n++] = (struct rpc_buf){val, vlen};
    s->bytes += klen + vlen + 8;
    return 0;
}

static int parse_limit(const struct rpc_buf *b, size_t *out)
{
    char text[16];
    if (b->len == 0 || b->len >= sizeof text)
        return -1;
    memcpy(text, b->data, b->len);
    text[b->len] = '\0';
    char *end;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || *end || text[0] == '-' || v == 0 || v > TIKV_KV_MAX_SCAN)
        return -1;
    *out = v;
    return 0;
}

static void raw_scan(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct tikv_kv *kv = arg;
    size_t limit;
    if (req->nfields != 3) {
        rpc_reply(call, RPC_BAD_REQUEST, "raw_scan takes start, end, limit", NULL, 0);
        return;
    }
    if (parse_limit(&req->fields[2], &limit) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "the scan limit must be a number from 1 to %d",
                 TIKV_KV_MAX_SCAN);
        rpc_reply(call, RPC_BAD_REQUEST, msg, NULL, 0);
        return;
    }
    if (!may_read(kv, call, raw_scan))
        return;
    const struct rpc_buf *start = &req->fields[0], *end = &req->fields[1];
    struct scan_out s = {calloc(2 * limit, sizeof *s.items), 0, 2 * limit, 0};
    if (!s.items) {
        rpc_reply(call, RPC_INTERNAL, "out of memory", NULL, 0);
        return;
    }
    kv_engine_scan(kv->engine, start->data, start->len, end->len ? end->data : NULL, end->len,
                   limit, scan_item, &s);
    rpc_reply(call, RPC_OK, NULL, s.items, s.n);
    free(s.items);
}

static void status(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct tikv_kv *kv = arg;
    if (!has_args(call, req, 0))
        return;
    json_t *j = kv->status_json ? kv->status_json(kv->status_arg) : json_object();
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!text) {
        rpc_reply(call, RPC_INTERNAL, "cannot build the status", NULL, 0);
        return;
    }
    struct rpc_buf out = {text, strlen(text)};
    rpc_reply(call, RPC_OK, NULL, &out, 1);
    free(text);
}

struct ingest_job {
    struct rpc_call *call;
    size_t n;
};

static void ingest_done(int status, const char *err, void *arg)
{
    struct ingest_job *job = arg;
    if (status == 0) {
        char count[24], msg[48];
        snprintf(count, sizeof count, "%zu", job->n);
        snprintf(msg, sizeof msg, "ingested %zu keys", job->n);
        log_info("%s from %s", msg, rpc_call_peer(job->call)->addr);
        struct rpc_buf out = {count, strlen(count)};
        rpc_reply(job->call, RPC_OK, msg, &out, 1);
    } else {
        rpc_reply(job->call, RPC_INTERNAL, err, NULL, 0);
    }
    free(job);
}

static void ingest_replicated(int st, const char *msg, const char *leader, void *arg)
{
    struct ingest_job *job = arg;
    if (st == RPC_OK) {
        ingest_done(0, NULL, job);
        return;
    }
    reply_replica(job->call, st, msg, leader);
    free(job);
}

/* Reads the request's bulk file with the store's keys: RPC_OK and *b, or the refusal. */
static enum rpc_status read_bulk(struct tikv_kv *kv, const struct rpc_frame *req,
                                 struct tikv_import_batch *b, char *err, size_t errlen)
{
    struct kv_engine_stats st;
    kv_engine_stats(kv->engine, &st);
    if (req->nfields != 1) {
        snprintf(err, errlen, "ingest takes one argument, the bulk file's bytes");
        return RPC_BAD_REQUEST;
    }
    if (st.encrypted && !kv->has_keys) {
        snprintf(err, errlen, "this store has no cipher keys to read bulk files with");
        return RPC_INTERNAL;
    }
    const struct cipher_keys *keys = st.encrypted ? &kv->keys : NULL;
    if (tikv_import_read_bytes(req->fields[0].data, req->fields[0].len, keys, b, err,
                               errlen) != 0)
        return RPC_BAD_REQUEST;
    return RPC_OK;
}

/* A bulk file, read strictly (nothing is applied unless all of it checks out), then applied
 * as one atomic write. */
static void ingest(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct tikv_kv *kv = arg;
    struct tikv_import_batch b;
    char err[600];
    enum rpc_status rs = read_bulk(kv, req, &b, err, sizeof err);
    if (rs != RPC_OK) {
        log_warnx("refused a bulk import from %s: %s", rpc_call_peer(call)->addr, err);
        rpc_reply(call, rs, err, NULL, 0);
        return;
    }
    struct ingest_job *job = malloc(sizeof *job);
    const char *leader;
    int st;
    if (!job) {
        rpc_reply(call, RPC_INTERNAL, "out of memory", NULL, 0);
    } else if (kv->replica) { /* one replicated command */
        *job = (struct ingest_job){call, b.n};
        st = replica_write(kv->replica, b.ops, b.n, ingest_replicated, job, err, sizeof err,
                           &leader);
        if (st != REPLICA_QUEUED) {
            free(job);
            reply_replica(call, st, err, leader);
        }
    } else {
        *job = (struct ingest_job){call, b.n};
        if (kv_engine_write(kv->engine, b.ops, b.n, ingest_done, job, err, sizeof err) != 0) {
            free(job);
            rpc_reply(call, strstr(err, "over") ? RPC_TOO_LARGE : RPC_INTERNAL, err, NULL, 0);
        }
    }
    tikv_import_batch_free(&b); /* the engine copied the ops */
}

struct tikv_kv *tikv_kv_new(struct event_base *base, const struct tikv_kv_opts *o,
                            const char *host, int port, struct tls_ctx *tls, char *err,
                            size_t errlen)
{
    struct tikv_kv *kv = calloc(1, sizeof *kv);
    if (!kv)
        goto oom;
    kv->engine = o->engine;
    kv->replica = o->replica;
    kv->status = o->status;
    kv->status_json = o->status_json;
    kv->status_arg = o->status_arg;
    if (o->keys) {
        kv->keys = *o->keys;
        kv->has_keys = true;
    }
    if (o->n_allowed_cn && !(kv->allowed = calloc(o->n_allowed_cn, sizeof *kv->allowed)))
        goto oom;
    for (size_t i = 0; i < o->n_allowed_cn; i++, kv->n_allowed++)
        if (!(kv->allowed[i] = strdup(o->allowed_cn[i])))
            goto oom;
    const struct rpc_method methods[] = {
        {"raw_get", raw_get, kv},     {"raw_put", raw_put, kv},
        {"raw_delete", raw_delete, kv}, {"raw_batch_put", raw_batch_put, kv},
        {"raw_batch_delete", raw_batch_delete, kv},
        {"raw_scan", raw_scan, kv},   {"status", status, kv},
        {TIKV_IMPORT_METHOD, ingest, kv}, {RIO_METHOD, replica_rpc_handler, o->replica},
    };
    size_t n_methods = sizeof methods / sizeof methods[0] - (o->replica ? 0 : 1);
    struct rpc_server_opts so = {methods, n_methods, check_peer, kv, 0};
    if (!(kv->rpc = rpc_server_new(base, &so)))
        goto oom;
    if (rpc_server_listen(kv->rpc, host, port, tls, err, errlen) != 0) {
        tikv_kv_free(kv);
        return NULL;
    }
    return kv;
oom:
    snprintf(err, errlen, "out of memory");
    tikv_kv_free(kv);
    return NULL;
}

int tikv_kv_port(const struct tikv_kv *kv)
{
    return rpc_server_port(kv->rpc);
}

void tikv_kv_free(struct tikv_kv *kv)
{
    if (!kv)
        return;
    if (kv->rpc)
        rpc_server_free(kv->rpc);
    for (size_t i = 0; i < kv->n_allowed; i++)
        free(kv->allowed[i]);
    free(kv->allowed);
    cipherfile_keys_clear(&kv->keys);
    free(kv);
}
