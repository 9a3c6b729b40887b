#include "pd_member.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tls.h"
#include "pd_tso.h"

#define HEARTBEAT_MS 250
#define ELECTION_MIN_MS 1000
#define ELECTION_SPREAD_MS 1000
#define PEER_TIMEOUT_SEC 2
#define COMMIT_TIMEOUT_MS 3000

enum role { FOLLOWER, CANDIDATE, LEADER };

/* A write waiting for a majority before its reply goes out. */
struct pending_write {
    uint64_t version;
    int64_t deadline_ms;
    struct evhttp_request *req;
    json_t *reply;
    struct pending_write *next;
};

/* A TSO request waiting for the clock to move (its millisecond's logical part is used up). */
struct tso_wait {
    struct evhttp_request *req;
    uint32_t count;
    struct tso_wait *next;
};

struct peer {
    struct pd_member *m;
    const struct pd_member_conf *conf;
    char client_url[300];
    struct http_client *client;
    bool append_inflight, vote_inflight;
    bool append_again; /* state changed while a heartbeat was in flight */
    int64_t last_ack_ms; /* monotonic; 0 = never */
    uint64_t acked_hw;
    uint64_t acked_term, acked_version;
    char last_error[300];
};

struct pd_member {
    struct event_base *base;
    const struct pd_config *cfg;
    struct pd_state *state;
    struct pd_tso tso;
    enum role role;
    int leader;          /* index into cfg->members, -1 when unknown */
    char leader_client_url[300];
    size_t votes;
    int64_t leader_since_ms;
    struct event *tick, *election;
    struct peer *peers;  /* one per member; peers[cfg->self] is unused */
    struct pending_write *pending;
    struct tso_wait *tso_waits, **tso_waits_tail; /* FIFO */
    struct event *tso_timer;
    uint64_t cluster_id;
    char own_cn[256]; /* CN of our server cert: our peers present theirs (TLS on) */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t member_id(const struct pd_member_conf *mc)
{
    char url[300];
    url_host_port(&mc->peer, url, sizeof url);
    return fnv1a(fnv1a(14695981039346656037ull, mc->name), url) >> 1;
}

/* Every member derives the same id from the same --initial-cluster, whatever its order. */
static uint64_t derive_cluster_id(const struct pd_config *cfg)
{
    uint64_t sum = 0;
    for (size_t i = 0; i < cfg->n_members; i++)
        sum += member_id(&cfg->members[i]);
    return (sum ^ 0x7469736973ull) >> 1;
}

static size_t majority(const struct pd_member *m)
{
    return m->cfg->n_members / 2 + 1;
}

static bool is_self(const struct pd_member *m, size_t i)
{
    return i == m->cfg->self;
}

static const char *self_name(const struct pd_member *m)
{
    return m->cfg->name;
}

static int save_state(struct pd_member *m)
{
    char err[512];
    if (pd_state_save(m->state, err, sizeof err) == 0)
        return 0;
    log_error("%s", err);
    return -1;
}

static void reset_election_timer(struct pd_member *m)
{
    struct timeval tv;
    long ms = ELECTION_MIN_MS + random() % ELECTION_SPREAD_MS;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    evtimer_add(m->election, &tv);
}

static void set_leader(struct pd_member *m, int leader, const char *client_url)
{
    if (m->leader != leader) {
        if (leader >= 0)
            log_info("PD leader is %s (term %llu)", m->cfg->members[leader].name,
                     (unsigned long long)m->state->term);
        else
            log_info("no PD leader (term %llu)", (unsigned long long)m->state->term);
    }
    m->leader = leader;
    snprintf(m->leader_client_url, sizeof m->leader_client_url, "%s", client_url ? client_url : "");
}

static void fail_pending(struct pd_member *m, const char *why)
{
    while (m->pending) {
        struct pending_write *w = m->pending;
        m->pending = w->next;
        http_reply_error(w->req, 503, "%s", why);
        json_decref(w->reply);
        free(w);
    }
}

static void become_follower(struct pd_member *m, uint64_t term)
{
    fail_pending(m, "PD leadership changed before the write reached a majority; retry");
    bool changed = term != m->state->term;
    if (m->role == LEADER)
        log_warnx("stepping down as PD leader (term %llu)", (unsigned long long)m->state->term);
    m->role = FOLLOWER;
    if (changed) {
        m->state->term = term;
        m->state->voted_for[0] = '\0';
        save_state(m);
        set_leader(m, -1, NULL);
    }
    reset_election_timer(m);
}

/* The value that a majority of members has reached: the majority-th highest of vals[n]. */
static uint64_t majority_value(const struct pd_member *m, uint64_t *vals, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (vals[j] > vals[i]) {
                uint64_t t = vals[i];
                vals[i] = vals[j];
                vals[j] = t;
            }
    return vals[majority(m) - 1];
}

static void recompute_committed_hw(struct pd_member *m)
{
    uint64_t hws[PD_MAX_MEMBERS];
    size_t n = m->cfg->n_members;
    for (size_t i = 0; i < n; i++)
        hws[i] = is_self(m, i) ? pd_state_tso_hw(m->state) : m->peers[i].acked_hw;
    uint64_t committed = majority_value(m, hws, n);
    if (committed > m->tso.committed_hw)
        m->tso.committed_hw = committed;
}

/* The newest state version a majority of members has persisted in this leader's term. */
static uint64_t committed_version(const struct pd_member *m)
{
    uint64_t v[PD_MAX_MEMBERS];
    size_t n = m->cfg->n_members;
    uint64_t term = pd_state_version_term(m->state);
    for (size_t i = 0; i < n; i++) {
        const struct peer *p = &m->peers[i];
        if (is_self(m, i))
            v[i] = pd_state_version(m->state);
        else
            v[i] = p->acked_term == term ? p->acked_version : 0;
    }
    return majority_value(m, v, n);
}

/* Answers the writes a majority now holds, and gives up on those past their deadline. */
static void answer_pending(struct pd_member *m)
{
    uint64_t committed = committed_version(m);
    int64_t now = mono_ms();
    struct pending_write **pp = &m->pending;
    while (*pp) {
        struct pending_write *w = *pp;
        if (w->version <= committed)
            http_reply_json(w->req, 200, w->reply);
        else if (now > w->deadline_ms)
            http_reply_error(w->req, 503, "the write was not persisted by a majority of PD "
                             "members within %d ms; retry", COMMIT_TIMEOUT_MS);
        else {
            pp = &w->next;
            continue;
        }
        if (w->version > committed)
            json_decref(w->reply);
        *pp = w->next;
        free(w);
    }
}

static void note_peer_error(struct peer *p, const char *what, const char *err)
{
    char line[300];
    snprintf(line, sizeof line, "%s: %s", what, err);
    if (strcmp(line, p->last_error) != 0)
        log_warnx("PD peer %s: %s", p->conf->name, line);
    snprintf(p->last_error, sizeof p->last_error, "%s", line);
}

static void note_peer_ok(struct peer *p)
{
    if (p->last_error[0])
        log_info("PD peer %s is reachable again", p->conf->name);
    p->last_error[0] = '\0';
    p->last_ack_ms = mono_ms();
}

/* Parses a peer reply; a higher term turns us into a follower. NULL when unusable. */
static json_t *peer_reply(struct peer *p, int status, const char *body, size_t len,
                          const char *err, const char *what)
{
    if (status != 200) {
        char why[300];
        snprintf(why, sizeof why, "%s", err ? err : "");
        if (!err)
            snprintf(why, sizeof why, "HTTP %d: %.200s", status, body);
        note_peer_error(p, what, why);
        return NULL;
    }
    json_t *r = json_loadb(body, len, 0, NULL);
    if (!json_is_object(r)) {
        note_peer_error(p, what, "malformed reply");
        json_decref(r);
        return NULL;
    }
    note_peer_ok(p);
    const char *url = json_string_value(json_object_get(r, "client_url"));
    if (url)
        snprintf(p->client_url, sizeof p->client_url, "%s", url);
    uint64_t term = (uint64_t)json_integer_value(json_object_get(r, "term"));
    if (term > p->m->state->term) {
        become_follower(p->m, term);
        json_decref(r);
        return NULL;
    }
    return r;
}

static void self_client_url(const struct pd_member *m, char *buf, size_t len)
{
    const struct url *u = &m->cfg->advertise_client_url;
    char hp[URL_HOST_PORT_LEN];
    url_host_port(u, hp, sizeof hp);
    snprintf(buf, len, "%s://%s", u->scheme, hp);
}

static void send_json(struct peer *p, const char *path, json_t *body, http_client_cb cb)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text || http_client_request(p->client, EVHTTP_REQ_POST, path, text, strlen(text), cb, p) != 0) {
        note_peer_error(p, path, "cannot queue request");
        if (strstr(path, "vote"))
            p->vote_inflight = false;
        else
            p->append_inflight = false;
    }
    free(text);
}

static void become_leader(struct pd_member *m);

static void on_vote_reply(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct peer *p = arg;
    struct pd_member *m = p->m;
    p->vote_inflight = false;
    json_t *r = peer_reply(p, status, body, len, err, "vote");
    if (!r)
        return;
    uint64_t term = (uint64_t)json_integer_value(json_object_get(r, "term"));
    if (m->role == CANDIDATE && term == m->state->term &&
        json_is_true(json_object_get(r, "granted"))) {
        m->votes++;
        if (m->votes >= majority(m))
            become_leader(m);
    }
    json_decref(r);
}

static void start_election(struct pd_member *m)
{
    m->role = CANDIDATE;
    m->state->term++;
    snprintf(m->state->voted_for, sizeof m->state->voted_for, "%s", self_name(m));
    m->votes = 1;
    set_leader(m, -1, NULL);
    if (save_state(m) != 0) {
        reset_election_timer(m);
        return;
    }
    log_info("starting PD leader election for term %llu", (unsigned long long)m->state->term);
    if (m->votes >= majority(m)) {
        become_leader(m);
        return;
    }
    char url[300];
    self_client_url(m, url, sizeof url);
    for (size_t i = 0; i < m->cfg->n_members; i++) {
        struct peer *p = &m->peers[i];
        if (is_self(m, i) || p->vote_inflight)
            continue;
        p->vote_inflight = true;
        send_json(p, "/pd/peer/v1/vote",
                  json_pack("{s:I, s:s, s:s, s:I, s:I}", "term", (json_int_t)m->state->term,
                            "candidate", self_name(m), "client_url", url, "state_term",
                            (json_int_t)pd_state_version_term(m->state), "state_version",
                            (json_int_t)pd_state_version(m->state)),
                  on_vote_reply);
    }
    reset_election_timer(m);
}

static void on_election_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pd_member *m = arg;
    if (m->role != LEADER)
        start_election(m);
}

static void send_append(struct pd_member *m, struct peer *p);

static void on_append_reply(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct peer *p = arg;
    p->append_inflight = false;
    json_t *r = peer_reply(p, status, body, len, err, "heartbeat");
    if (!r)
        return;
    if (json_is_true(json_object_get(r, "ok"))) {
        p->acked_term = (uint64_t)json_integer_value(json_object_get(r, "state_term"));
        p->acked_version = (uint64_t)json_integer_value(json_object_get(r, "state_version"));
        p->acked_hw = (uint64_t)json_integer_value(json_object_get(r, "tso_hw"));
        recompute_committed_hw(p->m);
        answer_pending(p->m);
    }
    json_decref(r);
    if (p->append_again && p->m->role == LEADER) {
        p->append_again = false;
        send_append(p->m, p);
    }
}

static void send_append(struct pd_member *m, struct peer *p)
{
    char url[300];
    self_client_url(m, url, sizeof url);
    json_t *body = json_pack("{s:I, s:s, s:s, s:I, s:I}", "term", (json_int_t)m->state->term,
                             "leader", self_name(m), "client_url", url, "state_term",
                             (json_int_t)pd_state_version_term(m->state), "state_version",
                             (json_int_t)pd_state_version(m->state));
    if (!body)
        return;
    bool follower_current = p->acked_term == pd_state_version_term(m->state) &&
                            p->acked_version == pd_state_version(m->state);
    if (!follower_current)
        json_object_set(body, "state", m->state->doc);
    p->append_inflight = true;
    send_json(p, "/pd/peer/v1/append", body, on_append_reply);
}

/* Keeps the TSO window ahead of the clock: persist a higher high-water when it runs short. */
static void renew_tso_window(struct pd_member *m)
{
    uint64_t want = pd_tso_want_hw(&m->tso, wall_ms());
    if (want && want > pd_state_tso_hw(m->state)) {
        pd_state_set_tso_hw(m->state, want);
        pd_state_touch(m->state, m->state->term);
        save_state(m);
    }
    recompute_committed_hw(m);
}

static size_t live_peers(const struct pd_member *m)
{
    size_t live = 0;
    int64_t now = mono_ms();
    for (size_t i = 0; i < m->cfg->n_members; i++)
        if (!is_self(m, i) && m->peers[i].last_ack_ms &&
            now - m->peers[i].last_ack_ms < 2 * ELECTION_MIN_MS)
            live++;
    return live;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pd_member *m = arg;
    if (m->role != LEADER)
        return;
    if (mono_ms() - m->leader_since_ms > 2 * ELECTION_MIN_MS && live_peers(m) + 1 < majority(m)) {
        log_warnx("PD leader lost contact with a majority of members");
        become_follower(m, m->state->term);
        set_leader(m, -1, NULL);
        return;
    }
    renew_tso_window(m);
    answer_pending(m);
    for (size_t i = 0; i < m->cfg->n_members; i++)
        if (!is_self(m, i) && !m->peers[i].append_inflight)
            send_append(m, &m->peers[i]);
}

static void become_leader(struct pd_member *m)
{
    m->role = LEADER;
    m->leader_since_ms = mono_ms();
    char url[300];
    self_client_url(m, url, sizeof url);
    set_leader(m, (int)m->cfg->self, url);
    evtimer_del(m->election);
    pd_tso_reset(&m->tso, pd_state_tso_hw(m->state));
    for (size_t i = 0; i < m->cfg->n_members; i++)
        m->peers[i].acked_hw = 0;
    pd_state_touch(m->state, m->state->term);
    save_state(m);
    log_info("became PD leader in term %llu", (unsigned long long)m->state->term);
    on_tick(-1, 0, m);
}

/* ---- peer RPC handlers ---- */

/* Peer RPCs come only from PD members: with TLS, the caller's certificate must carry the peer
 * role's CN (PD_PEER_CN) or the CN of our own server certificate, which the members present
 * when they dial each other. Any other client the allow-list lets in gets 403. */
static bool peer_allowed(const struct pd_member *m, struct evhttp_request *req)
{
    if (!m->cfg->tls)
        return true; /* plain HTTP: no identities to check (TLS off is for tests only) */
    const struct tls_peer *p = http_peer(req);
    const char *cn = p ? p->cn : "";
    bool own_differs = m->own_cn[0] && strcmp(m->own_cn, PD_PEER_CN) != 0;
    if (p && (strcmp(cn, PD_PEER_CN) == 0 || (own_differs && strcmp(cn, m->own_cn) == 0)))
        return true;
    char members[300];
    snprintf(members, sizeof members, "CN \"%s\"%s%s%s", PD_PEER_CN, own_differs ? " or \"" : "",
             own_differs ? m->own_cn : "", own_differs ? "\"" : "");
    log_warnx("refused PD peer request %s from %s: certificate CN \"%s\" is not a PD member's "
              "(%s)", evhttp_request_get_uri(req), p ? p->addr : "?", cn, members);
    http_reply_error(req, 403, "certificate CN \"%s\" may not send PD peer requests: only PD "
                     "members (%s) may", cn, members);
    return false;
}

static json_t *read_peer_body(struct evhttp_request *req, const char **candidate)
{
    char err[256];
    json_t *b = http_request_json(req, err, sizeof err);
    if (!json_is_object(b) || !json_is_integer(json_object_get(b, "term")) ||
        !json_is_string(json_object_get(b, *candidate))) {
        http_reply_error(req, 400, "malformed peer request");
        json_decref(b);
        return NULL;
    }
    *candidate = json_string_value(json_object_get(b, *candidate));
    return b;
}

static int member_index(const struct pd_member *m, const char *name)
{
    for (size_t i = 0; i < m->cfg->n_members; i++)
        if (strcmp(m->cfg->members[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Members learn each other's client URLs from their RPCs (for members/health output). */
static void remember_client_url(struct pd_member *m, int idx, const json_t *body)
{
    const char *url = json_string_value(json_object_get(body, "client_url"));
    if (idx >= 0 && url)
        snprintf(m->peers[idx].client_url, sizeof m->peers[idx].client_url, "%s", url);
}

static void reply_vote(const struct pd_member *m, struct evhttp_request *req, bool granted)
{
    char url[300];
    self_client_url(m, url, sizeof url);
    http_reply_json(req, 200, json_pack("{s:I, s:b, s:s}", "term", (json_int_t)m->state->term,
                                        "granted", granted, "client_url", url));
}

static void handle_vote(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_member *m = arg;
    const char *candidate = "candidate";
    if (!peer_allowed(m, req))
        return;
    json_t *b = read_peer_body(req, &candidate);
    if (!b)
        return;
    uint64_t term = (uint64_t)json_integer_value(json_object_get(b, "term"));
    int idx = member_index(m, candidate);
    if (term < m->state->term) { /* stale: answer with our term, change nothing */
        reply_vote(m, req, false);
        json_decref(b);
        return;
    }
    remember_client_url(m, idx, b);
    if (term > m->state->term)
        become_follower(m, term);
    bool their_state_ok = !pd_state_newer(
        pd_state_version_term(m->state), pd_state_version(m->state),
        (uint64_t)json_integer_value(json_object_get(b, "state_term")),
        (uint64_t)json_integer_value(json_object_get(b, "state_version")));
    bool granted = idx >= 0 && term == m->state->term && m->role != LEADER && their_state_ok &&
                   (!m->state->voted_for[0] || strcmp(m->state->voted_for, candidate) == 0);
    if (granted) {
        snprintf(m->state->voted_for, sizeof m->state->voted_for, "%s", candidate);
        granted = save_state(m) == 0;
        reset_election_timer(m);
    }
    reply_vote(m, req, granted);
    json_decref(b);
}

static void apply_leader_state(struct pd_member *m, const json_t *b)
{
    const json_t *doc = json_object_get(b, "state");
    uint64_t st = (uint64_t)json_integer_value(json_object_get(b, "state_term"));
    uint64_t sv = (uint64_t)json_integer_value(json_object_get(b, "state_version"));
    if (!doc || !pd_state_newer(st, sv, pd_state_version_term(m->state), pd_state_version(m->state)))
        return;
    char err[256];
    if (pd_state_replace(m->state, doc, err, sizeof err) != 0)
        log_warnx("%s", err);
    else
        save_state(m);
}

static void handle_append(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_member *m = arg;
    const char *leader = "leader";
    if (!peer_allowed(m, req))
        return;
    json_t *b = read_peer_body(req, &leader);
    if (!b)
        return;
    uint64_t term = (uint64_t)json_integer_value(json_object_get(b, "term"));
    int idx = member_index(m, leader);
    bool ok = idx >= 0 && term >= m->state->term;
    if (ok) {
        if (term > m->state->term || m->role != FOLLOWER)
            become_follower(m, term);
        reset_election_timer(m);
        set_leader(m, idx, json_string_value(json_object_get(b, "client_url")));
        remember_client_url(m, idx, b);
        m->peers[idx].last_ack_ms = mono_ms();
        apply_leader_state(m, b);
    }
    char url[300];
    self_client_url(m, url, sizeof url);
    http_reply_json(req, 200,
                    json_pack("{s:I, s:b, s:I, s:I, s:I, s:s}", "term", (json_int_t)m->state->term,
                              "ok", ok, "state_term", (json_int_t)pd_state_version_term(m->state),
                              "state_version", (json_int_t)pd_state_version(m->state), "tso_hw",
                              (json_int_t)pd_state_tso_hw(m->state), "client_url", url));
    json_decref(b);
}

/* ---- public API ---- */

static void on_tso_timer(evutil_socket_t fd, short what, void *arg);

struct pd_member *pd_member_new(struct event_base *base, const struct pd_config *cfg,
                                struct pd_state *state, struct tls_ctx *client_tls, char *err,
                                size_t errlen)
{
    struct pd_member *m = calloc(1, sizeof *m);
    if (!m || !(m->peers = calloc(cfg->n_members, sizeof *m->peers))) {
        free(m);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->base = base;
    m->cfg = cfg;
    m->state = state;
    m->leader = -1;
    m->cluster_id = derive_cluster_id(cfg);
    srandom((unsigned)(wall_ms() ^ member_id(&cfg->members[cfg->self])));
    m->tick = event_new(base, -1, EV_PERSIST, on_tick, m);
    m->election = evtimer_new(base, on_election_timeout, m);
    m->tso_timer = evtimer_new(base, on_tso_timer, m);
    m->tso_waits_tail = &m->tso_waits;
    if (!m->tick || !m->election || !m->tso_timer) {
        snprintf(err, errlen, "out of memory");
        pd_member_free(m);
        return NULL;
    }
    if (cfg->tls && tls_cert_file_cn(cfg->security.cert_path, m->own_cn, sizeof m->own_cn, err,
                                    errlen) != 0) {
        pd_member_free(m);
        return NULL;
    }
    for (size_t i = 0; i < cfg->n_members; i++) {
        struct peer *p = &m->peers[i];
        p->m = m;
        p->conf = &cfg->members[i];
        if (is_self(m, i))
            continue;
        char url[300], hp[URL_HOST_PORT_LEN];
        url_host_port(&p->conf->peer, hp, sizeof hp);
        snprintf(url, sizeof url, "%s://%s", p->conf->peer.scheme, hp);
        p->client = http_client_new(base, url, client_tls, PEER_TIMEOUT_SEC, err, errlen);
        bool header_ok = p->client &&
                         http_client_set_header(p->client, PD_FORWARDED_HEADER, cfg->name) == 0;
        if (p->client && !header_ok)
            snprintf(err, errlen, "out of memory");
        if (!header_ok) {
            pd_member_free(m);
            return NULL;
        }
    }
    return m;
}

void pd_member_free(struct pd_member *m)
{
    if (!m)
        return;
    /* Held requests are answered, not dropped: a request whose client already left is
     * owned by us (evhttp detached it), and only a reply frees it. Call this before the HTTP
     * servers are freed. */
    while (m->pending) {
        struct pending_write *w = m->pending;
        m->pending = w->next;
        http_reply_error(w->req, 503, "PD is stopping");
        json_decref(w->reply);
        free(w);
    }
    while (m->tso_waits) {
        struct tso_wait *w = m->tso_waits;
        m->tso_waits = w->next;
        http_reply_error(w->req, 503, "PD is stopping");
        free(w);
    }
    for (size_t i = 0; m->peers && i < m->cfg->n_members; i++)
        http_client_free(m->peers[i].client);
    free(m->peers);
    if (m->tick)
        event_free(m->tick);
    if (m->election)
        event_free(m->election);
    if (m->tso_timer)
        event_free(m->tso_timer);
    free(m);
}

int pd_member_serve_peers(struct pd_member *m, struct http_server *peer_http)
{
    if (http_server_route(peer_http, EVHTTP_REQ_POST, "/pd/peer/v1/vote", handle_vote, m) != 0 ||
        http_server_route(peer_http, EVHTTP_REQ_POST, "/pd/peer/v1/append", handle_append, m) != 0)
        return -1;
    return 0;
}

void pd_member_start(struct pd_member *m)
{
    struct timeval hb = {0, HEARTBEAT_MS * 1000};
    event_add(m->tick, &hb);
    if (m->cfg->n_members == 1)
        start_election(m);
    else
        reset_election_timer(m);
}

bool pd_member_is_leader(const struct pd_member *m)
{
    return m->role == LEADER;
}

bool pd_member_leader_known(const struct pd_member *m)
{
    return m->leader >= 0;
}

void pd_member_commit_reply(struct pd_member *m, struct evhttp_request *req, json_t *reply)
{
    char err[512];
    pd_state_touch(m->state, m->state->term);
    struct pending_write *w = calloc(1, sizeof *w);
    if (!w || pd_state_save(m->state, err, sizeof err) != 0) {
        if (!w)
            snprintf(err, sizeof err, "out of memory");
        log_error("%s", err);
        http_reply_error(req, 500, "cannot persist PD state: %s", err);
        json_decref(reply);
        free(w);
        return;
    }
    *w = (struct pending_write){pd_state_version(m->state), mono_ms() + COMMIT_TIMEOUT_MS, req,
                                reply, m->pending};
    m->pending = w;
    for (size_t i = 0; i < m->cfg->n_members; i++) {
        if (is_self(m, i))
            continue;
        if (m->peers[i].append_inflight)
            m->peers[i].append_again = true;
        else
            send_append(m, &m->peers[i]);
    }
    answer_pending(m);
}

static json_t *tso_json(uint64_t ts, uint32_t count)
{
    return json_pack("{s:I, s:I, s:I, s:I}", "tso", (json_int_t)ts, "physical",
                     (json_int_t)(ts >> PD_TSO_LOGICAL_BITS), "logical",
                     (json_int_t)(ts & (PD_TSO_MAX_LOGICAL - 1)), "count", (json_int_t)count);
}

/* Answers req unless the clock must move first (false: the caller queues it). */
static bool try_tso(struct pd_member *m, struct evhttp_request *req, uint32_t count)
{
    uint64_t ts;
    if (m->role != LEADER) {
        http_reply_error(req, 503, "this PD member is not the leader");
        return true;
    }
    enum pd_tso_result r = pd_tso_next(&m->tso, wall_ms(), count, &ts);
    if (r == PD_TSO_NEED_HW) {
        renew_tso_window(m);
        r = pd_tso_next(&m->tso, wall_ms(), count, &ts);
    }
    uint64_t now = wall_ms(), ready = pd_tso_ready_at(&m->tso);
    if (r == PD_TSO_OK)
        http_reply_json(req, 200, tso_json(ts, count));
    else if (r == PD_TSO_NEED_HW)
        http_reply_error(req, 503, "TSO window is not yet persisted by a majority of PD members; "
                         "retry");
    else if (r == PD_TSO_BAD_COUNT)
        http_reply_error(req, 400, "count must be a number from 1 to %u", PD_TSO_MAX_LOGICAL - 1);
    else if (ready > now + PD_TSO_WINDOW_MS)
        http_reply_error(req, 503, "this PD member's clock is %llu ms behind the last timestamp "
                         "handed out (clock moved back?); retry later",
                         (unsigned long long)(ready - now));
    else
        return false;
    return true;
}

static void arm_tso_timer(struct pd_member *m)
{
    uint64_t now = wall_ms(), ready = pd_tso_ready_at(&m->tso);
    uint64_t ms = ready > now ? ready - now : 1;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(m->tso_timer, &tv);
}

/* Serves the waiting TSO requests in order, as far as the clock allows. */
static void on_tso_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pd_member *m = arg;
    while (m->tso_waits && try_tso(m, m->tso_waits->req, m->tso_waits->count)) {
        struct tso_wait *w = m->tso_waits;
        m->tso_waits = w->next;
        free(w);
    }
    if (m->tso_waits)
        arm_tso_timer(m);
    else
        m->tso_waits_tail = &m->tso_waits;
}

void pd_member_tso_reply(struct pd_member *m, struct evhttp_request *req, uint32_t count)
{
    if (!m->tso_waits && try_tso(m, req, count))
        return;
    struct tso_wait *w = calloc(1, sizeof *w);
    if (!w) {
        http_reply_error(req, 503, "out of memory");
        return;
    }
    *w = (struct tso_wait){req, count, NULL};
    *m->tso_waits_tail = w;
    m->tso_waits_tail = &w->next;
    arm_tso_timer(m);
}

static void on_forward_reply(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct evhttp_request *req = arg;
    if (status == 0) {
        http_reply_error(req, 503, "cannot reach the PD leader: %s", err);
        return;
    }
    struct evbuffer *out = evbuffer_new();
    if (out)
        evbuffer_add(out, body, len);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=UTF-8");
    evhttp_send_reply(req, status, NULL, out);
    if (out)
        evbuffer_free(out);
}

void pd_member_forward(struct pd_member *m, struct evhttp_request *req)
{
    const char *from = evhttp_find_header(evhttp_request_get_input_headers(req),
                                          PD_FORWARDED_HEADER);
    if (from) { /* never forward twice: two members with stale views would loop */
        http_reply_error(req, 503, "PD member %s got a request forwarded by %s but is not the "
                         "leader; retry", self_name(m), from);
        return;
    }
    if (m->leader < 0 || is_self(m, (size_t)m->leader)) {
        http_reply_error(req, 503, "no PD leader elected yet: member %s reaches %zu of %zu other "
                         "members (a majority of %zu is needed)", self_name(m), live_peers(m),
                         m->cfg->n_members - 1, majority(m));
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *body = len ? (const char *)evbuffer_pullup(in, -1) : NULL;
    if (http_client_request(m->peers[m->leader].client, evhttp_request_get_command(req),
                            evhttp_request_get_uri(req), body, len, on_forward_reply, req) != 0)
        http_reply_error(req, 503, "cannot forward to the PD leader %s",
                         m->cfg->members[m->leader].name);
}

uint64_t pd_member_cluster_id(const struct pd_member *m)
{
    return m->cluster_id;
}

static json_t *member_json(const struct pd_member *m, size_t i)
{
    const struct pd_member_conf *mc = &m->cfg->members[i];
    char peer[300], hp[URL_HOST_PORT_LEN], client[300];
    url_host_port(&mc->peer, hp, sizeof hp);
    snprintf(peer, sizeof peer, "%s://%s", mc->peer.scheme, hp);
    if (is_self(m, i))
        self_client_url(m, client, sizeof client);
    else
        snprintf(client, sizeof client, "%s", m->peers[i].client_url);
    json_t *clients = client[0] ? json_pack("[s]", client) : json_array();
    return json_pack("{s:s, s:I, s:[s], s:o}", "name", mc->name, "member_id",
                     (json_int_t)member_id(mc), "peer_urls", peer, "client_urls", clients);
}

json_t *pd_member_leader_json(const struct pd_member *m)
{
    return m->leader >= 0 ? member_json(m, (size_t)m->leader) : json_null();
}

json_t *pd_member_members_json(const struct pd_member *m)
{
    json_t *members = json_array();
    for (size_t i = 0; i < m->cfg->n_members; i++)
        json_array_append_new(members, member_json(m, i));
    return json_pack("{s:{s:I}, s:o, s:o, s:o}", "header", "cluster_id",
                     (json_int_t)m->cluster_id, "members", members, "leader",
                     pd_member_leader_json(m), "etcd_leader", pd_member_leader_json(m));
}

json_t *pd_member_health_json(const struct pd_member *m)
{
    json_t *out = json_array();
    int64_t now = mono_ms();
    for (size_t i = 0; i < m->cfg->n_members; i++) {
        json_t *o = member_json(m, i);
        const struct peer *p = &m->peers[i];
        bool healthy = is_self(m, i) || (p->last_ack_ms && now - p->last_ack_ms < 2 * ELECTION_MIN_MS);
        json_object_del(o, "peer_urls");
        json_object_set_new(o, "health", json_boolean(healthy));
        json_array_append_new(out, o);
    }
    return out;
}
