/* Unit tests proving libraft (Debian libraft-dev 0.15) links and behaves as docs/replication.md
 * says, on its in-memory cluster fixture (raft/fixture.h): three servers elect a leader, apply
 * commands to a tiny state machine in log order, survive the leader's death with no committed
 * command lost, and a server cut off from the others catches up, by log or by snapshot.
 *
 * The fixture's clock is simulated: the millisecond bounds given to raft_fixture_step_until_*
 * are simulated time, so these tests are deterministic, not timed.
 *
 * Every command carries the log index the leader predicted for it (raft_last_index + 1 before
 * raft_apply) and the state machine checks it against raft_last_applied + 1 when it applies:
 * the store's engine relies on that to skip commands it already applied before a restart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/fixture.h>

#define N_SERVERS 3
#define MAX_CMDS 256
#define SIM_MS 30000 /* simulated milliseconds allowed for any one step_until */

/* A command: the log index the proposer predicted, then the value. */
struct cmd {
    uint64_t index;
    uint64_t value;
};

/* One server's state machine: the values applied, in order. */
struct tiny_fsm {
    struct raft_fixture *f;
    unsigned server;
    uint64_t values[MAX_CMDS];
    unsigned n;
    unsigned index_mismatches; /* commands whose predicted index was not the applied one */
    unsigned restores;
};

/* One proposal and how it ended. */
struct proposal {
    struct raft_apply req;
    uint64_t value;
    bool done;
    int status;
};

struct cluster {
    struct raft_fixture f;
    struct raft_fsm fsms[N_SERVERS];
    struct tiny_fsm state[N_SERVERS];
    struct proposal props[MAX_CMDS];
    unsigned n_props;
};

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct tiny_fsm *s = fsm->data;
    struct cmd c;
    if (buf->len != sizeof c || s->n >= MAX_CMDS)
        return RAFT_MALFORMED;
    memcpy(&c, buf->base, sizeof c);
    struct raft *r = raft_fixture_get(s->f, s->server);
    if (c.index != raft_last_applied(r) + 1)
        s->index_mismatches++;
    s->values[s->n++] = c.value;
    *result = NULL;
    return 0;
}

/* The snapshot is the count then the values; raft frees the buffers it is given (version 1). */
static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct tiny_fsm *s = fsm->data;
    size_t len = sizeof(uint64_t) * (1 + s->n);
    uint64_t *data = raft_malloc(len);
    *bufs = raft_malloc(sizeof **bufs);
    if (data == NULL || *bufs == NULL) {
        raft_free(data);
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    data[0] = s->n;
    memcpy(data + 1, s->values, sizeof(uint64_t) * s->n);
    (*bufs)[0].base = data;
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

/* On success the state machine owns buf->base and must raft_free it. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct tiny_fsm *s = fsm->data;
    const uint64_t *data = buf->base;
    if (buf->len < sizeof(uint64_t) || data[0] > MAX_CMDS ||
        buf->len != sizeof(uint64_t) * (1 + data[0]))
        return RAFT_MALFORMED;
    s->n = (unsigned)data[0];
    memcpy(s->values, data + 1, sizeof(uint64_t) * s->n);
    s->restores++;
    raft_free(buf->base);
    return 0;
}

static int cluster_setup(void **state)
{
    struct cluster *c = calloc(1, sizeof *c);
    struct raft_configuration conf;
    if (c == NULL || raft_fixture_initialize(&c->f) != 0)
        return -1;
    for (unsigned i = 0; i < N_SERVERS; i++) {
        c->state[i].f = &c->f;
        c->state[i].server = i;
        c->fsms[i] = (struct raft_fsm){.version = 1, .data = &c->state[i],
                                       .apply = fsm_apply, .snapshot = fsm_snapshot,
                                       .restore = fsm_restore};
        if (raft_fixture_grow(&c->f, &c->fsms[i]) != 0)
            return -1;
    }
    if (raft_fixture_configuration(&c->f, N_SERVERS, &conf) != 0)
        return -1;
    int rv = raft_fixture_bootstrap(&c->f, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 || raft_fixture_start(&c->f) != 0)
        return -1;
    *state = c;
    return 0;
}

static int cluster_teardown(void **state)
{
    struct cluster *c = *state;
    raft_fixture_close(&c->f);
    free(c);
    return 0;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct proposal *p = req->data;
    (void)result;
    p->done = true;
    p->status = status;
}

/* The index of the current leader, after stepping until there is one. */
static unsigned wait_leader(struct cluster *c)
{
    assert_true(raft_fixture_step_until_has_leader(&c->f, SIM_MS));
    unsigned l = raft_fixture_leader_index(&c->f);
    assert_true(l < N_SERVERS);
    return l;
}

/* Proposes value on server i; returns raft_apply's code. */
static int propose(struct cluster *c, unsigned i, uint64_t value)
{
    struct raft *r = raft_fixture_get(&c->f, i);
    assert_true(c->n_props < MAX_CMDS);
    struct proposal *p = &c->props[c->n_props];
    struct cmd cmd = {.index = raft_last_index(r) + 1, .value = value};
    struct raft_buffer buf = {.base = raft_malloc(sizeof cmd), .len = sizeof cmd};
    assert_non_null(buf.base);
    memcpy(buf.base, &cmd, sizeof cmd);
    p->req.data = p;
    p->value = value;
    int rv = raft_apply(r, &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base); /* ownership passes to raft only on success */
        return rv;
    }
    c->n_props++;
    return 0;
}

static bool all_done(struct raft_fixture *f, void *arg)
{
    struct cluster *c = arg;
    (void)f;
    for (unsigned i = 0; i < c->n_props; i++)
        if (!c->props[i].done)
            return false;
    return true;
}

/* Proposes values [from, to) on the leader and steps until every one is acknowledged. */
static void write_acked(struct cluster *c, unsigned leader, uint64_t from, uint64_t to)
{
    unsigned first = c->n_props;
    for (uint64_t v = from; v < to; v++)
        assert_int_equal(propose(c, leader, v), 0);
    assert_true(raft_fixture_step_until(&c->f, all_done, c, SIM_MS));
    for (unsigned i = first; i < c->n_props; i++)
        assert_int_equal(c->props[i].status, 0);
}

/* Server i's state machine holds exactly the acknowledged values, in proposal order, each once. */
static void assert_has_acked(struct cluster *c, unsigned i)
{
    struct tiny_fsm *s = &c->state[i];
    unsigned k = 0;
    for (unsigned p = 0; p < c->n_props; p++) {
        if (c->props[p].status != 0)
            continue;
        while (k < s->n && s->values[k] != c->props[p].value)
            k++; /* a value the test never saw acknowledged may sit between (none expected) */
        if (k == s->n)
            fail_msg("server %u lacks acknowledged value %llu (or has it out of order)", i,
                     (unsigned long long)c->props[p].value);
        k++;
    }
    for (unsigned a = 0; a < s->n; a++)
        for (unsigned b = a + 1; b < s->n; b++)
            if (s->values[a] == s->values[b])
                fail_msg("server %u applied value %llu twice", i,
                         (unsigned long long)s->values[a]);
    assert_int_equal(s->index_mismatches, 0);
}

static bool applied_everywhere(struct cluster *c, unsigned i, unsigned j)
{
    struct raft *ri = raft_fixture_get(&c->f, i);
    struct raft *rj = raft_fixture_get(&c->f, j);
    return raft_fixture_step_until_applied(&c->f, i, raft_last_index(ri), SIM_MS) &&
           raft_fixture_step_until_applied(&c->f, j, raft_last_index(rj), SIM_MS);
}

/* Three servers elect one leader, the others know its address, and commands are applied on all
 * three in the order proposed. */
static void test_elect_and_replicate(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_leader(c);
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct raft *r = raft_fixture_get(&c->f, i);
        raft_id id;
        const char *addr;
        raft_leader(r, &id, &addr);
        assert_int_equal(raft_state(r), i == leader ? RAFT_LEADER : RAFT_FOLLOWER);
        assert_int_equal(id, raft_fixture_get(&c->f, leader)->id);
        assert_non_null(addr);
        assert_string_equal(addr, raft_fixture_get(&c->f, leader)->address);
    }
    write_acked(c, leader, 1, 21);
    assert_true(raft_fixture_step_until_applied(&c->f, N_SERVERS,
                                                raft_last_index(raft_fixture_get(&c->f, leader)),
                                                SIM_MS));
    for (unsigned i = 0; i < N_SERVERS; i++) {
        assert_int_equal(c->state[i].n, 20);
        assert_has_acked(c, i);
    }
}

/* A follower refuses a proposal with RAFT_NOTLEADER and names the leader: what a store turns
 * into a NOT_LEADER answer carrying the leader's address. */
static void test_follower_refuses_and_names_leader(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_leader(c);
    unsigned follower = (leader + 1) % N_SERVERS;
    assert_int_equal(propose(c, follower, 7), RAFT_NOTLEADER);
    raft_id id;
    const char *addr;
    raft_leader(raft_fixture_get(&c->f, follower), &id, &addr);
    assert_string_equal(addr, raft_fixture_get(&c->f, leader)->address);
    /* the same proposal on the leader is accepted */
    write_acked(c, leader, 7, 8);
}

/* The leader dies: the two survivors elect a new one in a higher term, every acknowledged
 * command is still applied on both, and new writes go on. */
static void test_leader_killed(void **state)
{
    struct cluster *c = *state;
    unsigned old = wait_leader(c);
    raft_term old_term = raft_fixture_get(&c->f, old)->current_term;
    write_acked(c, old, 1, 11);
    raft_fixture_kill(&c->f, old);
    assert_true(raft_fixture_step_until_has_no_leader(&c->f, SIM_MS));
    unsigned now = wait_leader(c);
    assert_int_not_equal(now, old);
    assert_true(raft_fixture_get(&c->f, now)->current_term > old_term);
    write_acked(c, now, 11, 21);
    unsigned other = 3 - old - now;
    assert_true(applied_everywhere(c, now, other));
    assert_has_acked(c, now);
    assert_has_acked(c, other);
    assert_int_equal(c->state[now].n, 20);
    assert_int_equal(c->state[other].n, 20);
}

/* A barrier commits and consumes a log index without reaching the state machine; the
 * predicted indexes of later commands still match (the engine's skip-on-replay rule). */
static void barrier_cb(struct raft_barrier *req, int status)
{
    *(int *)req->data = status;
}

static void test_barrier_keeps_indexes(void **state)
{
    struct cluster *c = *state;
    unsigned leader = wait_leader(c);
    write_acked(c, leader, 1, 4);
    struct raft_barrier b;
    int status = -1;
    b.data = &status;
    assert_int_equal(raft_barrier(raft_fixture_get(&c->f, leader), &b, barrier_cb), 0);
    write_acked(c, leader, 4, 8);
    assert_int_equal(status, 0);
    assert_true(raft_fixture_step_until_applied(&c->f, N_SERVERS,
                                                raft_last_index(raft_fixture_get(&c->f, leader)),
                                                SIM_MS));
    for (unsigned i = 0; i < N_SERVERS; i++)
        assert_has_acked(c, i); /* includes index_mismatches == 0 */
}

static void isolate(struct cluster *c, unsigned i)
{
    for (unsigned j = 0; j < N_SERVERS; j++) {
        if (j == i)
            continue;
        raft_fixture_disconnect(&c->f, i, j);
        raft_fixture_disconnect(&c->f, j, i);
    }
}

static void rejoin(struct cluster *c, unsigned i)
{
    for (unsigned j = 0; j < N_SERVERS; j++) {
        if (j == i)
            continue;
        raft_fixture_reconnect(&c->f, i, j);
        raft_fixture_reconnect(&c->f, j, i);
    }
}

/* A follower cut off while the other two commit catches up from the leader's log once it can
 * talk again, and ends with the same commands in the same order. */
static void test_disconnected_catches_up_by_log(void **state)
{
    struct cluster *c = *state;
    raft_fixture_elect(&c->f, 0);
    write_acked(c, 0, 1, 6);
    isolate(c, 2);
    write_acked(c, 0, 6, 31); /* committed by servers 0 and 1: a majority */
    assert_true(c->state[2].n < 30);
    rejoin(c, 2);
    assert_true(raft_fixture_step_until_applied(&c->f, 2,
                                                raft_last_index(raft_fixture_get(&c->f, 0)),
                                                SIM_MS));
    assert_int_equal(c->state[2].n, 30);
    assert_has_acked(c, 2);
    assert_int_equal(raft_fixture_n_recv(&c->f, 2, RAFT_IO_INSTALL_SNAPSHOT), 0);
}

/* With snapshots taken every few entries and few entries kept, a follower that fell behind
 * gets the state machine by InstallSnapshot, then the rest by log. */
static void test_disconnected_catches_up_by_snapshot(void **state)
{
    struct cluster *c = *state;
    for (unsigned i = 0; i < N_SERVERS; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&c->f, i), 4);
        raft_set_snapshot_trailing(raft_fixture_get(&c->f, i), 1);
    }
    raft_fixture_elect(&c->f, 0);
    write_acked(c, 0, 1, 3);
    isolate(c, 2);
    write_acked(c, 0, 3, 41);
    assert_true(c->state[2].n < 40);
    rejoin(c, 2);
    assert_true(raft_fixture_step_until_applied(&c->f, 2,
                                                raft_last_index(raft_fixture_get(&c->f, 0)),
                                                SIM_MS));
    assert_true(raft_fixture_n_recv(&c->f, 2, RAFT_IO_INSTALL_SNAPSHOT) >= 1);
    assert_true(c->state[2].restores >= 1);
    assert_int_equal(c->state[2].n, 40);
    assert_has_acked(c, 2);
}

/* A leader that loses its majority before a command commits answers RAFT_LEADERSHIPLOST: the
 * outcome is unknown to the client (the entry may still commit under the next leader). */
static void test_deposed_leader_fails_pending(void **state)
{
    struct cluster *c = *state;
    raft_fixture_elect(&c->f, 0);
    write_acked(c, 0, 1, 3);
    raft_fixture_saturate(&c->f, 1, 0);
    raft_fixture_saturate(&c->f, 2, 0);
    assert_int_equal(propose(c, 0, 99), 0);
    assert_true(raft_fixture_step_until_has_no_leader(&c->f, SIM_MS));
    assert_true(c->props[c->n_props - 1].done);
    assert_int_equal(c->props[c->n_props - 1].status, RAFT_LEADERSHIPLOST);
}

/* Defaults of this build, which docs/replication.md quotes. */
static void test_defaults(void **state)
{
    struct cluster *c = *state;
    struct raft *r = raft_fixture_get(&c->f, 0);
    assert_int_equal(r->election_timeout, 1000);
    assert_int_equal(r->heartbeat_timeout, 100);
    assert_int_equal(r->snapshot.threshold, 1024);
    assert_int_equal(r->snapshot.trailing, 2048); /* raft.h's comment says 128 */
    assert_false(r->pre_vote);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_elect_and_replicate, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_follower_refuses_and_names_leader, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_leader_killed, cluster_setup, cluster_teardown),
        cmocka_unit_test_setup_teardown(test_barrier_keeps_indexes, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_disconnected_catches_up_by_log, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_disconnected_catches_up_by_snapshot, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_deposed_leader_fails_pending, cluster_setup,
                                        cluster_teardown),
        cmocka_unit_test_setup_teardown(test_defaults, cluster_setup, cluster_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
