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
 * and rio's own types, for an InstallSnapshot too big for one RPC body:
 *   SnapshotChunk (100): u64 transfer id, u64 offset, u64 total length, u32 len, len bytes
 *   SnapshotDone (101):  the InstallSnapshot's term, last_index, last_term, conf_index, conf
 *                        (as above), u64 transfer id, u64 total length (the data: the chunks)
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
#define RIO_CHUNK_TIMEOUT_MS 30000 /* a chunk waits behind the one before it */

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

/* ---- snapshot chunks ---- */

static void put_env(struct wr *w, const struct rio_env *env, unsigned type)
{
    size_t alen = strlen(env->from_addr);
    put_u8(w, FORMAT);
    put_u8(w, (uint8_t)type);
    put_be(w, env->region_id, 8);
    put_be(w, env->from_id, 8);
    put_be(w, env->to_id, 8);
    put_be(w, alen, 2);
    put_bytes(w, env->from_addr, alen);
}

static int env_ok(const struct rio_env *env, char *err, size_t errlen)
{
    size_t alen = strlen(env->from_addr);
    if (alen == 0 || alen > RIO_ADDR_MAX) {
        snprintf(err, errlen, "raft message: address of %zu bytes", alen);
        return -1;
    }
    return 0;
}

unsigned rio_msg_type(const void *buf, size_t len)
{
    return len >= 2 ? ((const uint8_t *)buf)[1] : 0;
}

int rio_chunk_encode(const struct rio_env *env, const struct rio_chunk *c, uint8_t **out,
                     size_t *len, char *err, size_t errlen)
{
    if (env_ok(env, err, errlen) != 0)
        return -1;
    struct wr w = {.p = malloc(ENV_LEN + strlen(env->from_addr) + 3 * 8 + 4 + c->len), .n = 0};
    if (!w.p) {
        snprintf(err, errlen, "snapshot chunk: out of memory");
        return -1;
    }
    put_env(&w, env, RIO_MSG_CHUNK);
    put_be(&w, c->xfer, 8);
    put_be(&w, c->off, 8);
    put_be(&w, c->total, 8);
    put_be(&w, c->len, 4);
    put_bytes(&w, c->data, c->len);
    *out = w.p;
    *len = w.n;
    return 0;
}

int rio_chunk_decode(const void *buf, size_t len, struct rio_env *env, struct rio_chunk *c,
                     char *err, size_t errlen)
{
    struct rd r = {.p = buf, .left = len};
    unsigned type = 0;
    int rv = decode_env(&r, env, &type);
    c->xfer = get_be(&r, 8);
    c->off = get_be(&r, 8);
    c->total = get_be(&r, 8);
    c->len = get_be(&r, 4);
    c->data = get_bytes(&r, c->len);
    if (rv != 0 || type != RIO_MSG_CHUNK || r.bad || r.left != 0 || c->off > c->total ||
        c->total - c->off < c->len) {
        snprintf(err, errlen, "malformed snapshot chunk (%zu bytes)", len);
        return -1;
    }
    return 0;
}

int rio_done_encode(const struct rio_env *env, const struct raft_message *m, uint64_t xfer,
                    uint8_t **out, size_t *len, char *err, size_t errlen)
{
    const struct raft_install_snapshot *s = &m->install_snapshot;
    if (env_ok(env, err, errlen) != 0)
        return -1;
    size_t size = ENV_LEN + strlen(env->from_addr) + 4 * 8 + conf_size(&s->conf) + 2 * 8;
    struct wr w = {.p = size <= RPC_MAX_BODY / 2 ? malloc(size) : NULL, .n = 0};
    if (!w.p) {
        snprintf(err, errlen, "snapshot done: %s", size > RPC_MAX_BODY / 2
                                                       ? "configuration too large"
                                                       : "out of memory");
        return -1;
    }
    put_env(&w, env, RIO_MSG_DONE);
    put_be(&w, s->term, 8);
    put_be(&w, s->last_index, 8);
    put_be(&w, s->last_term, 8);
    put_be(&w, s->conf_index, 8);
    encode_conf(&w, &s->conf);
    put_be(&w, xfer, 8);
    put_be(&w, s->data.len, 8);
    *out = w.p;
    *len = w.n;
    return 0;
}

int rio_done_decode(const void *buf, size_t len, struct rio_env *env, struct raft_message *m,
                    uint64_t *xfer, uint64_t *total, char *err, size_t errlen)
{
    struct rd r = {.p = buf, .left = len};
    unsigned type = 0;
    memset(m, 0, sizeof *m);
    m->type = RAFT_IO_INSTALL_SNAPSHOT;
    struct raft_install_snapshot *s = &m->install_snapshot;
    raft_configuration_init(&s->conf);
    int rv = decode_env(&r, env, &type);
    s->term = get_be(&r, 8);
    s->last_index = get_be(&r, 8);
    s->last_term = get_be(&r, 8);
    s->conf_index = get_be(&r, 8);
    if (rv == 0 && type == RIO_MSG_DONE && !r.bad)
        rv = decode_conf(&r, &s->conf);
    else
        rv = -1;
    *xfer = get_be(&r, 8);
    *total = get_be(&r, 8);
    if (rv != 0 || r.bad || r.left != 0) {
        raft_configuration_close(&s->conf);
        snprintf(err, errlen, "malformed snapshot done message (%zu bytes)", len);
        return -1;
    }
    m->server_id = env->from_id;
    m->server_address = env->from_addr;
    return 0;
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
enum job_kind { JOB_APPEND, JOB_TRUNCATE, JOB_SNAP_PUT, JOB_SNAP_GET };

struct job {
    struct job *next;
    enum job_kind kind;
    struct raft_io_append *req; /* append */
    raft_io_append_cb cb;
    struct rstore_write w; /* append: the records; truncate: w.off is where to cut */
    uint64_t first;
    unsigned n;
    int status; /* set by the worker; nonzero before it when planning failed */
    /* snapshot put: raft's snapshot (its buffers unchanged until put_cb) and the plan */
    struct raft_io_snapshot_put *put_req;
    raft_io_snapshot_put_cb put_cb;
    const struct raft_snapshot *snap;
    unsigned trailing;
    struct rstore_snap_job sj;
    uint64_t log_start; /* the log's first index once planned (for the log line) */
    /* snapshot get: what the worker read */
    struct raft_io_snapshot_get *get_req;
    raft_io_snapshot_get_cb get_cb;
    struct raft_snapshot *got;
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

/* A snapshot being received in chunks from one peer. */
struct assembly {
    uint64_t from, xfer, total, got;
    uint8_t *buf; /* raft_malloc'd; NULL: a free slot */
    raft_time last;
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
    size_t chunk;                 /* snapshot data per chunk */
    uint64_t next_xfer;           /* transfer ids */
    struct assembly asm_[RIO_MAX_ASSEMBLIES];
    struct rio_stats net;         /* the loop's counters (snapshots sent and received) */
};

/* One send waiting for its answer. */
struct waiting {
    struct rio *rio;
    uint64_t peer_id;
    struct raft_io_send *req;
    raft_io_send_cb cb;
    bool snapshot; /* an InstallSnapshot (or the DONE of a chunked one) */
};

/* An InstallSnapshot sent in chunks: raft's data stays valid until the send callback. */
struct xfer {
    struct rio *rio;
    uint64_t peer_id, id;
    char addr[RIO_ADDR_MAX + 1];
    struct raft_io_send *req;
    raft_io_send_cb cb;
    const uint8_t *data;
    size_t len, next, acked; /* bytes: in the snapshot, sent, answered OK */
    unsigned in_flight;
    bool failed;
    uint8_t *done; /* the DONE message, encoded when the send was made */
    size_t done_len;
};

/* One chunk waiting for its answer. */
struct chunk_call {
    struct xfer *x;
    size_t len;
};

static struct rio *rio_of(struct raft_io *io)
{
    return io->impl;
}

static void errmsg(struct raft_io *io, const char *what, const char *err)
{
    snprintf(io->errmsg, sizeof io->errmsg, "%.32s: %.200s", what, err);
}

static int defer(struct rio *r, enum done_kind kind, void *req, void *cb, int status);

/* A send that never left: its callback, on the loop. */
static int defer_failed_send(struct rio *r, struct raft_io_send *req, raft_io_send_cb cb)
{
    if (defer(r, DONE_SEND, req, (void *)cb, r->closing ? RAFT_CANCELED : RAFT_NOCONNECTION))
        return RAFT_NOMEM;
    return 0;
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

static void job_free(struct job *j)
{
    free(j->w.buf);
    rstore_snap_job_free(&j->sj);
    rstore_snapshot_free(j->got);
    free(j);
}

static void jobq_free(struct jobq *q)
{
    while (q->head) {
        struct job *j = q->head;
        q->head = j->next;
        job_free(j);
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

/* A snapshot job, alone in its batch: a put writes the snapshot and compacts the log (not
 * after a failed write: the files are behind the plan); a get reads the latest snapshot. */
static void run_snapshot_job(struct rstore *store, struct job *j, bool failed)
{
    char err[256] = "an earlier raft log write failed";
    int rv = j->status != 0 ? -1 : 0;
    if (j->kind == JOB_SNAP_GET)
        rv = rstore_snapshot_get(store, &j->got, err, sizeof err);
    else if (rv == 0 && !failed)
        rv = rstore_put_snapshot(store, &j->sj, j->snap->bufs, j->snap->n_bufs, err,
                                 sizeof err);
    else
        rv = -1;
    if (rv != 0 && j->status == 0)
        j->status = RAFT_IOERR;
    if (rv != 0 && (!failed || j->kind == JOB_SNAP_GET))
        log_error("raft snapshot %s: %s", j->kind == JOB_SNAP_GET ? "read" : "write", err);
}

/* Writes a batch (no lock held): appends share one fdatasync; a truncate cuts and fsyncs.
 * Returns the number of syncs done; sets each job's status. */
static unsigned run_batch(struct rstore *store, struct job *batch, bool failed)
{
    if (batch->kind == JOB_SNAP_PUT || batch->kind == JOB_SNAP_GET) {
        run_snapshot_job(store, batch, failed);
        return 0;
    }
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

static void count_job(struct rio_stats *st, enum job_kind kind)
{
    switch (kind) {
    case JOB_APPEND:
        st->appends++;
        break;
    case JOB_TRUNCATE:
        st->truncates++;
        break;
    case JOB_SNAP_PUT:
        st->snapshot_puts++;
        break;
    default:
        st->snapshot_gets++;
        break;
    }
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
            if (j->status != 0 && j->kind != JOB_SNAP_GET) /* a failed read changes nothing */
                wk->failed = true;
            else if (j->status == 0)
                count_job(&wk->stats, j->kind);
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

static void log_snapshot_put(const struct job *j)
{
    size_t bytes = 0;
    for (unsigned i = 0; i < j->snap->n_bufs; i++)
        bytes += j->snap->bufs[i].len;
    if (j->trailing == 0)
        log_info("raft: installed a snapshot from the leader at index %" PRIu64 " (term %"
                 PRIu64 ", %zu bytes); the log starts after it", j->sj.index, j->sj.term, bytes);
    else
        log_info("raft: snapshot at index %" PRIu64 " written (%zu bytes); log compacted to "
                 "start at %" PRIu64, j->sj.index, bytes, j->log_start);
}

/* Runs a finished job's callback (raft may free the snapshot it put: the job's last use). */
static void complete_job(struct job *j)
{
    switch (j->kind) {
    case JOB_APPEND:
        j->cb(j->req, j->status);
        break;
    case JOB_SNAP_PUT:
        if (j->status == 0)
            log_snapshot_put(j);
        j->put_cb(j->put_req, j->status);
        break;
    case JOB_SNAP_GET: {
        struct raft_snapshot *got = j->got;
        j->got = NULL;
        j->get_cb(j->get_req, j->status == 0 ? got : NULL, j->status);
        if (j->status != 0)
            rstore_snapshot_free(got);
        break;
    }
    default:
        break;
    }
}

/* Completions from the worker: callbacks in submission order. */
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
        complete_job(j);
        job_free(j);
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
    struct raft_snapshot *snap = NULL;
    if (rstore_snapshot_get(r->store, &snap, err, sizeof err) != 0) {
        raft_free(*n ? (*entries)[0].batch : NULL);
        raft_free(*entries);
        errmsg(io, "load", err);
        return RAFT_IOERR;
    }
    r->term = t;
    r->vote = v;
    *term = t;
    *voted_for = v;
    *start = s;
    *snapshot = snap;
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

/* Plans the snapshot now (the log index drops what it covers; later appends go after it) and
 * queues its write behind every earlier append and truncate. */
static int io_snapshot_put(struct raft_io *io, unsigned trailing,
                           struct raft_io_snapshot_put *req, const struct raft_snapshot *snapshot,
                           raft_io_snapshot_put_cb cb)
{
    struct rio *r = rio_of(io);
    char err[256];
    if (r->closing) {
        errmsg(io, "snapshot_put", "closing");
        return RAFT_CANCELED;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return RAFT_NOMEM;
    *j = (struct job){.kind = JOB_SNAP_PUT, .put_req = req, .put_cb = cb, .snap = snapshot,
                      .trailing = trailing};
    if (rstore_plan_snapshot(r->store, trailing, snapshot, &j->sj, err, sizeof err) != 0) {
        log_error("raft snapshot at %" PRIu64 ": %s", (uint64_t)snapshot->index, err);
        j->status = RAFT_IOERR; /* reported in order, after the jobs before it */
    }
    j->log_start = rstore_first_index(r->store);
    stage(r, j);
    return 0;
}

/* Queued behind every earlier put, so it reads the latest snapshot. */
static int io_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
    struct rio *r = rio_of(io);
    if (r->closing) {
        errmsg(io, "snapshot_get", "closing");
        return RAFT_CANCELED;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j)
        return RAFT_NOMEM;
    *j = (struct job){.kind = JOB_SNAP_GET, .get_req = req, .get_cb = cb};
    stage(r, j);
    return 0;
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

static void expire_assemblies(struct rio *r);

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct rio *r = arg;
    (void)fd;
    (void)what;
    if (r->tick && !r->closing) {
        expire_assemblies(r);
        r->tick(&r->io);
    }
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

/* Records what an answer says about the link; the raft status it means for the send. */
static int answer_status(struct rio *r, uint64_t peer_id, const struct rpc_frame *resp,
                         const char *err)
{
    struct peer *p = find_peer(r, peer_id);
    int status = 0;
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
    return r->closing ? RAFT_CANCELED : status;
}

static void on_answer(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct waiting *w = arg;
    struct rio *r = w->rio;
    int status = answer_status(r, w->peer_id, resp, err);
    if (status == 0 && w->snapshot)
        r->net.snapshots_sent++;
    if (!r->freeing && defer(r, DONE_SEND, w->req, (void *)w->cb, status) != 0)
        log_error("raft send: out of memory for its callback");
    free(w);
}

/* Queues one encoded message to a peer; -1 when it cannot even be queued. */
static int call_peer(struct rio *r, uint64_t id, const char *addr, const uint8_t *buf,
                     size_t len, int timeout_ms, rpc_reply_cb cb, void *arg)
{
    char err[RPC_ERR_LEN];
    struct peer *p = get_peer(r, id, addr);
    if (!p || rpc_client_pending(p->client) >= RIO_MAX_WAITING)
        return -1;
    struct rpc_buf a = {.data = buf, .len = len};
    if (rpc_client_call(p->client, RIO_METHOD, &a, 1, timeout_ms, cb, arg, err, sizeof err) != 0) {
        log_warnx("raft send to store %" PRIu64 ": %s", id, err);
        return -1;
    }
    return 0;
}

/* ---- send: a snapshot in chunks ---- */

static void xfer_free(struct xfer *x)
{
    free(x->done);
    free(x);
}

/* The transfer failed (or rio closes): the send's callback, once no chunk is in flight. */
static void xfer_fail(struct xfer *x)
{
    struct rio *r = x->rio;
    x->failed = true;
    if (x->in_flight > 0)
        return;
    if (!r->freeing &&
        defer(r, DONE_SEND, x->req, (void *)x->cb, r->closing ? RAFT_CANCELED : RAFT_NOCONNECTION))
        log_error("raft send: out of memory for its callback");
    xfer_free(x);
}

static void on_chunk_answer(const struct rpc_frame *resp, const char *err, void *arg);

static int send_chunk(struct xfer *x)
{
    struct rio *r = x->rio;
    struct rio_env env = {.region_id = r->region_id, .from_id = r->id, .to_id = x->peer_id};
    snprintf(env.from_addr, sizeof env.from_addr, "%s", r->addr);
    size_t n = x->len - x->next < r->chunk ? x->len - x->next : r->chunk;
    struct rio_chunk c = {.xfer = x->id, .off = x->next, .total = x->len,
                          .data = x->data + x->next, .len = n};
    struct chunk_call *cc = malloc(sizeof *cc);
    uint8_t *buf = NULL;
    size_t len;
    char err[256];
    int rv = cc ? rio_chunk_encode(&env, &c, &buf, &len, err, sizeof err) : -1;
    if (rv == 0) {
        *cc = (struct chunk_call){x, n};
        rv = call_peer(r, x->peer_id, x->addr, buf, len, RIO_CHUNK_TIMEOUT_MS, on_chunk_answer,
                       cc);
    }
    free(buf);
    if (rv != 0) {
        free(cc);
        return -1;
    }
    x->next += n;
    x->in_flight++;
    return 0;
}

/* Keeps RIO_SNAPSHOT_WINDOW chunks in flight; once every chunk is answered, sends DONE, whose
 * answer is the send's callback (on_answer). */
static void xfer_pump(struct xfer *x)
{
    struct rio *r = x->rio;
    while (!x->failed && !r->closing && x->in_flight < RIO_SNAPSHOT_WINDOW && x->next < x->len)
        if (send_chunk(x) != 0)
            x->failed = true;
    if (x->failed || r->closing) {
        xfer_fail(x);
        return;
    }
    if (x->in_flight > 0 || x->acked < x->len)
        return;
    struct waiting *w = malloc(sizeof *w);
    if (w)
        *w = (struct waiting){.rio = r, .peer_id = x->peer_id, .req = x->req, .cb = x->cb,
                              .snapshot = true};
    if (!w || call_peer(r, x->peer_id, x->addr, x->done, x->done_len, RIO_CALL_TIMEOUT_MS,
                        on_answer, w) != 0) {
        free(w);
        xfer_fail(x);
        return;
    }
    xfer_free(x);
}

static void on_chunk_answer(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct chunk_call *cc = arg;
    struct xfer *x = cc->x;
    struct rio *r = x->rio;
    x->in_flight--;
    if (answer_status(r, x->peer_id, resp, err) == 0) {
        x->acked += cc->len;
        r->net.snapshot_chunks_sent++;
    } else {
        x->failed = true;
    }
    free(cc);
    if (r->freeing) { /* rio_free: no callbacks any more */
        if (x->in_flight == 0)
            xfer_free(x);
        return;
    }
    xfer_pump(x);
}

/* An InstallSnapshot whose data is over the chunk size: DONE is encoded now (the message is
 * on raft's stack), the chunks as they go (raft's data is kept until the callback). */
static int send_chunked(struct rio *r, struct raft_io_send *req, const struct raft_message *m,
                        raft_io_send_cb cb)
{
    struct rio_env env = {.region_id = r->region_id, .from_id = r->id, .to_id = m->server_id};
    snprintf(env.from_addr, sizeof env.from_addr, "%s", r->addr);
    struct xfer *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    *x = (struct xfer){.rio = r, .peer_id = m->server_id, .id = ++r->next_xfer, .req = req,
                       .cb = cb, .data = m->install_snapshot.data.base,
                       .len = m->install_snapshot.data.len};
    snprintf(x->addr, sizeof x->addr, "%s", m->server_address);
    char err[256];
    if (rio_done_encode(&env, m, x->id, &x->done, &x->done_len, err, sizeof err) != 0 ||
        send_chunk(x) != 0) {
        log_warnx("raft snapshot to store %" PRIu64 ": cannot send: %s", x->peer_id,
                  x->done ? "the peer cannot be reached" : err);
        xfer_free(x);
        return -1;
    }
    log_info("raft: sending snapshot at index %" PRIu64 " (%zu bytes) to store %" PRIu64
             " in chunks of %zu bytes", (uint64_t)m->install_snapshot.last_index, x->len,
             x->peer_id, r->chunk);
    xfer_pump(x);
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
    bool snapshot = m->type == RAFT_IO_INSTALL_SNAPSHOT;
    if (!r->closing && snapshot && m->install_snapshot.data.len > r->chunk)
        return send_chunked(r, req, m, cb) == 0 ? 0 : defer_failed_send(r, req, cb);
    struct waiting *w = malloc(sizeof *w);
    if (!w)
        return RAFT_NOMEM;
    *w = (struct waiting){.rio = r, .peer_id = m->server_id, .req = req, .cb = cb,
                          .snapshot = snapshot};
    int sent = -1;
    if (r->closing) {
        errmsg(io, "send", "closing");
    } else if (rio_msg_encode(&env, m, RPC_MAX_BODY - RPC_OVERHEAD, &buf, &len, &k, err,
                              sizeof err) != 0) {
        log_warnx("raft send to store %" PRIu64 ": %s", (uint64_t)m->server_id, err);
    } else {
        sent = call_peer(r, m->server_id, m->server_address, buf, len, RIO_CALL_TIMEOUT_MS,
                         on_answer, w);
    }
    free(buf);
    if (sent == 0)
        return 0;
    free(w);
    return defer_failed_send(r, req, cb);
}

/* ---- receive ---- */

static bool for_us(struct rio *r, const struct rio_env *env, struct rpc_call *call)
{
    if (r->started && !r->closing && env->region_id == r->region_id && env->to_id == r->id)
        return true;
    char err[128];
    snprintf(err, sizeof err, "no raft peer %" PRIu64 " of region %" PRIu64 " here", env->to_id,
             env->region_id);
    rpc_reply(call, RPC_NOT_FOUND, err, NULL, 0);
    return false;
}

static void drop_assembly(struct assembly *a)
{
    raft_free(a->buf);
    *a = (struct assembly){0};
}

static struct assembly *find_assembly(struct rio *r, uint64_t from)
{
    for (size_t i = 0; i < RIO_MAX_ASSEMBLIES; i++)
        if (r->asm_[i].buf && r->asm_[i].from == from)
            return &r->asm_[i];
    return NULL;
}

/* A slot for a new transfer from `from`: its old one, a free one, or the longest idle. */
static struct assembly *new_assembly(struct rio *r, uint64_t from)
{
    struct assembly *a = find_assembly(r, from), *oldest = &r->asm_[0];
    for (size_t i = 0; !a && i < RIO_MAX_ASSEMBLIES; i++) {
        if (!r->asm_[i].buf)
            a = &r->asm_[i];
        else if (r->asm_[i].last < oldest->last)
            oldest = &r->asm_[i];
    }
    a = a ? a : oldest;
    drop_assembly(a);
    return a;
}

/* Puts a chunk in place; the status to answer, with msg. */
static enum rpc_status take_chunk(struct rio *r, const struct rio_env *env,
                                  const struct rio_chunk *c, char *msg, size_t msglen)
{
    struct assembly *a = find_assembly(r, env->from_id);
    if (c->off == 0) {
        if (c->total > RIO_SNAPSHOT_MAX) {
            snprintf(msg, msglen, "snapshot of %" PRIu64 " bytes is over the %llu-byte limit",
                     c->total, (unsigned long long)RIO_SNAPSHOT_MAX);
            return RPC_TOO_LARGE;
        }
        a = new_assembly(r, env->from_id);
        if (!(a->buf = raft_malloc(c->total ? c->total : 1))) {
            snprintf(msg, msglen, "out of memory for a snapshot of %" PRIu64 " bytes", c->total);
            return RPC_INTERNAL;
        }
        *a = (struct assembly){.from = env->from_id, .xfer = c->xfer, .total = c->total,
                               .buf = a->buf};
    } else if (!a || a->xfer != c->xfer || a->got != c->off || a->total != c->total) {
        /* a gap in this transfer drops it; a chunk of an older transfer (raft started a new
         * one meanwhile) is refused, and the newer one goes on */
        snprintf(msg, msglen, "snapshot chunk at %" PRIu64 " of transfer %" PRIu64
                 " does not continue what this store received", c->off, c->xfer);
        if (a && a->xfer == c->xfer)
            drop_assembly(a);
        return RPC_BAD_REQUEST;
    }
    memcpy(a->buf + c->off, c->data, c->len);
    a->got += c->len;
    a->last = r->io.time(&r->io);
    r->net.snapshot_chunks_received++;
    return RPC_OK;
}

static void recv_chunk(struct rio *r, struct rpc_call *call, const struct rpc_buf *f)
{
    char err[256];
    struct rio_env env;
    struct rio_chunk c;
    if (rio_chunk_decode(f->data, f->len, &env, &c, err, sizeof err) != 0) {
        rpc_reply(call, RPC_BAD_REQUEST, err, NULL, 0);
        return;
    }
    if (!for_us(r, &env, call))
        return;
    enum rpc_status st = take_chunk(r, &env, &c, err, sizeof err);
    if (st != RPC_OK)
        log_warnx("raft snapshot from store %" PRIu64 ": %s", env.from_id, err);
    rpc_reply(call, st, st == RPC_OK ? NULL : err, NULL, 0);
}

/* DONE: the assembled data becomes the InstallSnapshot's, handed to raft. */
static void recv_done(struct rio *r, struct rpc_call *call, const struct rpc_buf *f)
{
    char err[256];
    struct rio_env env;
    struct raft_message m;
    uint64_t xfer, total;
    if (rio_done_decode(f->data, f->len, &env, &m, &xfer, &total, err, sizeof err) != 0) {
        rpc_reply(call, RPC_BAD_REQUEST, err, NULL, 0);
        return;
    }
    if (!for_us(r, &env, call)) {
        rio_msg_discard(&m);
        return;
    }
    struct assembly *a = find_assembly(r, env.from_id);
    if (!a || a->xfer != xfer || a->got != a->total || a->total != total) {
        snprintf(err, sizeof err, "snapshot transfer %" PRIu64 " is incomplete here (%" PRIu64
                 " of %" PRIu64 " bytes)", xfer, a && a->xfer == xfer ? a->got : 0, total);
        log_warnx("raft snapshot from store %" PRIu64 ": %s", env.from_id, err);
        if (a && a->xfer == xfer)
            drop_assembly(a);
        rio_msg_discard(&m);
        rpc_reply(call, RPC_BAD_REQUEST, err, NULL, 0);
        return;
    }
    m.install_snapshot.data = (struct raft_buffer){a->buf, a->total};
    a->buf = NULL;
    drop_assembly(a);
    r->net.snapshots_received++;
    log_info("raft: received a snapshot at index %" PRIu64 " (%" PRIu64 " bytes) from store %"
             PRIu64, (uint64_t)m.install_snapshot.last_index, total, env.from_id);
    rpc_reply(call, RPC_OK, NULL, NULL, 0);
    r->recv(&r->io, &m); /* raft owns the conf and the data now */
}

/* Transfers idle for RIO_SNAPSHOT_IDLE_MS are dropped (the sender gave up or died). */
static void expire_assemblies(struct rio *r)
{
    raft_time now = r->io.time(&r->io);
    for (size_t i = 0; i < RIO_MAX_ASSEMBLIES; i++) {
        struct assembly *a = &r->asm_[i];
        if (!a->buf || now - a->last < RIO_SNAPSHOT_IDLE_MS)
            continue;
        log_warnx("raft snapshot from store %" PRIu64 ": dropped after %d s without a chunk "
                  "(%" PRIu64 " of %" PRIu64 " bytes received)", a->from,
                  RIO_SNAPSHOT_IDLE_MS / 1000, a->got, a->total);
        drop_assembly(a);
    }
}

void rio_rpc_handler(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct rio *r = arg;
    char err[256];
    struct rio_env env;
    struct raft_message m;
    unsigned type = req->nfields == 1 ? rio_msg_type(req->fields[0].data, req->fields[0].len) : 0;
    if (type == RIO_MSG_CHUNK) {
        recv_chunk(r, call, &req->fields[0]);
        return;
    }
    if (type == RIO_MSG_DONE) {
        recv_done(r, call, &req->fields[0]);
        return;
    }
    if (req->nfields != 1 ||
        rio_msg_decode(req->fields[0].data, req->fields[0].len, &env, &m, err, sizeof err) != 0) {
        if (req->nfields != 1)
            snprintf(err, sizeof err, "raft_message takes 1 argument, not %zu", req->nfields);
        rpc_reply(call, RPC_BAD_REQUEST, err, NULL, 0);
        return;
    }
    if (!for_us(r, &env, call)) {
        rio_msg_discard(&m);
        return;
    }
    if (m.type == RAFT_IO_INSTALL_SNAPSHOT)
        r->net.snapshots_received++;
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
    r->chunk = opts->snapshot_chunk ? opts->snapshot_chunk : RIO_SNAPSHOT_CHUNK;
    if (r->chunk > RIO_SNAPSHOT_CHUNK)
        r->chunk = RIO_SNAPSHOT_CHUNK; /* a chunk must fit one RPC body */
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
    for (size_t i = 0; i < RIO_MAX_ASSEMBLIES; i++)
        drop_assembly(&r->asm_[i]);
    rstore_close(r->store);
    free(r);
}

void rio_get_stats(struct rio *r, struct rio_stats *out)
{
    pthread_mutex_lock(&r->wk.mu);
    *out = r->wk.stats;
    pthread_mutex_unlock(&r->wk.mu);
    out->snapshots_sent = r->net.snapshots_sent;
    out->snapshot_chunks_sent = r->net.snapshot_chunks_sent;
    out->snapshots_received = r->net.snapshots_received;
    out->snapshot_chunks_received = r->net.snapshot_chunks_received;
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
