/* replica.c — region 1's replica on this store: libraft on rio, applying to the engine. See
 * replica.h and docs/replication.md. */
#include "replica.h"

#include <limits.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "log.h"
#include "rio.h"
#include "rseal.h"
#include "rstore.h"

#define COMMAND_VERSION 1
#define COMMAND_HDR 9 /* u8 version | u64 index (little-endian, as the engine's records) */
#define CHANGE_RETRY_MS 2000
#define MAX_REFUSED 4
/* Snapshots: raft takes one every SNAPSHOT_ENTRIES applied entries, or sooner once the
 * commands applied since the last one reach SNAPSHOT_BYTES (a command carries every write of
 * a loop turn, so entries alone do not bound the log); SNAPSHOT_TRAILING entries stay in the
 * log behind a snapshot, so a follower a little behind still catches up by log. */
#define SNAPSHOT_ENTRIES 4096
#define SNAPSHOT_BYTES (64u << 20)
#define SNAPSHOT_TRAILING 512

struct waiter {
    struct waiter *next;
    replica_cb cb;
    void *arg;
};

struct writer {
    struct writer *next;
    replica_cb cb;
    void *arg;
};

struct proposal {
    struct raft_apply req; /* first: the callback gets it back */
    struct replica *r;
    struct writer *writers; /* answered together when the command applies */
};

struct refused_caller {
    char addr[64];
    char cn[256];
};

struct replica {
    struct event_base *base;
    struct kv_engine *engine;
    char addr[RIO_ADDR_MAX + 1];
    struct tls_ctx *client_tls;
    unsigned election_ms, heartbeat_ms;
    struct rseal *seal;
    struct rseal *snap_seal; /* its own instance: rio's worker seals snapshot files with it */
    struct rstore *store; /* until rio takes it */
    struct rio *rio;
    struct raft raft;
    struct raft_fsm fsm;
    struct rio_policy policy;
    bool started, closed;
    uint64_t store_id;
    struct tikv_pd_region region;
    bool have_region;
    struct event *watch;
    struct timeval started_at; /* when Raft started here */
    /* writes of this loop turn, proposed together by the flush event */
    uint8_t *batch;
    size_t batch_len, batch_cap;
    struct writer *batch_writers, **batch_tail;
    struct event *flush;
    /* reads: a barrier of the current term must apply before this leader serves any */
    raft_term barrier_term;
    raft_index barrier_index; /* applied: everything before it is too (raft's last_applied
                                 moves past it only after its callback returns) */
    bool barrier_pending;
    struct raft_barrier barrier;
    struct waiter *waiters, **waiters_tail;
    /* membership: one change at a time */
    bool change_pending;
    struct raft_change change;
    uint64_t change_id;
    const char *change_what;
    struct timeval change_after;
    struct {
        uint64_t id;
        int rv;
    } change_failed[TIKV_PD_MAX_PEERS]; /* failures logged, to log each once per store */
    size_t change_cursor; /* PD peer to look at first: moves on past one that failed */
    size_t change_pos;    /* the position in PD's peers of the one being changed */
    /* what the log said last, to say it again only on a change */
    int logged_state;
    raft_term logged_term;
    raft_id logged_leader;
    struct refused_caller refused[MAX_REFUSED];
    size_t n_refused;
    uint64_t applied_bytes; /* command bytes applied since the last snapshot */
};

/* ---- the state machine ----------------------------------------------------------------- */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct replica *r = fsm->data;
    const uint8_t *p = buf->base;
    char err[256];
    *result = NULL;
    if (buf->len < COMMAND_HDR || p[0] != COMMAND_VERSION ||
        kv_engine_check_ops(p + COMMAND_HDR, buf->len - COMMAND_HDR) != 0) {
        log_error("region %d: skipping a malformed command of %zu bytes", REPLICA_REGION_ID,
                  buf->len);
        return 0;
    }
    uint64_t index = bytes_get_le64(p + 1);
    r->applied_bytes += buf->len;
    if (r->applied_bytes >= SNAPSHOT_BYTES) /* raft checks the threshold after this apply */
        raft_set_snapshot_threshold(&r->raft, 1);
    if (index <= kv_engine_applied_index(r->engine))
        return 0; /* applied before a restart */
    if (kv_engine_apply(r->engine, index, p + COMMAND_HDR, buf->len - COMMAND_HDR, err,
                        sizeof err) != 0)
        fatalx("region %d: cannot apply command %llu: %s", REPLICA_REGION_ID,
               (unsigned long long)index, err);
    return 0;
}

/* The engine's whole key space, labelled with the applied index (raft frees the buffers). */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    struct replica *r = fsm->data;
    char err[256];
    r->applied_bytes = 0;
    raft_set_snapshot_threshold(&r->raft, SNAPSHOT_ENTRIES);
    size_t len = kv_engine_snapshot_size(r->engine);
    struct raft_buffer *b = raft_malloc(sizeof *b);
    uint8_t *data = raft_malloc(len);
    if (!b || !data) {
        raft_free(b);
        raft_free(data);
        log_warnx("region %d: no memory for a snapshot of %zu bytes; trying again later",
                  REPLICA_REGION_ID, len);
        return RAFT_NOMEM;
    }
    if (kv_engine_snapshot_write(r->engine, raft_last_applied(&r->raft), data, len, err,
                                 sizeof err) != 0) {
        raft_free(b);
        raft_free(data);
        log_warnx("region %d: cannot take a snapshot: %s", REPLICA_REGION_ID, err);
        return RAFT_IOERR;
    }
    *b = (struct raft_buffer){data, len};
    *bufs = b;
    *n = 1;
    return 0;
}

/* Replaces the engine's contents with a snapshot's: at start-up (raft's load) when the engine
 * is behind the snapshot, or when the leader installs one because this store's log is too far
 * behind. The engine restores durably or not at all; a failure is fatal, as for apply: Raft's
 * log already starts after the snapshot. Owns buf->base on success. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct replica *r = fsm->data;
    char err[256];
    uint64_t before = kv_engine_applied_index(r->engine);
    int rc = kv_engine_restore(r->engine, buf->base, buf->len, err, sizeof err);
    if (rc < 0)
        fatalx("region %d: cannot restore the engine from a snapshot: %s", REPLICA_REGION_ID,
               err);
    raft_free(buf->base);
    struct kv_engine_stats st;
    kv_engine_stats(r->engine, &st);
    if (rc == 0 && r->started)
        log_info("region %d: caught up by snapshot: the engine now holds the leader's snapshot "
                 "at applied index %llu (%llu keys; it was at %llu)", REPLICA_REGION_ID,
                 (unsigned long long)kv_engine_applied_index(r->engine),
                 (unsigned long long)st.keys, (unsigned long long)before);
    else if (rc == 0)
        log_info("region %d: engine restored from the Raft snapshot at applied index %llu "
                 "(%llu keys; it was at %llu)", REPLICA_REGION_ID,
                 (unsigned long long)kv_engine_applied_index(r->engine),
                 (unsigned long long)st.keys, (unsigned long long)before);
    else
        log_info("region %d: the engine (applied index %llu) already holds the Raft snapshot",
                 REPLICA_REGION_ID, (unsigned long long)before);
    return 0;
}

/* ---- who leads ----------------------------------------------------------------------- */

static bool leads(struct replica *r)
{
    return r->started && raft_state(&r->raft) == RAFT_LEADER;
}

static const char *leader_address(struct replica *r)
{
    raft_id id = 0;
    const char *addr = NULL;
    if (r->started)
        raft_leader(&r->raft, &id, &addr);
    return addr ? addr : "";
}

static int not_leader(struct replica *r, char *msg, size_t msglen, const char **leader)
{
    *leader = leader_address(r);
    if (!r->started)
        snprintf(msg, msglen, "this store holds no replica of region %d%s", REPLICA_REGION_ID,
                 r->have_region || !r->store_id ? " yet" : "");
    else if (**leader)
        snprintf(msg, msglen, "this store is not the leader of region %d; the leader is %s",
                 REPLICA_REGION_ID, *leader);
    else if (r->raft.configuration.n == 0)
        snprintf(msg, msglen, "this store has not joined region %d's Raft group yet: no leader "
                 "has reached it (its /status shows the replication links)", REPLICA_REGION_ID);
    else
        snprintf(msg, msglen, "region %d has no leader right now (an election is under way)",
                 REPLICA_REGION_ID);
    return RPC_NOT_LEADER;
}

/* ---- writes --------------------------------------------------------------------------
 * Writes that arrive in one loop turn are proposed together, as one command: one Raft entry,
 * one sealed log record and one engine record for all of them. Each write stays atomic (the
 * command applies whole) and is answered when the command has applied. */

static const char *write_failure(struct replica *r, int status, int *st, char *msg,
                                 size_t msglen)
{
    const char *leader = "";
    if (status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER) {
        *st = not_leader(r, msg, msglen, &leader);
        snprintf(msg, msglen, "leadership changed before the write committed: its outcome "
                 "is unknown, retry it");
    } else {
        *st = RPC_INTERNAL;
        snprintf(msg, msglen, status == RAFT_SHUTDOWN || status == RAFT_CANCELED
                                  ? "the store is stopping"
                                  : "the write failed: %s", raft_strerror(status));
    }
    return leader;
}

/* Answers every writer of a list and frees it. */
static void answer_writers(struct writer *w, int st, const char *msg, const char *leader)
{
    while (w) {
        struct writer *next = w->next;
        w->cb(st, st == RPC_OK ? NULL : msg, leader, w->arg);
        free(w);
        w = next;
    }
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct proposal *p = (struct proposal *)req;
    char msg[200] = "";
    int st = RPC_OK;
    const char *leader = status ? write_failure(p->r, status, &st, msg, sizeof msg) : "";
    answer_writers(p->writers, st, msg, leader);
    free(p);
}

/* Proposes the writes gathered so far as one command. */
static void flush_writes(struct replica *r)
{
    struct writer *writers = r->batch_writers;
    size_t len = r->batch_len;
    r->batch_writers = NULL;
    r->batch_tail = &r->batch_writers;
    r->batch_len = 0;
    if (!writers)
        return;
    char msg[200];
    const char *leader = "";
    int st = RPC_INTERNAL;
    if (!leads(r)) {
        st = not_leader(r, msg, sizeof msg, &leader);
        answer_writers(writers, st, msg, leader);
        return;
    }
    uint8_t *cmd = raft_malloc(COMMAND_HDR + len);
    struct proposal *p = cmd ? malloc(sizeof *p) : NULL;
    if (!p) {
        raft_free(cmd);
        answer_writers(writers, RPC_INTERNAL, "out of memory", "");
        return;
    }
    cmd[0] = COMMAND_VERSION;
    bytes_put_le64(cmd + 1, raft_last_index(&r->raft) + 1); /* the index it will get */
    memcpy(cmd + COMMAND_HDR, r->batch, len);
    *p = (struct proposal){.req = {.data = r}, .r = r, .writers = writers};
    struct raft_buffer buf = {cmd, COMMAND_HDR + len};
    int rv = raft_apply(&r->raft, &p->req, &buf, 1, on_applied);
    if (rv == 0)
        return;
    raft_free(cmd);
    free(p);
    leader = write_failure(r, rv, &st, msg, sizeof msg);
    answer_writers(writers, st, msg, leader);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush_writes(arg);
}

/* The encoded size of ops; 0 with the status and msg when one is over a limit. */
static size_t ops_size(const struct kv_op *ops, size_t n, int *st, char *msg, size_t msglen)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].klen == 0 || ops[i].klen > KV_ENGINE_MAX_KEY ||
            (ops[i].type == KV_OP_PUT && ops[i].vlen > KV_ENGINE_MAX_VALUE)) {
            *st = RPC_TOO_LARGE;
            snprintf(msg, msglen, "operation %zu: an empty key, a key over %u bytes or a value "
                     "over %u bytes", i, KV_ENGINE_MAX_KEY, KV_ENGINE_MAX_VALUE);
            return 0;
        }
        total += kv_engine_op_size(&ops[i]);
    }
    if (n == 0 || total > REPLICA_MAX_COMMAND - COMMAND_HDR) {
        *st = n == 0 ? RPC_BAD_REQUEST : RPC_TOO_LARGE;
        snprintf(msg, msglen, n == 0 ? "a write needs at least one operation"
                              : "a write of %zu bytes is over the replicated limit of %u bytes; "
                                "split it", total, REPLICA_MAX_COMMAND - COMMAND_HDR);
        return 0;
    }
    return total;
}

static int grow_batch(struct replica *r, size_t need)
{
    if (r->batch_len + need <= r->batch_cap)
        return 0;
    size_t cap = r->batch_cap ? r->batch_cap : 64 * 1024;
    while (cap < r->batch_len + need)
        cap *= 2;
    uint8_t *p = realloc(r->batch, cap);
    if (!p)
        return -1;
    r->batch = p;
    r->batch_cap = cap;
    return 0;
}

int replica_write(struct replica *r, const struct kv_op *ops, size_t n, replica_cb cb, void *arg,
                  char *msg, size_t msglen, const char **leader)
{
    *leader = "";
    if (!leads(r))
        return not_leader(r, msg, msglen, leader);
    int st = RPC_INTERNAL;
    size_t size = ops_size(ops, n, &st, msg, msglen);
    if (size == 0)
        return st;
    if (r->batch_len + size > REPLICA_MAX_COMMAND - COMMAND_HDR)
        flush_writes(r); /* this one would not fit with the others: they go first */
    struct writer *w = malloc(sizeof *w);
    if (!w || grow_batch(r, size) != 0) {
        free(w);
        snprintf(msg, msglen, "out of memory");
        return RPC_INTERNAL;
    }
    uint8_t *p = r->batch + r->batch_len;
    for (size_t i = 0; i < n; i++)
        p = kv_engine_encode_op(&ops[i], p);
    r->batch_len += size;
    *w = (struct writer){NULL, cb, arg};
    *r->batch_tail = w;
    r->batch_tail = &w->next;
    if (r->batch_writers == w)
        event_active(r->flush, EV_TIMEOUT, 0); /* after the reads of this loop turn */
    return REPLICA_QUEUED;
}

/* ---- reads --------------------------------------------------------------------------- */

static bool read_ready(struct replica *r)
{
    raft_index applied = raft_last_applied(&r->raft);
    if (r->barrier_index > applied)
        applied = r->barrier_index;
    return leads(r) && r->barrier_term == r->raft.current_term &&
           applied >= r->raft.commit_index;
}

static void wake_waiters(struct replica *r, int st, const char *msg)
{
    struct waiter *w = r->waiters;
    r->waiters = NULL;
    r->waiters_tail = &r->waiters;
    while (w) {
        struct waiter *next = w->next;
        w->cb(st, msg, leader_address(r), w->arg);
        free(w);
        w = next;
    }
}

static void on_barrier(struct raft_barrier *req, int status)
{
    struct replica *r = req->data;
    r->barrier_pending = false;
    if (status == 0 && leads(r)) {
        r->barrier_term = r->raft.current_term;
        r->barrier_index = req->index;
        wake_waiters(r, RPC_OK, NULL);
        return;
    }
    char msg[200];
    const char *leader;
    int st = status == RAFT_SHUTDOWN || status == RAFT_CANCELED ? RPC_INTERNAL
                                                                : not_leader(r, msg, sizeof msg,
                                                                             &leader);
    if (st == RPC_INTERNAL)
        snprintf(msg, sizeof msg, "the store is stopping");
    wake_waiters(r, st, msg);
}

static void issue_barrier(struct replica *r)
{
    if (r->barrier_pending || !leads(r))
        return;
    r->barrier = (struct raft_barrier){.data = r};
    int rv = raft_barrier(&r->raft, &r->barrier, on_barrier);
    if (rv == 0)
        r->barrier_pending = true;
    else
        log_warnx("region %d: cannot append a barrier: %s", REPLICA_REGION_ID,
                  raft_strerror(rv));
}

int replica_read(struct replica *r, replica_cb cb, void *arg, char *msg, size_t msglen,
                 const char **leader)
{
    *leader = "";
    if (!leads(r))
        return not_leader(r, msg, msglen, leader);
    if (read_ready(r))
        return RPC_OK;
    struct waiter *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(msg, msglen, "out of memory");
        return RPC_INTERNAL;
    }
    *w = (struct waiter){NULL, cb, arg};
    *r->waiters_tail = w;
    r->waiters_tail = &w->next;
    issue_barrier(r);
    return REPLICA_QUEUED;
}

/* ---- membership ----------------------------------------------------------------------- */

static const struct raft_server *find_server(struct replica *r, uint64_t id)
{
    for (unsigned i = 0; i < r->raft.configuration.n; i++)
        if (r->raft.configuration.servers[i].id == id)
            return &r->raft.configuration.servers[i];
    return NULL;
}

static void change_later(struct replica *r)
{
    struct timeval now, wait = {CHANGE_RETRY_MS / 1000, (CHANGE_RETRY_MS % 1000) * 1000};
    event_base_gettimeofday_cached(r->base, &now);
    timeradd(&now, &wait, &r->change_after);
}

/* True the first time store id fails with rv (0: it succeeded, forget it). */
static bool first_failure(struct replica *r, uint64_t id, int rv)
{
    size_t slot = 0;
    for (size_t i = 0; i < TIKV_PD_MAX_PEERS; i++) {
        if (r->change_failed[i].id == id) {
            bool first = r->change_failed[i].rv != rv;
            r->change_failed[i].rv = rv;
            return first && rv != 0;
        }
        if (r->change_failed[i].id == 0)
            slot = i;
    }
    r->change_failed[slot].id = id;
    r->change_failed[slot].rv = rv;
    return rv != 0;
}

static void on_changed(struct raft_change *req, int status)
{
    struct replica *r = req->data;
    r->change_pending = false;
    bool first = first_failure(r, r->change_id, status);
    if (status == 0) {
        log_info("region %d: store %llu %s", REPLICA_REGION_ID,
                 (unsigned long long)r->change_id, r->change_what);
        return;
    }
    if (first)
        log_warnx("region %d: store %llu could not be %s: %s (retrying every %d s)",
                  REPLICA_REGION_ID, (unsigned long long)r->change_id, r->change_what,
                  raft_strerror(status), CHANGE_RETRY_MS / 1000);
    r->change_cursor = r->change_pos + 1; /* one that cannot join keeps no other out */
    change_later(r);
}

static void start_change(struct replica *r, const struct tikv_pd_peer *p, bool add)
{
    r->change = (struct raft_change){.data = r};
    r->change_id = p->store_id;
    r->change_what = add ? "added to the group (catching up)" : "promoted to voter";
    int rv = add ? raft_add(&r->raft, &r->change, p->store_id, p->address, on_changed)
                 : raft_assign(&r->raft, &r->change, p->store_id, RAFT_VOTER, on_changed);
    if (rv == 0) {
        r->change_pending = true;
        return;
    }
    on_changed(&r->change, rv);
}

/* The leader brings one peer PD lists (and Raft lacks) closer to being a voter. */
static void step_membership(struct replica *r)
{
    struct timeval now;
    event_base_gettimeofday_cached(r->base, &now);
    if (!leads(r) || !r->have_region || r->change_pending || timercmp(&now, &r->change_after, <))
        return;
    for (size_t k = 0; k < r->region.n_peers; k++) {
        size_t pos = (r->change_cursor + k) % r->region.n_peers;
        const struct tikv_pd_peer *p = &r->region.peers[pos];
        const struct raft_server *s = find_server(r, p->store_id);
        if (!s || s->role != RAFT_VOTER) {
            r->change_pos = pos;
            start_change(r, p, s == NULL);
            return;
        }
    }
}

/* ---- the watch: role changes, the leader's barrier, membership ------------------------ */

static void log_role(struct replica *r)
{
    int state = raft_state(&r->raft);
    raft_id leader = 0;
    const char *addr = NULL;
    raft_leader(&r->raft, &leader, &addr);
    if (state == r->logged_state && r->raft.current_term == r->logged_term &&
        leader == r->logged_leader)
        return;
    if (state == RAFT_LEADER)
        log_info("region %d: this store (%llu) leads, term %llu", REPLICA_REGION_ID,
                 (unsigned long long)r->store_id, (unsigned long long)r->raft.current_term);
    else if (leader)
        log_info("region %d: following store %llu (%s), term %llu", REPLICA_REGION_ID,
                 (unsigned long long)leader, addr ? addr : "?",
                 (unsigned long long)r->raft.current_term);
    else if (state == RAFT_CANDIDATE)
        log_info("region %d: no leader; this store stands for election, term %llu",
                 REPLICA_REGION_ID, (unsigned long long)r->raft.current_term);
    r->logged_state = state;
    r->logged_term = r->raft.current_term;
    r->logged_leader = leader;
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct replica *r = arg;
    if (!r->started || r->closed)
        return;
    log_role(r);
    if (leads(r) && r->barrier_term != r->raft.current_term)
        issue_barrier(r);
    step_membership(r);
}

/* ---- start ---------------------------------------------------------------------------- */

static bool lists(const struct tikv_pd_region *region, uint64_t store_id)
{
    for (size_t i = 0; i < region->n_peers; i++)
        if (region->peers[i].store_id == store_id)
            return true;
    return false;
}

static int bootstrap(struct replica *r)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = raft_configuration_add(&conf, r->store_id, r->addr, RAFT_VOTER);
    if (rv == 0)
        rv = raft_bootstrap(&r->raft, &conf);
    raft_configuration_close(&conf);
    if (rv == 0)
        log_info("region %d: bootstrapped with this store (%llu) as its only voter",
                 REPLICA_REGION_ID, (unsigned long long)r->store_id);
    return rv == RAFT_CANTBOOTSTRAP ? 0 : rv;
}

static void start_raft(struct replica *r)
{
    char err[300];
    struct rio_opts o = {.base = r->base, .client_tls = r->client_tls,
                         .region_id = REPLICA_REGION_ID};
    r->rio = rio_new(&o, r->store, err, sizeof err);
    r->store = NULL; /* rio owns it, also on failure */
    if (!r->rio)
        fatalx("region %d: cannot start Raft: %s", REPLICA_REGION_ID, err);
    int rv = raft_init(&r->raft, rio_raft_io(r->rio), &r->fsm, r->store_id, r->addr);
    if (rv != 0)
        fatalx("region %d: cannot start Raft: %s", REPLICA_REGION_ID, raft_strerror(rv));
    r->raft.data = r;
    raft_set_election_timeout(&r->raft, r->election_ms);
    raft_set_heartbeat_timeout(&r->raft, r->heartbeat_ms);
    raft_set_pre_vote(&r->raft, true);
    raft_set_snapshot_threshold(&r->raft, SNAPSHOT_ENTRIES);
    raft_set_snapshot_trailing(&r->raft, SNAPSHOT_TRAILING);
    bool first = r->region.peers[0].store_id == r->store_id;
    if (first && (rv = bootstrap(r)) != 0)
        fatalx("region %d: cannot bootstrap: %s", REPLICA_REGION_ID, raft_strerror(rv));
    if ((rv = raft_start(&r->raft)) != 0)
        fatalx("region %d: cannot start Raft: %s", REPLICA_REGION_ID, raft_errmsg(&r->raft));
    r->started = true;
    event_base_gettimeofday_cached(r->base, &r->started_at);
    struct timeval tick = {0, (suseconds_t)r->heartbeat_ms * 1000};
    evtimer_add(r->watch, &tick);
    log_info("region %d: Raft started as store %llu at %s (%zu peer%s in PD)",
             REPLICA_REGION_ID, (unsigned long long)r->store_id, r->addr, r->region.n_peers,
             r->region.n_peers == 1 ? "" : "s");
}

void replica_on_region(struct replica *r, uint64_t store_id,
                       const struct tikv_pd_region *region)
{
    if (r->closed || region->id != REPLICA_REGION_ID || !lists(region, store_id))
        return;
    if (r->started && store_id != r->store_id) {
        log_warnx("region %d: PD now calls this store %llu, Raft runs as %llu; ignoring",
                  REPLICA_REGION_ID, (unsigned long long)store_id,
                  (unsigned long long)r->store_id);
        return;
    }
    r->region = *region;
    r->have_region = true;
    r->store_id = store_id;
    if (!r->started)
        start_raft(r);
    step_membership(r);
}

/* ---- store-to-store ------------------------------------------------------------------- */

void replica_rpc_handler(struct rpc_call *call, const struct rpc_frame *req, void *arg)
{
    struct replica *r = arg;
    if (r->started && !r->closed)
        rio_rpc_handler(call, req, r->rio);
    else
        rpc_reply(call, RPC_NOT_FOUND, "Raft is not running on this store yet", NULL, 0);
}

static void note_refused(struct replica *r, const struct conn_peer *peer)
{
    for (size_t i = 0; i < r->n_refused; i++)
        if (strcmp(r->refused[i].addr, peer->addr) == 0)
            return;
    struct refused_caller *c = &r->refused[r->n_refused < MAX_REFUSED ? r->n_refused++
                                                                      : MAX_REFUSED - 1];
    snprintf(c->addr, sizeof c->addr, "%s", peer->addr);
    snprintf(c->cn, sizeof c->cn, "%s", peer->cn);
}

enum rpc_status replica_check_peer(struct replica *r, const struct conn_peer *peer, char *msg,
                                   size_t msglen)
{
    enum rpc_status st = rio_check_peer(&r->policy, peer, msg, msglen);
    if (st != RPC_OK)
        note_refused(r, peer);
    return st;
}

/* ---- status --------------------------------------------------------------------------- */

const char *replica_role(struct replica *r)
{
    if (!r->started)
        return "none";
    switch (raft_state(&r->raft)) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "follower";
    }
}

uint64_t replica_leader_term(struct replica *r)
{
    return leads(r) ? r->raft.current_term : 0;
}

bool replica_forming(struct replica *r)
{
    if (!leads(r) || !r->have_region)
        return false;
    struct timeval now, age;
    event_base_gettimeofday_cached(r->base, &now);
    timersub(&now, &r->started_at, &age);
    if (r->region.n_peers < TIKV_PD_MAX_PEERS && age.tv_sec < REPLICA_FORMING_SEC)
        return true; /* more stores may be registering now */
    for (size_t i = 0; i < r->region.n_peers; i++) {
        const struct raft_server *s = find_server(r, r->region.peers[i].store_id);
        if (!s || s->role != RAFT_VOTER)
            return true;
    }
    return false;
}

static const char *member_role(struct replica *r, uint64_t id)
{
    const struct raft_server *s = find_server(r, id);
    if (!s)
        return "not in the group";
    return s->role == RAFT_VOTER ? "voter" : s->role == RAFT_STANDBY ? "standby" : "catching up";
}

static json_t *peer_json(struct replica *r, const struct tikv_pd_peer *p,
                         const struct rio_link_info *links, size_t n_links)
{
    const struct rio_link_info *l = NULL;
    for (size_t i = 0; i < n_links; i++)
        if (links[i].id == p->store_id)
            l = &links[i];
    const char *link = !l || l->link == RIO_LINK_NONE ? "idle" : rio_link_name(l->link);
    json_t *j = json_pack("{s:I, s:s, s:s, s:s}", "store_id", (json_int_t)p->store_id, "address",
                          p->address, "member", member_role(r, p->store_id), "link", link);
    if (j && l && l->reason[0])
        json_object_set_new(j, "reason", json_string(l->reason));
    return j;
}

json_t *replica_status_json(struct replica *r)
{
    json_t *peers = json_array(), *refused = json_array();
    struct rio_link_info links[TIKV_PD_MAX_PEERS * 2];
    size_t n_links = r->started ? rio_links(r->rio, links, sizeof links / sizeof links[0]) : 0;
    for (size_t i = 0; r->have_region && i < r->region.n_peers; i++)
        if (r->region.peers[i].store_id != r->store_id)
            json_array_append_new(peers, peer_json(r, &r->region.peers[i], links, n_links));
    for (size_t i = 0; i < r->n_refused; i++)
        json_array_append_new(refused, json_pack("{s:s, s:s}", "address", r->refused[i].addr,
                                                 "cn", r->refused[i].cn));
    return json_pack("{s:i, s:s, s:I, s:s, s:I, s:I, s:o, s:o}", "region_id", REPLICA_REGION_ID,
                     "role", replica_role(r), "term",
                     (json_int_t)(r->started ? r->raft.current_term : 0), "leader",
                     leader_address(r), "applied_index",
                     (json_int_t)(r->started ? raft_last_applied(&r->raft) : 0), "commit_index",
                     (json_int_t)(r->started ? r->raft.commit_index : 0), "peers", peers,
                     "refused_callers", refused);
}

/* ---- life cycle ----------------------------------------------------------------------- */

static int open_store(struct replica *r, const char *data_dir, const struct cipher_keys *keys,
                      char *err, size_t errlen)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/raft", data_dir) >= (int)sizeof dir) {
        snprintf(err, errlen, "data dir path too long");
        return -1;
    }
    struct rstore_sealer sealer, snap_sealer;
    if (keys) {
        if (!(r->seal = rseal_new(keys, err, errlen)) ||
            !(r->snap_seal = rseal_new(keys, err, errlen)))
            return -1;
        sealer = rseal_sealer(r->seal);
        snap_sealer = rseal_sealer(r->snap_seal);
    }
    r->store = rstore_open(dir, keys ? &sealer : NULL, err, errlen);
    if (!r->store)
        return -1;
    if (keys)
        rstore_set_snapshot_sealer(r->store, &snap_sealer);
    if (*rstore_note(r->store))
        log_warnx("Raft log %s: %s", dir, rstore_note(r->store));
    return 0;
}

struct replica *replica_new(const struct replica_opts *o, char *err, size_t errlen)
{
    struct replica *r = calloc(1, sizeof *r);
    if (!r || !(r->watch = event_new(o->base, -1, EV_PERSIST, on_watch, r)) ||
        !(r->flush = event_new(o->base, -1, 0, on_flush, r))) {
        if (r && r->watch)
            event_free(r->watch);
        snprintf(err, errlen, "out of memory");
        free(r);
        return NULL;
    }
    r->base = o->base;
    r->engine = o->engine;
    r->client_tls = o->client_tls;
    snprintf(r->addr, sizeof r->addr, "%s", o->addr);
    r->election_ms = o->election_timeout_ms ? o->election_timeout_ms : 1000;
    r->heartbeat_ms = o->heartbeat_timeout_ms ? o->heartbeat_timeout_ms : 100;
    r->policy = (struct rio_policy){.own_cn = o->own_cn, .allowed_cn = o->allowed_cn,
                                    .n_allowed_cn = o->n_allowed_cn};
    r->fsm = (struct raft_fsm){.version = 1, .data = r, .apply = fsm_apply,
                               .snapshot = fsm_snapshot, .restore = fsm_restore};
    r->waiters_tail = &r->waiters;
    r->batch_tail = &r->batch_writers;
    r->logged_state = -1;
    if (open_store(r, o->data_dir, o->keys, err, errlen) != 0) {
        replica_close(r);
        return NULL;
    }
    return r;
}

static void on_raft_closed(struct raft *raft)
{
    ((struct replica *)raft->data)->closed = true;
}

void replica_close(struct replica *r)
{
    if (!r)
        return;
    answer_writers(r->batch_writers, RPC_INTERNAL, "the store is stopping", "");
    r->batch_writers = NULL;
    if (r->started) {
        r->started = false; /* nothing new reaches raft */
        raft_close(&r->raft, on_raft_closed);
        while (!r->closed && event_base_loop(r->base, EVLOOP_ONCE) == 0)
            ;
        rio_free(r->rio);
    }
    r->closed = true;
    wake_waiters(r, RPC_INTERNAL, "the store is stopping");
    rstore_close(r->store);
    rseal_free(r->seal);
    rseal_free(r->snap_seal);
    event_free(r->watch);
    event_free(r->flush);
    free(r->batch);
    free(r);
}
