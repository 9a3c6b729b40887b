/* kv_engine.c — see kv_engine.h. */
#include "kv_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <mbedtls/platform_util.h>

#include "bytes.h"
#include "kv_crc.h"
#include "kv_file.h"
#include "kv_log.h"
#include "kv_meta.h"
#include "log.h"

#define PAYLOAD_VERSION KV_ENGINE_PAYLOAD_VERSION
#define PAYLOAD_VERSION_APPLIED 2 /* a record that carries the applied Raft index */
#define OP_HDR KV_ENGINE_OP_HDR
#define FILE_ID 1
#define SNAP_HDR (1 + 8 + 8) /* u8 version | u64 applied index | u64 pairs */
#define SNAP_TAIL 4          /* u32 CRC-32 of everything before it */
#define RESTORE_RECORD (4u << 20) /* ops per record of a restored kv.log */
#define RESTORE_SUFFIX ".new"

/* One write: its operations encoded, and whom to tell. */
struct group {
    struct group *next;
    uint8_t *buf;
    size_t len;
    kv_write_cb done;
    void *arg;
    int status;
    char *err;
    uint64_t index; /* a Raft command's log index (kv_engine_apply), else 0 */
    bool applied;   /* in the index already (kv_engine_apply) */
};

struct queue {
    struct group *head, *tail;
};

struct kv_engine {
    struct kv_index *index;
    struct kv_log *log;
    char log_path[PATH_MAX];
    bool encrypted;
    uint8_t key[CIPHERFILE_KEY_LEN]; /* to write a restored kv.log; wiped at close */
    /* shared with the sync thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_cond_t idle_cv; /* signalled when nothing is pending or being written */
    struct queue pending, done;
    bool busy; /* the sync thread is writing a batch */
    bool stopping;
    bool failed;
    char fail_err[256];
    uint64_t syncs, writes;
    uint64_t applied_index; /* the loop's: the last Raft command applied */
    /* the sync thread's own */
    pthread_t thread;
    bool thread_started;
    uint8_t *cycle;
    size_t cycle_cap;
    /* the loop's */
    int pipe_rd, pipe_wr;
    struct event *notify;
};

static void queue_push(struct queue *q, struct group *g)
{
    g->next = NULL;
    if (q->tail)
        q->tail->next = g;
    else
        q->head = g;
    q->tail = g;
}

static void group_free(struct group *g)
{
    free(g->buf);
    free(g->err);
    free(g);
}

/* ---- encoding and replay ---------------------------------------------------------------- */

static int check_ops(const struct kv_op *ops, size_t n, size_t *len, char *err, size_t errlen)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const struct kv_op *op = &ops[i];
        size_t vlen = op->type == KV_OP_PUT ? op->vlen : 0;
        if (op->type != KV_OP_PUT && op->type != KV_OP_DELETE) {
            snprintf(err, errlen, "operation %zu: unknown type %d", i, (int)op->type);
            return -1;
        }
        if (op->klen > KV_ENGINE_MAX_KEY || vlen > KV_ENGINE_MAX_VALUE) {
            snprintf(err, errlen, "operation %zu: key of %zu bytes or value of %zu bytes is over "
                     "the limit (%u / %u)", i, op->klen, vlen, KV_ENGINE_MAX_KEY,
                     KV_ENGINE_MAX_VALUE);
            return -1;
        }
        total += OP_HDR + op->klen + vlen;
    }
    if (n == 0 || total >= KV_LOG_MAX_PAYLOAD) {
        snprintf(err, errlen, n == 0 ? "a write needs at least one operation"
                                     : "a write of %zu bytes is over the limit", total);
        return -1;
    }
    *len = total;
    return 0;
}

size_t kv_engine_op_size(const struct kv_op *op)
{
    return OP_HDR + op->klen + (op->type == KV_OP_PUT ? op->vlen : 0);
}

uint8_t *kv_engine_encode_op(const struct kv_op *op, uint8_t *p)
{
    size_t vlen = op->type == KV_OP_PUT ? op->vlen : 0;
    p[0] = (uint8_t)op->type;
    bytes_put_le32(p + 1, (uint32_t)op->klen);
    bytes_put_le32(p + 5, (uint32_t)vlen);
    p += OP_HDR;
    if (op->klen)
        memcpy(p, op->key, op->klen);
    p += op->klen;
    if (vlen)
        memcpy(p, op->val, vlen);
    return p + vlen;
}

int kv_engine_each_op(const uint8_t *p, size_t len, kv_op_fn fn, void *arg)
{
    while (len > 0) {
        if (len < OP_HDR)
            return 1;
        struct kv_op op = {(enum kv_op_type)p[0], p + OP_HDR, bytes_get_le32(p + 1), NULL, bytes_get_le32(p + 5)};
        if (len - OP_HDR < op.klen || len - OP_HDR - op.klen < op.vlen)
            return 1;
        if ((op.type != KV_OP_PUT && op.type != KV_OP_DELETE) ||
            (op.type == KV_OP_DELETE && op.vlen != 0))
            return 1;
        op.val = (const uint8_t *)op.key + op.klen;
        int rc = fn(&op, arg);
        if (rc != 0)
            return rc;
        p += OP_HDR + op.klen + op.vlen;
        len -= OP_HDR + op.klen + op.vlen;
    }
    return 0;
}

static void encode_ops(const struct kv_op *ops, size_t n, uint8_t *p)
{
    for (size_t i = 0; i < n; i++)
        p = kv_engine_encode_op(&ops[i], p);
}

static int apply_op(const struct kv_op *op, void *arg)
{
    struct kv_index *ix = arg;
    if (op->type == KV_OP_DELETE) {
        kv_index_delete(ix, op->key, op->klen);
        return 0;
    }
    return kv_index_put(ix, op->key, op->klen, op->val, op->vlen) != 0 ? -1 : 0;
}

/* Applies encoded ops to the index. 0, 1 when malformed, -1 when out of memory. */
static int apply_ops(struct kv_index *ix, const uint8_t *p, size_t len)
{
    return kv_engine_each_op(p, len, apply_op, ix);
}

/* Replays one record: version 1 is ops; version 2 is a u64 applied index, then ops. */
static int replay_record(const uint8_t *payload, size_t len, uint64_t off, void *arg, char *err,
                         size_t errlen)
{
    struct kv_engine *e = arg;
    int rc = 1;
    if (len >= 1 && payload[0] == PAYLOAD_VERSION) {
        rc = apply_ops(e->index, payload + 1, len - 1);
    } else if (len >= 1 + 8 && payload[0] == PAYLOAD_VERSION_APPLIED) {
        rc = apply_ops(e->index, payload + 9, len - 9);
        uint64_t index = bytes_get_le64(payload + 1);
        if (rc == 0 && index > e->applied_index)
            e->applied_index = index;
    }
    if (rc == 0)
        return 0;
    snprintf(err, errlen, "data file %s: record at offset %llu %s", e->log_path,
             (unsigned long long)off,
             rc < 0 ? "cannot be loaded: out of memory" : "is malformed (authentic but unreadable)");
    return -1;
}

/* ---- the sync thread -------------------------------------------------------------------- */

/* Takes queued groups (at least one, within the record limit). Called with mu held. */
static struct group *take_batch(struct kv_engine *e, size_t *bytes)
{
    struct group *first = e->pending.head, *last = first;
    size_t total = 1 + 8 + first->len;
    while (last->next && total + last->next->len < KV_LOG_MAX_PAYLOAD) {
        last = last->next;
        total += last->len;
    }
    e->pending.head = last->next;
    if (!e->pending.head)
        e->pending.tail = NULL;
    last->next = NULL;
    *bytes = total;
    return first;
}

static int write_batch(struct kv_engine *e, struct group *batch, size_t bytes, char *err,
                       size_t errlen)
{
    if (bytes > e->cycle_cap) {
        uint8_t *p = realloc(e->cycle, bytes);
        if (!p) {
            snprintf(err, errlen, "out of memory for a record of %zu bytes", bytes);
            return -1;
        }
        e->cycle = p;
        e->cycle_cap = bytes;
    }
    size_t at = 0;
    uint64_t index = 0;
    for (struct group *g = batch; g; g = g->next)
        index = g->index > index ? g->index : index;
    e->cycle[at++] = index ? PAYLOAD_VERSION_APPLIED : PAYLOAD_VERSION;
    if (index) {
        bytes_put_le64(e->cycle + at, index);
        at += 8;
    }
    for (struct group *g = batch; g; g = g->next) {
        memcpy(e->cycle + at, g->buf, g->len);
        at += g->len;
    }
    if (kv_log_append(e->log, e->cycle, at, err, errlen) != 0)
        return -1;
    return kv_log_sync(e->log, err, errlen);
}

/* Moves a written batch to the done queue. Called with mu held. */
static void finish_batch(struct kv_engine *e, struct group *batch, int status, const char *err)
{
    e->syncs++;
    while (batch) {
        struct group *next = batch->next;
        batch->status = status;
        if (status != 0)
            batch->err = strdup(err);
        else
            e->writes++;
        queue_push(&e->done, batch);
        batch = next;
    }
    if (status != 0 && !e->failed) {
        e->failed = true;
        snprintf(e->fail_err, sizeof e->fail_err, "%s", err);
    }
}

static void *sync_main(void *arg)
{
    struct kv_engine *e = arg;
    char err[256];
    pthread_mutex_lock(&e->mu);
    for (;;) {
        while (!e->pending.head && !e->stopping)
            pthread_cond_wait(&e->cv, &e->mu);
        if (!e->pending.head)
            break;
        size_t bytes;
        struct group *batch = take_batch(e, &bytes);
        bool failed = e->failed;
        e->busy = true;
        pthread_mutex_unlock(&e->mu);
        int status = failed ? -1 : write_batch(e, batch, bytes, err, sizeof err);
        pthread_mutex_lock(&e->mu);
        e->busy = false;
        finish_batch(e, batch, status, failed ? e->fail_err : err);
        if (!e->pending.head)
            pthread_cond_broadcast(&e->idle_cv);
        char one = 1;
        if (write(e->pipe_wr, &one, 1) < 0 && errno != EAGAIN)
            log_warn("kv engine: cannot wake the event loop");
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* ---- the event loop side ---------------------------------------------------------------- */

static void complete(struct kv_engine *e, struct group *g)
{
    if (g->status == 0 && !g->applied) {
        int rc = apply_ops(e->index, g->buf, g->len);
        if (rc != 0) { /* durable, but the index could not take it: stop accepting writes */
            g->status = -1;
            g->err = strdup("out of memory applying a durable write to the index");
            pthread_mutex_lock(&e->mu);
            e->failed = true;
            snprintf(e->fail_err, sizeof e->fail_err, "out of memory applying a write");
            pthread_mutex_unlock(&e->mu);
        }
    }
    if (g->done)
        g->done(g->status, g->status == 0 ? NULL : (g->err ? g->err : "write failed"), g->arg);
    group_free(g);
}

static void run_done(struct kv_engine *e)
{
    pthread_mutex_lock(&e->mu);
    struct group *g = e->done.head;
    e->done.head = e->done.tail = NULL;
    pthread_mutex_unlock(&e->mu);
    while (g) {
        struct group *next = g->next;
        complete(e, g);
        g = next;
    }
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0)
        ;
    run_done(arg);
}

/* Hands g to the sync thread; frees it and says why when the engine takes no more writes. */
static int enqueue(struct kv_engine *e, struct group *g, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->mu);
    int rc = e->failed || e->stopping ? -1 : 0;
    if (rc != 0)
        snprintf(err, errlen, "the engine takes no more writes: %s",
                 e->stopping ? "it is closing" : e->fail_err);
    else
        queue_push(&e->pending, g);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    if (rc != 0)
        group_free(g);
    return rc;
}

static struct group *group_new(size_t len, char *err, size_t errlen)
{
    struct group *g = calloc(1, sizeof *g);
    if (g)
        g->buf = malloc(len ? len : 1);
    if (!g || !g->buf) {
        free(g);
        snprintf(err, errlen, "out of memory queueing a write");
        return NULL;
    }
    g->len = len;
    return g;
}

int kv_engine_write(struct kv_engine *e, const struct kv_op *ops, size_t n, kv_write_cb done,
                    void *arg, char *err, size_t errlen)
{
    size_t len;
    if (check_ops(ops, n, &len, err, errlen) != 0)
        return -1;
    struct group *g = group_new(len, err, errlen);
    if (!g)
        return -1;
    encode_ops(ops, n, g->buf);
    g->done = done;
    g->arg = arg;
    return enqueue(e, g, err, errlen);
}

static int no_op(const struct kv_op *op, void *arg)
{
    (void)op;
    (void)arg;
    return 0;
}

int kv_engine_check_ops(const uint8_t *ops, size_t len)
{
    return len > 0 && len < KV_LOG_MAX_PAYLOAD && kv_engine_each_op(ops, len, no_op, NULL) == 0
               ? 0
               : -1;
}

int kv_engine_apply(struct kv_engine *e, uint64_t index, const uint8_t *ops, size_t len,
                    char *err, size_t errlen)
{
    if (kv_engine_check_ops(ops, len) != 0) {
        snprintf(err, errlen, "command %llu is malformed", (unsigned long long)index);
        return -1;
    }
    struct group *g = group_new(len, err, errlen);
    if (!g)
        return -1;
    memcpy(g->buf, ops, len);
    g->index = index;
    g->applied = true;
    if (apply_ops(e->index, ops, len) != 0) {
        snprintf(err, errlen, "out of memory applying command %llu", (unsigned long long)index);
        group_free(g);
        return -1;
    }
    e->applied_index = index;
    return enqueue(e, g, err, errlen);
}

uint64_t kv_engine_applied_index(const struct kv_engine *e)
{
    return e->applied_index;
}

int kv_engine_get(struct kv_engine *e, const void *key, size_t klen, const void **val,
                  size_t *vlen)
{
    return kv_index_get(e->index, key, klen, val, vlen);
}

size_t kv_engine_scan(struct kv_engine *e, const void *start, size_t slen, const void *end,
                      size_t elen, size_t limit, kv_index_fn fn, void *arg)
{
    return kv_index_scan(e->index, start, slen, end, elen, limit, fn, arg);
}

void kv_engine_stats(struct kv_engine *e, struct kv_engine_stats *out)
{
    out->encrypted = e->encrypted;
    out->keys = kv_index_count(e->index);
    out->bytes = kv_index_bytes(e->index);
    pthread_mutex_lock(&e->mu);
    out->log_bytes = kv_log_size(e->log);
    out->writes = e->writes;
    out->syncs = e->syncs;
    pthread_mutex_unlock(&e->mu);
}

/* ---- snapshot and restore (Raft's fsm->snapshot and fsm->restore) ----------------------- */

size_t kv_engine_snapshot_size(const struct kv_engine *e)
{
    return SNAP_HDR + kv_index_count(e->index) * OP_HDR + kv_index_bytes(e->index) + SNAP_TAIL;
}

struct snap_out {
    uint8_t *p, *end;
    uint64_t pairs;
};

static int snap_pair(const void *key, size_t klen, const void *val, size_t vlen, void *arg)
{
    struct snap_out *o = arg;
    struct kv_op op = {KV_OP_PUT, key, klen, val, vlen};
    if ((size_t)(o->end - o->p) < kv_engine_op_size(&op))
        return 1;
    o->p = kv_engine_encode_op(&op, o->p);
    o->pairs++;
    return 0;
}

int kv_engine_snapshot_write(struct kv_engine *e, uint64_t index, uint8_t *buf, size_t len,
                             char *err, size_t errlen)
{
    if (len != kv_engine_snapshot_size(e)) {
        snprintf(err, errlen, "snapshot buffer of %zu bytes, the engine needs %zu", len,
                 kv_engine_snapshot_size(e));
        return -1;
    }
    struct snap_out o = {buf + SNAP_HDR, buf + len - SNAP_TAIL, 0};
    kv_index_scan(e->index, "", 0, NULL, 0, 0, snap_pair, &o);
    if (o.p != o.end || o.pairs != kv_index_count(e->index)) {
        snprintf(err, errlen, "snapshot: the index changed size while being written");
        return -1;
    }
    buf[0] = KV_ENGINE_SNAPSHOT_VERSION;
    bytes_put_le64(buf + 1, index > e->applied_index ? index : e->applied_index);
    bytes_put_le64(buf + 9, o.pairs);
    bytes_put_le32(o.end, kv_crc32(0, buf, len - SNAP_TAIL));
    return 0;
}

struct snap_in {
    struct kv_index *ix;
    uint64_t pairs;
};

static int restore_pair(const struct kv_op *op, void *arg)
{
    struct snap_in *in = arg;
    if (op->type != KV_OP_PUT || op->klen > KV_ENGINE_MAX_KEY ||
        op->vlen > KV_ENGINE_MAX_VALUE)
        return 1;
    in->pairs++;
    return kv_index_put(in->ix, op->key, op->klen, op->val, op->vlen) != 0 ? -1 : 0;
}

/* The snapshot's applied index, or -1 with err when its framing or checksum is wrong. */
static int snapshot_check(const uint8_t *buf, size_t len, uint64_t *index, char *err,
                          size_t errlen)
{
    if (len < SNAP_HDR + SNAP_TAIL || buf[0] != KV_ENGINE_SNAPSHOT_VERSION ||
        bytes_get_le32(buf + len - SNAP_TAIL) != kv_crc32(0, buf, len - SNAP_TAIL)) {
        snprintf(err, errlen, "snapshot of %zu bytes: bad version or checksum", len);
        return -1;
    }
    *index = bytes_get_le64(buf + 1);
    return 0;
}

/* Builds a checked snapshot's index; NULL with err when its pairs are not valid. */
static struct kv_index *snapshot_index(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
    struct snap_in in = {kv_index_new(), 0};
    int rc = in.ix ? kv_engine_each_op(buf + SNAP_HDR, len - SNAP_HDR - SNAP_TAIL, restore_pair,
                                       &in)
                   : -1;
    if (rc == 0 && in.pairs != bytes_get_le64(buf + 9))
        rc = 1;
    if (rc != 0) {
        snprintf(err, errlen, rc < 0 ? "snapshot: out of memory loading %llu pairs"
                                     : "snapshot: malformed pairs (%llu read)",
                 (unsigned long long)in.pairs);
        kv_index_free(in.ix);
        return NULL;
    }
    return in.ix;
}

/* Waits until the sync thread has written everything queued and every callback ran: the log
 * is then the loop's alone until the next write. */
static void quiesce(struct kv_engine *e)
{
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (e->pending.head || e->busy)
            pthread_cond_wait(&e->idle_cv, &e->mu);
        bool more = e->done.head != NULL;
        pthread_mutex_unlock(&e->mu);
        if (!more)
            return;
        run_done(e); /* a callback may queue another write: wait for it too */
    }
}

static void remove_unfinished_restore(struct kv_engine *e)
{
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s%s", e->log_path, RESTORE_SUFFIX);
    if (unlink(path) == 0)
        log_warnx("data file %s: removed (a restore that did not finish)", path);
    snprintf(path, sizeof path, "%s%s.tmp", e->log_path, RESTORE_SUFFIX);
    unlink(path);
}

/* Writes the snapshot's pairs as records carrying index into a new log at path, synced. */
static struct kv_log *write_restored_log(struct kv_engine *e, const char *path, uint64_t index,
                                         const uint8_t *ops, size_t len, char *err,
                                         size_t errlen)
{
    struct kv_log *log = NULL;
    uint8_t *rec = malloc(9 + RESTORE_RECORD + OP_HDR + KV_ENGINE_MAX_KEY + KV_ENGINE_MAX_VALUE);
    if (!rec) {
        snprintf(err, errlen, "restore: out of memory");
        return NULL;
    }
    int rc = kv_log_open(path, FILE_ID, e->encrypted ? e->key : NULL, NULL, NULL, &log, err,
                         errlen);
    rec[0] = PAYLOAD_VERSION_APPLIED;
    bytes_put_le64(rec + 1, index);
    size_t at = 0;
    while (rc == 0) { /* at least one record, to carry the index */
        size_t n = 0;
        while (at + n < len && n < RESTORE_RECORD) { /* whole ops (checked by the caller) */
            const uint8_t *op = ops + at + n;
            n += OP_HDR + bytes_get_le32(op + 1) + bytes_get_le32(op + 5);
        }
        memcpy(rec + 9, ops + at, n);
        rc = kv_log_append(log, rec, 9 + n, err, errlen);
        at += n;
        if (at == len)
            break;
    }
    if (rc == 0)
        rc = kv_log_sync(log, err, errlen);
    free(rec);
    if (rc != 0) {
        kv_log_close(log);
        unlink(path);
        return NULL;
    }
    return log;
}

int kv_engine_restore(struct kv_engine *e, const uint8_t *buf, size_t len, char *err,
                      size_t errlen)
{
    uint64_t index;
    if (snapshot_check(buf, len, &index, err, errlen) != 0)
        return -1;
    if (index <= e->applied_index)
        return 1; /* the engine holds this state or a later one already */
    struct kv_index *ix = snapshot_index(buf, len, err, errlen);
    if (!ix)
        return -1;
    quiesce(e);
    pthread_mutex_lock(&e->mu);
    bool failed = e->failed || e->stopping;
    if (failed)
        snprintf(err, errlen, "the engine takes no more writes: %s",
                 e->stopping ? "it is closing" : e->fail_err);
    pthread_mutex_unlock(&e->mu);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s%s", e->log_path, RESTORE_SUFFIX);
    remove_unfinished_restore(e);
    struct kv_log *log = failed ? NULL
                                : write_restored_log(e, path, index, buf + SNAP_HDR,
                                                     len - SNAP_HDR - SNAP_TAIL, err, errlen);
    if (log && kv_log_rename(log, e->log_path, err, errlen) != 0) {
        kv_log_close(log);
        unlink(path);
        log = NULL;
    }
    if (!log) {
        kv_index_free(ix);
        return -1;
    }
    pthread_mutex_lock(&e->mu);
    struct kv_log *old = e->log;
    e->log = log;
    pthread_mutex_unlock(&e->mu);
    kv_log_close(old);
    kv_index_free(e->index);
    e->index = ix;
    e->applied_index = index;
    return 0;
}

/* ---- open and close --------------------------------------------------------------------- */

/* Creates dir if missing; checks meta.json against keys before kv.log is touched. */
static int admit_dir(const char *dir, const struct cipher_keys *keys, const char *log_path,
                     char *err, size_t errlen)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "data dir %s: cannot create: %s", dir, strerror(errno));
        return -1;
    }
    struct kv_meta m;
    int rc = kv_meta_load(dir, &m, err, errlen);
    if (rc == 1) {
        int has_log = kv_file_exists(log_path, err, errlen);
        if (has_log != 0) {
            if (has_log > 0)
                snprintf(err, errlen, "data dir %s holds %s but no %s: refusing to guess "
                         "whether it is encrypted", dir, KV_ENGINE_LOG_FILE, KV_META_FILE);
            return -1;
        }
    } else if (rc != 0) {
        return -1;
    }
    return kv_meta_open(dir, keys, &m, err, errlen);
}

static int start_thread(struct kv_engine *e, struct event_base *base, char *err, size_t errlen)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(err, errlen, "kv engine: pipe: %s", strerror(errno));
        return -1;
    }
    e->pipe_rd = fds[0];
    e->pipe_wr = fds[1];
    for (int i = 0; i < 2; i++)
        if (fcntl(fds[i], F_SETFL, O_NONBLOCK) != 0 || fcntl(fds[i], F_SETFD, FD_CLOEXEC) != 0) {
            snprintf(err, errlen, "kv engine: pipe flags: %s", strerror(errno));
            return -1;
        }
    e->notify = event_new(base, e->pipe_rd, EV_READ | EV_PERSIST, on_notify, e);
    if (!e->notify || event_add(e->notify, NULL) != 0) {
        snprintf(err, errlen, "kv engine: cannot watch the completion pipe");
        return -1;
    }
    int rc = pthread_create(&e->thread, NULL, sync_main, e);
    if (rc != 0) {
        snprintf(err, errlen, "kv engine: cannot start the sync thread: %s", strerror(rc));
        return -1;
    }
    e->thread_started = true;
    return 0;
}

static struct kv_engine *engine_new(void)
{
    struct kv_engine *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->pipe_rd = e->pipe_wr = -1;
    e->index = kv_index_new();
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    pthread_cond_init(&e->idle_cv, NULL);
    if (!e->index) {
        kv_engine_close(e);
        return NULL;
    }
    return e;
}

int kv_engine_open(struct event_base *base, const char *dir, const struct cipher_keys *keys,
                   struct kv_engine **out, char *err, size_t errlen)
{
    char path[PATH_MAX];
    if (kv_file_join(path, sizeof path, dir, KV_ENGINE_LOG_FILE, err, errlen) != 0 ||
        admit_dir(dir, keys, path, err, errlen) != 0)
        return -1;
    struct kv_engine *e = engine_new();
    if (!e) {
        snprintf(err, errlen, "kv engine: out of memory");
        return -1;
    }
    e->encrypted = keys != NULL;
    if (keys)
        memcpy(e->key, keys->data_key, sizeof e->key);
    memcpy(e->log_path, path, sizeof path);
    int rc = kv_log_open(path, FILE_ID, keys ? keys->data_key : NULL, replay_record, e, &e->log,
                         err, errlen);
    if (rc == 0) /* under kv.log's lock: no other process is restoring here */
        remove_unfinished_restore(e);
    if (rc == 0)
        rc = start_thread(e, base, err, errlen);
    if (rc != 0) {
        kv_engine_close(e);
        return -1;
    }
    *out = e;
    return 0;
}

void kv_engine_close(struct kv_engine *e)
{
    if (!e)
        return;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stopping = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
        run_done(e);
    }
    if (e->notify)
        event_free(e->notify);
    if (e->pipe_rd >= 0)
        close(e->pipe_rd);
    if (e->pipe_wr >= 0)
        close(e->pipe_wr);
    kv_log_close(e->log);
    kv_index_free(e->index);
    free(e->cycle);
    mbedtls_platform_zeroize(e->key, sizeof e->key);
    pthread_cond_destroy(&e->idle_cv);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
