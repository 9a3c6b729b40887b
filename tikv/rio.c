/* rio.c — libraft's raft_io on libevent, the framed RPC and rstore (contract in rio.h).
 *
 * Message layout (big-endian):
 *   u8 format (1), u8 type, u64 region, u64 from, u64 to, u16 addr_len, addr
 *   RequestVote:        term, candidate, last_log_index, last_log_term, u8 disrupt, u8 pre_vote
 *   RequestVoteResult:  term, u8 granted, u8 pre_vote (raft_tribool 0..2)
 *   AppendEntries:      term, prev_index, prev_term, commit, u32 n,
 *                       n x {u64 term, u8 type, u32 len}, then the n payloads
 *   AppendEntriesResult: term, rejected, last_log_index
 *   InstallSnapshot:    term, last_index, last_term, conf_index, u32 n_servers,
 *                       n x {u64 id, u8 role, u16 len, address}, u32 data_len, data
 *   TimeoutNow:         term, last_log_index, last_log_term
 */
#include "rio.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"

#define FORMAT 1
#define ENV_LEN (2 + 8 + 8 + 8 + 2)
#define ENTRY_HDR 13
#define SERVER_HDR 11
#define RPC_OVERHEAD 256 /* frame header and fields around the message */

/* ---- writer / reader ---- */

struct wr {
    uint8_t *p;
    size_t n;
};

static void put_u8(struct wr *w, uint8_t v)
{
    w->p[w->n++] = v;
}

static void put_be(struct wr *w, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        w->p[w->n++] = (uint8_t)(v >> (8 * i));
}

static void put_bytes(struct wr *w, const void *b, size_t len)
{
    if (len)
        memcpy(w->p + w->n, b, len);
    w->n += len;
}

struct rd {
    const uint8_t *p;
    size_t left;
    bool bad;
};

static uint64_t get_be(struct rd *r, int bytes)
{
    uint64_t v = 0;
    if (r->bad || r->left < (size_t)bytes) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | r->p[i];
    r->p += bytes;
    r->left -= (size_t)bytes;
    return v;
}

static const uint8_t *get_bytes(struct rd *r, size_t len)
{
    if (r->bad || r->left < len) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *b = r->p;
    r->p += len;
    r->left -= len;
    return b;
}

/* A 0/1 byte as bool; anything else marks the input bad. */
static bool get_flag(struct rd *r)
{
    uint64_t v = get_be(r, 1);
    if (v > 1)
        r->bad = true;
    return v == 1;
}

/* ---- encode ---- */

static size_t conf_size(const struct raft_configuration *c)
{
    size_t n = 4;
    for (unsigned i = 0; i < c->n; i++)
        n += SERVER_HDR + strlen(c->servers[i].address);
    return n;
}

/* Bytes of the type-specific part; for AppendEntries, of its first *k entries that fit in
 * room (*k in: all of them; out: how many fit). */
static size_t body_size(const struct raft_message *m, size_t room, unsigned *k)
{
    switch (m->type) {
    case RAFT_IO_REQUEST_VOTE:
        return 4 * 8 + 2;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        return 8 + 2;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
    case RAFT_IO_TIMEOUT_NOW:
        return 3 * 8;
    case RAFT_IO_INSTALL_SNAPSHOT:
        return 4 * 8 + conf_size(&m->install_snapshot.conf) + 4 + m->install_snapshot.data.len;
    default: /* RAFT_IO_APPEND_ENTRIES */
        break;
    }
    size_t n = 4 * 8 + 4;
    unsigned i = 0;
    for (; i < *k; i++) {
        size_t e = ENTRY_HDR + m->append_entries.entries[i].buf.len;
        if (n + e > room)
            break;
        n += e;
    }
    *k = i;
    return n;
}

static void encode_conf(struct wr *w, const struct raft_configuration *c)
{
    put_be(w, c->n, 4);
    for (unsigned i = 0; i < c->n; i++) {
        size_t len = strlen(c->servers[i].address);
        put_be(w, c->servers[i].id, 8);
        put_u8(w, (uint8_t)c->servers[i].role);
        put_be(w, len, 2);
        put_bytes(w, c->servers[i].address, len);
    }
}

static void encode_append(struct wr *w, const struct raft_append_entries *a, unsigned k)
{
    put_be(w, a->term, 8);
    put_be(w, a->prev_log_index, 8);
    put_be(w, a->prev_log_term, 8);
    put_be(w, a->leader_commit, 8);
    put_be(w, k, 4);
    for (unsigned i = 0; i < k; i++) {
        put_be(w, a->entries[i].term, 8);
        put_u8(w, (uint8_t)a->entries[i].type);
        put_be(w, a->entries[i].buf.len, 4);
    }
    for (unsigned i = 0; i < k; i++)
        put_bytes(w, a->entries[i].buf.base, a->entries[i].buf.len);
}

static void encode_body(struct wr *w, const struct raft_message *m, unsigned k)
{
    switch (m->type) {
    case RAFT_IO_REQUEST_VOTE: {
        const struct raft_request_vote *v = &m->request_vote;
        put_be(w, v->term, 8);
        put_be(w, v->candidate_id, 8);
        put_be(w, v->last_log_index, 8);
        put_be(w, v->last_log_term, 8);
        put_u8(w, v->disrupt_leader ? 1 : 0);
        put_u8(w, v->pre_vote ? 1 : 0);
        break;
    }
    case RAFT_IO_REQUEST_VOTE_RESULT:
        put_be(w, m->request_vote_result.term, 8);
        put_u8(w, m->request_vote_result.vote_granted ? 1 : 0);
        put_u8(w, (uint8_t)m->request_vote_result.pre_vote);
        break;
    case RAFT_IO_APPEND_ENTRIES:
        encode_append(w, &m->append_entries, k);
        break;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        put_be(w, m->append_entries_result.term, 8);
        put_be(w, m->append_entries_result.rejected, 8);
        put_be(w, m->append_entries_result.last_log_index, 8);
        break;
    case RAFT_IO_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *s = &m->install_snapshot;
        put_be(w, s->term, 8);
        put_be(w, s->last_index, 8);
        put_be(w, s->last_term, 8);
        put_be(w, s->conf_index, 8);
        encode_conf(w, &s->conf);
        put_be(w, s->data.len, 4);
        put_bytes(w, s->data.base, s->data.len);
        break;
    }
    default: /* RAFT_IO_TIMEOUT_NOW */
        put_be(w, m->timeout_now.term, 8);
        put_be(w, m->timeout_now.last_log_index, 8);
        put_be(w, m->timeout_now.last_log_term, 8);
        break;
    }
}

int rio_msg_encode(const struct rio_env *env, const struct raft_message *m, size_t max,
                   uint8_t **out, size_t *len, unsigned *n_sent, char *err, size_t errlen)
{
    size_t alen = strlen(env->from_addr);
    size_t head = ENV_LEN + alen;
    unsigned k = m->type == RAFT_IO_APPEND_ENTRIES ? m->append_entries.n_entries : 0;
    if (m->type < RAFT_IO_APPEND_ENTRIES || m->type > RAFT_IO_TIMEOUT_NOW) {
        snprintf(err, errlen, "raft message of unknown type %u", (unsigned)m->type);
        return -1;
    }
    if (alen == 0 || alen > RIO_ADDR_MAX) {
        snprintf(err, errlen, "raft message: address of %zu bytes", alen);
        return -1;
    }
    size_t body = head <= max ? body_size(m, max - head, &k) : 0;
    bool cut_to_nothing = m->type == RAFT_IO_APPEND_ENTRIES && k == 0 &&
                          m->append_entries.n_entries > 0;
    if (head > max || head + body > max || cut_to_nothing) {
        snprintf(err, errlen, "raft message of type %u is over the %zu-byte limit",
                 (unsigned)m->type, max);
        return -1;
    }
    struct wr w = {.p = malloc(head + body), .n = 0};
    if (!w.p) {
        snprintf(err, errlen, "raft message: out of memory");
        return -1;
    }
    put_u8(&w, FORMAT);
    put_u8(&w, (uint8_t)m->type);
    put_be(&w, env->region_id, 8);
    put_be(&w, env->from_id, 8);
    put_be(&w, env->to_id, 8);
    put_be(&w, alen, 2);
    put_bytes(&w, env->from_addr, alen);
    encode_body(&w, m, k);
    *out = w.p;
    *len = w.n;
    *n_sent = k;
    return 0;
}

/* ---- decode ---- */

static int decode_entries(struct rd *r, struct raft_append_entries *a)
{
    uint64_t n = get_be(r, 4);
    if (r->bad || n > r->left / ENTRY_HDR)
        return -1;
    if (n == 0)
        return 0;
    const uint8_t *hdr = get_bytes(r, n * ENTRY_HDR);
    struct rd h = {.p = hdr, .left = n * ENTRY_HDR};
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        get_be(&h, 8);
        uint64_t type = get_be(&h, 1);
        uint64_t len = get_be(&h, 4);
        if (type < RAFT_COMMAND || type > RAFT_CHANGE || len > r->left - total)
            return -1;
        total += len;
    }
    if (total != r->left) /* the payloads are the rest of the message */
        return -1;
    a->entries = raft_malloc(n * sizeof *a->entries);
    void *batch = raft_malloc(total ? total : 1);
    if (!a->entries || !batch) {
        raft_free(a->entries);
        raft_free(batch);
        a->entries = NULL;
        return -1;
    }
    memcpy(batch, get_bytes(r, total), total);
    h = (struct rd){.p = hdr, .left = n * ENTRY_HDR};
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        struct raft_entry *e = &a->entries[i];
        e->term = get_be(&h, 8);
        e->type = (unsigned short)get_be(&h, 1);
        e->buf.len = get_be(&h, 4);
        e->buf.base = (uint8_t *)batch + off;
        e->batch = batch;
        off += e->buf.len;
    }
    a->n_entries = (unsigned)n;
    return 0;
}

static int decode_conf(struct rd *r, struct raft_configuration *c)
{
    uint64_t n = get_be(r, 4);
    raft_configuration_init(c);
    if (r->bad || n > r->left / SERVER_HDR)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id = get_be(r, 8);
        uint64_t role = get_be(r, 1);
        uint64_t len = get_be(r, 2);
        const uint8_t *a = get_bytes(r, len);
        char addr[RIO_ADDR_MAX + 1];
        if (r->bad || len == 0 || len > RIO_ADDR_MAX || role > RAFT_SPARE || id == 0)
            return -1;
        memcpy(addr, a, len);
        addr[len] = '\0';
        if (raft_configuration_add(c, id, addr, (int)role) != 0)
            return -1;
    }
    return 0;
}

static int decode_snapshot(struct rd *r, struct raft_install_snapshot *s)
{
    s->term = get_be(r, 8);
    s->last_index = get_be(r, 8);
    s->last_term = get_be(r, 8);
    s->conf_index = get_be(r, 8);
    s->data.base = NULL;
    if (decode_conf(r, &s->conf) != 0)
        return -1;
    uint64_t len = get_be(r, 4);
    const uint8_t *d = get_bytes(r, len);
    if (r->bad)
        return -1;
    s->data.len = len;
    s->data.base = raft_malloc(len ? len : 1);
    if (!s->data.base)
        return -1;
    memcpy(s->data.base, d, len);
    return 0;
}

static int decode_body(struct rd *r, struct raft_message *m)
{
    switch (m->type) {
    case RAFT_IO_REQUEST_VOTE:
        m->request_vote.term = get_be(r, 8);
        m->request_vote.candidate_id = get_be(r, 8);
        m->request_vote.last_log_index = get_be(r, 8);
        m->request_vote.last_log_term = get_be(r, 8);
        m->request_vote.disrupt_leader = get_flag(r);
        m->request_vote.pre_vote = get_flag(r);
        return 0;
    case RAFT_IO_REQUEST_VOTE_RESULT: {
        m->request_vote_result.term = get_be(r, 8);
        m->request_vote_result.vote_granted = get_flag(r);
        uint64_t pv = get_be(r, 1);
        if (pv > raft_tribool_false)
            r->bad = true;
        m->request_vote_result.pre_vote = (raft_tribool)pv;
        return 0;
    }
    case RAFT_IO_APPEND_ENTRIES:
        m->append_entries.term = get_be(r, 8);
        m->append_entries.prev_log_index = get_be(r, 8);
        m->append_entries.prev_log_term = get_be(r, 8);
        m->append_entries.leader_commit = get_be(r, 8);
        return decode_entries(r, &m->append_entries);
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        m->append_entries_result.term = get_be(r, 8);
        m->append_entries_result.rejected = get_be(r, 8);
        m->append_entries_result.last_log_index = get_be(r, 8);
        return 0;
    case RAFT_IO_INSTALL_SNAPSHOT:
        return decode_snapshot(r, &m->install_snapshot);
    case RAFT_IO_TIMEOUT_NOW:
        m->timeout_now.term = get_be(r, 8);
        m->timeout_now.last_log_index = get_be(r, 8);
        m->timeout_now.last_log_term = get_be(r, 8);
        return 0;
    default:
        return -1;
    }
}

static int decode_env(struct rd *r, struct rio_env *env, unsigned *type)
{
    uint64_t format = get_be(r, 1);
    *type = (unsigned)get_be(r, 1);
    env->region_id = get_be(r, 8);
    env->from_id = get_be(r, 8);
    env->to_id = get_be(r, 8);
    uint64_t alen = get_be(r, 2);
    const uint8_t *a = get_bytes(r, alen);
    if (r->bad || format != FORMAT || alen == 0 || alen > RIO_ADDR_MAX)
        return -1;
    memcpy(env->from_addr, a, alen);
    env->from_addr[alen] = '\0';
    if (memchr(env->from_addr, '\0', alen) || env->from_id == 0)
        return -1;
    return 0;
}

int rio_msg_decode(const void *buf, size_t len, struct rio_env *env, struct raft_message *m,
                   char *err, size_t errlen)
{
    struct rd r = {.p = buf, .left = len};
    unsigned type = 0;
    memset(m, 0, sizeof *m);
    if (decode_env(&r, env, &type) != 0 || type < RAFT_IO_APPEND_ENTRIES ||
        type > RAFT_IO_TIMEOUT_NOW) {
        snprintf(err, errlen, "malformed raft message: bad header or type %u", type);
        return -1;
    }
    m->type = (unsigned short)type;
    m->server_id = env->from_id;
    m->server_address = env->from_addr;
    if (decode_body(&r, m) != 0 || r.bad || r.left != 0) {
        rio_msg_discard(m);
        snprintf(err, errlen, "malformed raft message of type %u (%zu bytes)", type, len);
        return -1;
    }
    return 0;
}

void rio_msg_discard(struct raft_message *m)
{
    if (m->type == RAFT_IO_APPEND_ENTRIES && m->append_entries.entries) {
        if (m->append_entries.n_entries > 0)
            raft_free(m->append_entries.entries[0].batch);
        raft_free(m->append_entries.entries);
        m->append_entries.entries = NULL;
        m->append_entries.n_entries = 0;
    } else if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
        m->install_snapshot.data.base = NULL;
    }
}

/* ---- peer check ---- */

static bool raft_cn_ok(const struct rio_policy *p, const char *cn)
{
    return strcmp(cn, RIO_PEER_CN) == 0 || (p->own_cn && strcmp(cn, p->own_cn) == 0);
}

enum rpc_status rio_check_peer(struct rio_policy *p, const struct conn_peer *peer, char *msg,
                               size_t msglen)
{
    if (!peer->tls)
        return RPC_OK; /* a plaintext store: no TLS configured */
    bool listed = p->n_allowed_cn == 0 || tls_cn_allowed(peer->cn, p->allowed_cn, p->n_allowed_cn);
    if (listed && raft_cn_ok(p, peer->cn))
        return RPC_OK;
    if (!listed) {
        if (rpc_cn_refusal(msg, msglen, peer->cn, p->allowed_cn, p->n_allowed_cn) != 0)
            log_debug("raft peer refusal cut to %zu bytes", msglen);
    } else {
        snprintf(msg, msglen, "raft messages are taken only from %s peers, not CN \"%s\"",
                 RIO_PEER_CN, peer->cn);
    }
    if (strcmp(p->last_refused, peer->addr) != 0) {
        log_warnx("refused raft peer %s: CN \"%s\" %s", peer->addr, peer->cn,
                  listed ? "is not a TiKV-Server peer" : "not in cert-allowed-cn");
        snprintf(p->last_refused, sizeof p->last_refused, "%s", peer->addr);
    }
    return RPC_UNAUTHENTICATED;
}

/* ---- the raft_io: state ---- */

enum done_kind { DONE_SEND, DONE_CLOSE };

struct done {
    struct done *next;
    enum done_kind kind;
    void *req;
    void *cb;
    int status;
};

/* One disk job: planned (sealed) on the loop, written by the worker, completed on the loop. */
enum job_kind { JOB_APPEND, JOB_TRUNCATE };

struct job {
    struct job *next;
    enum job_kind kind;
    struct raft_io_append *req; /* append */
    raft_io_append_cb cb;
    struct rstore_write w; /* append: the records; truncate: w.off is where to cut */
    uint64_t first;
    unsigned n;
    int status; /* set by the worker; nonzero before it when planning failed */
};

struct jobq {
    struct job *head, *tail;
};

/* The worker: one thread per rio. Everything in it is under mu, except the thread's own. */
struct worker {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool started, stopping, failed;
    struct jobq todo, done;
    struct rio_stats stats;
    int pipe_rd, pipe_wr;
};

struct peer {
    uint64_t id;
    char addr[RIO_ADDR_MAX + 1];
    struct rpc_client *client;
    enum rio_link link;
    char reason[256];
};

struct rio {
    struct raft_io io;
    struct event_base *base;
    struct rstore *store;
    struct tls_ctx *tls;
    uint64_t region_id;
    uint64_t id;
    char addr[RIO_ADDR_MAX + 1];
    uint64_t term, vote;
    uint64_t rng;
    struct event *tick_ev;
    struct event *done_ev;
    raft_io_tick_cb tick;
    raft_io_recv_cb recv;
    struct done *head, *tail;
    struct event *flush_ev;  /* moves staged jobs to the worker, once per loop turn */
    struct event *notify_ev; /* the worker's completion pipe */
    struct jobq staged;      /* jobs of this loop turn, not yet handed to the worker */
    size_t in_flight;        /* jobs planned and not yet completed on the loop */
    raft_io_close_cb close_cb;
    bool close_pending;
    struct worker wk;
    struct peer *peers;
    size_t n_peers;
    bool started, closing, freeing;
};

/* One send waiting for its answer. */
struct waiting {
    struct rio *rio;
    uint64_t peer_id;
    struct raft_io_send *req;
    raft_io_send_cb cb;
};

static struct rio *rio_of(struct raft_io *io)
{
    return io->impl;
}

static void errmsg(struct raft_io *io, const char *what, const char *err)
{
    snprintf(io->errmsg, sizeof io->errmsg, "%.32s: %.200s", what, err);
}

/* Queues a callback for the loop, after those already queued. -1 on ENOMEM. */
static int defer(struct rio *r, enum done_kind kind, void *req, void *cb, int status)
{
    struct done *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    *d = (struct done){.kind = kind, .req = req, .cb = cb, .status = status};
    if (r->tail)
        r->tail->next = d;
    else
        r->head = d;
    r->tail = d;
    event_active(r->done_ev, EV_TIMEOUT, 1);
    return 0;
}

/* Runs the queued callbacks in order. A close callback is the last one and may free r. */
static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct rio *r = arg;
    (void)fd;
    (void)what;
    while (r->head) {
        struct done *d = r->head;
        r->head = d->next;
        if (!r->head)
            r->tail = NULL;
        enum done_kind kind = d->kind;
        void *req = d->req, *cb = d->cb;
        int status = d->status;
        free(d);
        if (kind == DONE_SEND) {
            ((raft_io_send_cb)cb)(req, status);
        } else {
            ((raft_io_close_cb)cb)(&r->io); /* may free r: nothing after it */
            return;
        }
    }
}

/* ---- the disk worker ---- */

static void jobq_push(struct jobq *q, struct job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
}

static void jobq_free(struct jobq *q)
{
    while (q->head) {
        struct job *j = q->head;
        q->head = j->next;
        free(j->w.buf);
        free(j);
    }
    q->tail = NULL;
}

/* Takes a truncate alone, or every append queued before the next truncate. Under mu. */
static struct job *take_batch(struct worker *wk)
{
    struct job *first = wk->todo.head, *last = first;
    if (first->kind == JOB_APPEND)
        while (last->next && last->next->kind == JOB_APPEND)
            last = last->next;
    wk->todo.head = last->next;
    if (!wk->todo.head)
        wk->todo.tail = NULL;
    last->next = NULL;
    return first;
}

/* Writes a batch (no lock held): appends share one fdatasync; a truncate cuts and fsyncs.
 * Returns the number of syncs done; sets each job's status. */
static unsigned run_batch(struct rstore *store, struct job *batch, bool failed)
{
    char err[256] = "an earlier raft log write failed";
    int rv = failed ? -1 : 0;
    bool wrote = false;
    for (struct job *j = batch; j && rv == 0; j = j->next) {
        errno = 0;
        if (j->kind == JOB_TRUNCATE)
            rv = rstore_cut(store, j->w.off, err, sizeof err);
        else if (j->status == 0)
            rv = rstore_write_at(store, &j->w, err, sizeof err), wrote = true;
    }
    if (rv == 0 && wrote)
        rv = rstore_sync(store, err, sizeof err);
    for (struct job *j = batch; j; j = j->next)
        if (j->status == 0)
            j->status = rv == 0 ? 0 : RAFT_IOERR;
    if (rv != 0 && !failed)
        log_error("raft log write: %s", err);
    return rv == 0 && (batch->kind == JOB_TRUNCATE || wrote) ? 1 : 0;
}

static void *worker_main(void *arg)
{
    struct rio *r = arg;
    struct worker *wk = &r->wk;
    pthread_mutex_lock(&wk->mu);
    for (;;) {
        while (!wk->todo.head && !wk->stopping)
            pthread_cond_wait(&wk->cv, &wk->mu);
        if (!wk->todo.head)
            break;
        struct job *batch = take_batch(wk);
        bool failed = wk->failed;
        pthread_mutex_unlock(&wk->mu);
        unsigned syncs = run_batch(r->store, batch, failed);
        pthread_mutex_lock(&wk->mu);
        wk->stats.syncs += syncs;
        for (struct job *j = batch, *next; j; j = next) {
            next = j->next;
            if (j->status != 0)
                wk->failed = true;
            else if (j->kind == JOB_APPEND)
                wk->stats.appends++;
            else
                wk->stats.truncates++;
            jobq_push(&wk->done, j);
        }
        char one = 1;
        if (write(wk->pipe_wr, &one, 1) < 0 && errno != EAGAIN)
            log_warn("raft log worker: cannot wake the event loop");
    }
    pthread_mutex_unlock(&wk->mu);
    return NULL;
}

/* Stops the worker once its queue is written (it drains before it exits). */
static void worker_stop(struct worker *wk)
{
    if (!wk->started)
        return;
    pthread_mutex_lock(&wk->mu);
    wk->stopping = true;
    pthread_cond_signal(&wk->cv);
    pthread_mutex_unlock(&wk->mu);
    pthread_join(wk->thread, NULL);
    wk->started = false;
}

/* Hands this loop turn's jobs to the worker, in order. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct rio *r = arg;
    (void)fd;
    (void)what;
    if (!r->staged.head)
        return;
    pthread_mutex_lock(&r->wk.mu);
    if (r->wk.todo.tail)
        r->wk.todo.tail->next = r->staged.head;
    else
        r->wk.todo.head = r->staged.head;
    r->wk.todo.tail = r->staged.tail;
    pthread_cond_signal(&r->wk.cv);
    pthread_mutex_unlock(&r->wk.mu);
    r->staged.head = r->staged.tail = NULL;
}

static void stage(struct rio *r, struct job *j)
{
    jobq_push(&r->staged, j);
    r->in_flight++;
    event_active(r->flush_ev, EV_TIMEOUT, 1);
}

/* Once closing and every job completed: join the worker, then the close callback (deferred). */
static void maybe_finish_close(struct rio *r)
{
    if (!r->close_pending || r->in_flight > 0)
        return;
    r->close_pending = false;
    worker_stop(&r->wk);
    if (r->close_cb && defer(r, DONE_CLOSE, NULL, (void *)r->close_cb, 0) != 0)
        log_error("raft close: out of memory for its callback");
}

/* Completions from the worker: append callbacks in submission order. */
static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    struct rio *r = arg;
    (void)what;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    pthread_mutex_lock(&r->wk.mu);
    struct job *j = r->wk.done.head;
    r->wk.done.head = r->wk.done.tail = NULL;
    pthread_mutex_unlock(&r->wk.mu);
    while (j) {
        struct job *next = j->next;
        r->in_flight--;
        if (j->kind == JOB_APPEND)
            j->cb(j->req, j->status);
        free(j->w.buf);
        free(j);
        j = next;
    }
    maybe_finish_close(r);
}

static int worker_start(struct rio *r, char *err, size_t errlen)
{
    struct worker *wk = &r->wk;
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "raft io: pipe: %s", strerror(errno));
        return -1;
    }
    wk->pipe_rd = fds[0];
    wk->pipe_wr = fds[1];
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFL, O_NONBLOCK) != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            snprintf(err, errlen, "raft io: pipe flags: %s", strerror(errno));
            return -1;
        }
    r->notify_ev = event_new(r->base, wk->pipe_rd, EV_READ | EV_PERSIST, on_notify, r);
    r->flush_ev = event_new(r->base, -1, 0, on_flush, r);
    if (!r->notify_ev || !r->flush_ev || event_add(r->notify_ev, NULL) != 0) {
        snprintf(err, errlen, "raft io: cannot watch the worker's pipe");
        return -1;
    }
    int rc = pthread_create(&wk->thread, NULL, worker_main, r);
    if (rc != 0) {
        snprintf(err, errlen, "raft io: cannot start the log worker: %s", strerror(rc));
        return -1;
    }
    wk->started = true;
    return 0;
}

/* ---- init, load, bootstrap, meta ---- */

static int io_init(struct raft_io *io, raft_id id, const char *address)
{
    struct rio *r = rio_of(io);
    if (strlen(address) == 0 || strlen(address) > RIO_ADDR_MAX) {
        errmsg(io, "init", "address empty or too long");
        return RAFT_INVALID;
    }
    r->id = id;
    snprintf(r->addr, sizeof r->addr, "%s", address);
    return 0;
}

static int io_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                   struct raft_snapshot **snapshot, raft_index *start, struct raft_entry *entries[],
                   size_t *n)
{
    struct rio *r = rio_of(io);
    char err[256];
    uint64_t t, v, s;
    if (rstore_load(r->store, &t, &v, &s, entries, n, err, sizeof err) != 0) {
        errmsg(io, "load", err);
        return RAFT_IOERR;
    }
    r->term = t;
    r->vote = v;
    *term = t;
    *voted_for = v;
    *start = s;
    *snapshot = NULL;
    return 0;
}

static int io_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
    struct rio *r = rio_of(io);
    char err[256];
    if (r->term != 0 || rstore_last_index(r->store) != 0)
        return RAFT_CANTBOOTSTRAP;
    struct raft_entry e = {.term = 1, .type = RAFT_CHANGE};
    int rv = raft_configuration_encode(conf, &e.buf);
    if (rv != 0)
        return rv;
    int fail = rstore_set_meta(r->store, 1, 0, err, sizeof err) != 0 ||
               rstore_append(r->store, 1, &e, 1, err, sizeof err) != 0 ||
               rstore_sync(r->store, err, sizeof err) != 0;
    raft_free(e.buf.base);
    if (fail) {
        errmsg(io, "bootstrap", err);
        return RAFT_IOERR;
    }
    r->term = 1;
    r->vote = 0;
    return 0;
}

static int io_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    (void)conf;
    errmsg(io, "recover", "not supported");
    return RAFT_NOTFOUND;
}

/* Synchronous on the loop, on purpose: libraft 0.15 sends the RequestVote or the vote reply
 * right after set_term/set_vote return, so they must be durable by then. They happen once per
 * election (the meta file is one small record), and the worker never touches the meta file,
 * so this waits only on its own fsync, never behind queued log writes. The version that never
 * blocks (queue it, hold later sends until the worker confirms) is not built yet. */
static int set_meta(struct raft_io *io, uint64_t term, uint64_t vote)
{
    struct rio *r = rio_of(io);
    char err[256];
    if (rstore_set_meta(r->store, term, vote, err, sizeof err) != 0) {
        errmsg(io, "set term/vote", err);
        return RAFT_IOERR;
    }
    r->term = term;
    r->vote = vote;
    return 0;
}

static int io_set_term(struct raft_io *io, raft_term term)
{
    return set_meta(io, term, 0);
}

static int io_set_vote(struct raft_io *io, raft_id id)
{
    return set_meta(io, rio_of(io)->term, id);
}

/* ---- log ---- */

/* Seals the entries now (raft keeps them alive only until cb) and queues the write; the worker
 * writes and fdatasyncs them, with every append queued meanwhile (group commit). */
static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct rio *r = rio_of(io);
    char err[256];
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return RAFT_NOMEM;
    *j = (struct job){.kind = JOB_APPEND, .req = req, .cb = cb, .n = n,
                      .first = rstore_last_index(r->store) + 1};
    if (rstore_plan_append(r->store, j->first, entries, n, &j->w, err, sizeof err) != 0) {
        log_error("raft log append of %u entries at %" PRIu64 ": %s", n, j->first, err);
        j->status = RAFT_IOERR; /* reported in order, after the appends before it */
    }
    stage(r, j);
    return 0;
}

/* Plans the cut now (later appends go after it) and queues it behind every earlier append. */
static int io_truncate(struct raft_io *io, raft_index index)
{
    struct rio *r = rio_of(io);
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        errmsg(io, "truncate", "out of memory");
        return RAFT_NOMEM;
    }
    j->kind = JOB_TRUNCATE;
    if (rstore_plan_truncate(r->store, index, &j->w.off) == 0) {
        free(j); /* nothing at or after index */
        return 0;
    }
    stage(r, j);
    return 0;
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing,
                           struct raft_io_snapshot_put *req, const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb)
{
    (void)trailing;
    (void)req;
    (void)snapshot;
    (void)cb;
    errmsg(io, "snapshot_put", "snapshots are not supported yet");
    return RAFT_NOTFOUND;
}

static int io_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
    (void)req;
    (void)cb;
    errmsg(io, "snapshot_get", "snapshots are not supported yet");
    return RAFT_NOTFOUND;
}

/* ---- clock ---- */

static raft_time io_time(struct raft_io *io)
{
    (void)io;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (raft_time)ts.tv_sec * 1000 + (raft_time)(ts.tv_nsec / 1000000);
}

static uint64_t next_random(struct rio *r)
{
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 0x2545F4914F6CDD1DULL;
}

static int io_random(struct raft_io *io, int min, int max)
{
    if (max <= min)
        return min;
    return min + (int)(next_random(rio_of(io)) % (uint64_t)(max - min));
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct rio *r = arg;
    (void)fd;
    (void)what;
    if (r->tick && !r->closing)
        r->tick(&r->io);
}

static int io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv)
{
    struct rio *r = rio_of(io);
    struct timeval tv = {.tv_sec = msecs / 1000, .tv_usec = (msecs % 1000) * 1000};
    r->tick = tick;
    r->recv = recv;
    r->tick_ev = event_new(r->base, -1, EV_PERSIST, on_tick, r);
    if (!r->tick_ev || event_add(r->tick_ev, &tv) != 0) {
        errmsg(io, "start", "cannot arm the tick timer");
        return RAFT_NOMEM;
    }
    r->started = true;
    return 0;
}

/* ---- send ---- */

static struct peer *find_peer(struct rio *r, uint64_t id)
{
    for (size_t i = 0; i < r->n_peers; i++)
        if (r->peers[i].id == id)
            return &r->peers[i];
    return NULL;
}

static void set_link(struct rio *r, struct peer *p, enum rio_link link, const char *reason)
{
    if (p->link == link && strcmp(p->reason, reason) == 0)
        return;
    p->link = link;
    snprintf(p->reason, sizeof p->reason, "%s", reason);
    if (link == RIO_LINK_UP)
        log_info("raft link to store %" PRIu64 " (%s) up", p->id, p->addr);
    else if (!r->closing)
        log_warnx("raft link to store %" PRIu64 " (%s) %s: %s", p->id, p->addr,
                  rio_link_name(link), reason);
}

/* The peer for id at addr, with a client (replaced when the address changed). */
static struct peer *get_peer(struct rio *r, uint64_t id, const char *addr)
{
    struct peer *p = find_peer(r, id);
    if (p && strcmp(p->addr, addr) != 0) {
        rpc_client_free(p->client);
        p->client = NULL;
        snprintf(p->addr, sizeof p->addr, "%s", addr);
    }
    if (!p) {
        struct peer *more = realloc(r->peers, (r->n_peers + 1) * sizeof *more);
        if (!more)
            return NULL;
        r->peers = more;
        p = &r->peers[r->n_peers++];
        *p = (struct peer){.id = id};
        snprintf(p->addr, sizeof p->addr, "%s", addr);
    }
    if (!p->client) {
        char host[RIO_ADDR_MAX + 1];
        snprintf(host, sizeof host, "%s", addr);
        char *colon = strrchr(host, ':');
        int port = colon ? atoi(colon + 1) : 0;
        if (!colon || port <= 0 || port > 65535)
            return NULL;
        *colon = '\0';
        p->client = rpc_client_new(r->base, host, port, r->tls, RIO_CALL_TIMEOUT_MS);
    }
    return p->client ? p : NULL;
}

static void on_answer(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct waiting *w = arg;
    struct rio *r = w->rio;
    int status = 0;
    struct peer *p = find_peer(r, w->peer_id);
    if (!resp) {
        status = RAFT_NOCONNECTION;
        if (p)
            set_link(r, p, RIO_LINK_DOWN, err);
    } else if (resp->status != RPC_OK) {
        char msg[256];
        rpc_frame_message(resp, msg, sizeof msg);
        status = RAFT_NOCONNECTION;
        if (p)
            set_link(r, p, resp->status == RPC_UNAUTHENTICATED ? RIO_LINK_REFUSED : RIO_LINK_DOWN,
                     msg);
    } else if (p) {
        set_link(r, p, RIO_LINK_UP, "");
    }
    if (r->closing)
        status = RAFT_CANCELED;
    if (!r->freeing && defer(r, DONE_SEND, w->req, (void *)w->cb, status) != 0)
        log_error("raft send: out of memory for its callback");
    free(w);
}

/* Hands the encoded message to the peer's client; -1 when it cannot even be queued. */
static int send_encoded(struct rio *r, const struct raft_message *m, struct waiting *w,
                        const uint8_t *buf, size_t len)
{
    char err[RPC_ERR_LEN];
    struct peer *p = get_peer(r, m->server_id, m->server_address);
    if (!p || rpc_client_pending(p->client) >= RIO_MAX_WAITING)
        return -1;
    struct rpc_buf arg = {.data = buf, .len = len};
    if (rpc_client_call(p->client, RIO_METHOD, &arg, 1, RIO_CALL_TIMEOUT_MS, on_answer, w, err,
                        sizeof err) != 0) {
        log_warnx("raft send to store %" PRIu64 ": %s", (uint64_t)m->server_id, err);
        return -1;
    }
    return 0;
}

static int io_send(struct raft_io *io, struct raft_io_send *req, const struct raft_message *m,
                   raft_io_send_cb cb)
{
    struct rio *r = rio_of(io);
    struct rio_env env = {.region_id = r->region_id, .from_id = r->id, .to_id = m->server_id};
    snprintf(env.from_addr, sizeof env.from_addr, "%s", r->addr);
    char err[256];
    uint8_t *buf = NULL;
    size_t len = 0;
    unsigned k = 0;
    struct waiting *w = malloc(sizeof *w);
    if (!w)
        return RAFT_NOMEM;
    *w = (struct waiting){.rio = r, .peer_id = m->server_id, .req = req, .cb = cb};
    int sent = -1;
    if (r->closing) {
        errmsg(io, "send", "closing");
    } else if (rio_msg_encode(&env, m, RPC_MAX_BODY - RPC_OVERHEAD, &buf, &len, &k, err,
                              sizeof err) != 0) {
        log_warnx("raft send to store %" PRIu64 ": %s", (uint64_t)m->server_id, err);
    } else {
        sent = send_encoded(r, m, w, buf, len);
    }
    free(buf);
    if (sent == 0)
        return 0;
    free(w);
    if (defer(r, DONE_SEND, req, (void *)cb, r->closing ? RAFT_CANCELED : RAFT_NOCONNECTION) != 0)
        return RAFT_NOMEM;
    return 0;
}

/* ---- receive ---- */

void rio_rpc_handler(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct rio *r = arg;
    char err[256];
    struct rio_env env;
    struct raft_message m;
    if (req->nfields != 1 ||
        rio_msg_decode(req->fields[0].data, req->fields[0].len, &env, &m, err, sizeof err) != 0) {
        if (req->nfields != 1)
            snprintf(err, sizeof err, "raft_message takes 1 argument, not %zu", req->nfields);
        rpc_reply(call, RPC_BAD_REQUEST, err, NULL, 0);
        return;
    }
    if (!r->started || r->closing || env.region_id != r->region_id || env.to_id != r->id) {
        snprintf(err, sizeof err, "no raft peer %" PRIu64 " of region %" PRIu64 " here",
                 env.to_id, env.region_id);
        rio_msg_discard(&m);
        rpc_reply(call, RPC_NOT_FOUND, err, NULL, 0);
        return;
    }
    rpc_reply(call, RPC_OK, NULL, NULL, 0);
    r->recv(&r->io, &m); /* raft owns the entries, batch, conf and data now */
}

/* ---- close, new, free ---- */

static void free_clients(struct rio *r)
{
    for (size_t i = 0; i < r->n_peers; i++) {
        rpc_client_free(r->peers[i].client); /* fails its waiting sends: deferred */
        r->peers[i].client = NULL;
    }
}

/* Stops the timer and the clients; the queued disk jobs finish (their callbacks fire), the
 * worker is joined, then cb runs from the loop. */
static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct rio *r = rio_of(io);
    r->closing = true;
    if (r->tick_ev)
        event_del(r->tick_ev);
    free_clients(r);
    r->close_cb = cb;
    r->close_pending = true;
    maybe_finish_close(r);
}

static void set_io(struct raft_io *io, struct rio *r)
{
    io->version = 1;
    io->impl = r;
    io->init = io_init;
    io->close = io_close;
    io->load = io_load;
    io->start = io_start;
    io->bootstrap = io_bootstrap;
    io->recover = io_recover;
    io->set_term = io_set_term;
    io->set_vote = io_set_vote;
    io->send = io_send;
    io->append = io_append;
    io->truncate = io_truncate;
    io->snapshot_put = io_snapshot_put;
    io->snapshot_get = io_snapshot_get;
    io->time = io_time;
    io->random = io_random;
}

struct rio *rio_new(const struct rio_opts *opts, struct rstore *store, char *err,
                    size_t errlen)
{
    struct rio *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "raft io: out of memory");
        rstore_close(store);
        return NULL;
    }
    r->base = opts->base;
    r->store = store;
    r->wk.pipe_rd = r->wk.pipe_wr = -1;
    pthread_mutex_init(&r->wk.mu, NULL);
    pthread_cond_init(&r->wk.cv, NULL);
    r->done_ev = event_new(opts->base, -1, 0, on_done, r);
    if (!r->done_ev) {
        snprintf(err, errlen, "raft io: out of memory");
        rio_free(r);
        return NULL;
    }
    if (worker_start(r, err, errlen) != 0) {
        rio_free(r);
        return NULL;
    }
    r->tls = opts->client_tls;
    r->region_id = opts->region_id;
    r->rng = opts->seed;
    if (r->rng == 0 && getrandom(&r->rng, sizeof r->rng, 0) != (ssize_t)sizeof r->rng)
        r->rng = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)r;
    if (r->rng == 0)
        r->rng = 0x9E3779B97F4A7C15ULL;
    set_io(&r->io, r);
    return r;
}

struct raft_io *rio_raft_io(struct rio *io)
{
    return &io->io;
}

void rio_free(struct rio *r)
{
    if (!r)
        return;
    r->freeing = true;
    r->closing = true;
    free_clients(r);
    while (r->head) {
        struct done *d = r->head;
        r->head = d->next;
        free(d);
    }
    worker_stop(&r->wk); /* writes what it was given; staged jobs are dropped */
    jobq_free(&r->staged);
    jobq_free(&r->wk.todo);
    jobq_free(&r->wk.done);
    if (r->tick_ev)
        event_free(r->tick_ev);
    if (r->done_ev)
        event_free(r->done_ev);
    if (r->flush_ev)
        event_free(r->flush_ev);
    if (r->notify_ev)
        event_free(r->notify_ev);
    if (r->wk.pipe_rd >= 0)
        close(r->wk.pipe_rd);
    if (r->wk.pipe_wr >= 0)
        close(r->wk.pipe_wr);
    pthread_cond_destroy(&r->wk.cv);
    pthread_mutex_destroy(&r->wk.mu);
    free(r->peers);
    rstore_close(r->store);
    free(r);
}

void rio_get_stats(struct rio *r, struct rio_stats *out)
{
    pthread_mutex_lock(&r->wk.mu);
    *out = r->wk.stats;
    pthread_mutex_unlock(&r->wk.mu);
}

size_t rio_links(const struct rio *r, struct rio_link_info *out, size_t max)
{
    size_t n = 0;
    for (; n < r->n_peers && n < max; n++) {
        out[n] = (struct rio_link_info){.id = r->peers[n].id, .link = r->peers[n].link};
        snprintf(out[n].addr, sizeof out[n].addr, "%s", r->peers[n].addr);
        snprintf(out[n].reason, sizeof out[n].reason, "%s", r->peers[n].reason);
    }
    return n;
}

const char *rio_link_name(enum rio_link l)
{
    switch (l) {
    case RIO_LINK_UP:
        return "up";
    case RIO_LINK_DOWN:
        return "down";
    case RIO_LINK_REFUSED:
        return "refused";
    default:
        return "none";
    }
}
