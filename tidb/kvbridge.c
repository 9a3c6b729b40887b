/* kvbridge.c — blocking TiKV calls for workers, made on the main loop. See kvbridge.h. */
#include "kvbridge.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"

#define MAX_PD 16
#define MAX_STORES 16
#define ADDR_MAX 256
#define MAX_HOPS 5

struct req {
    struct req *next, *prev; /* in the bridge's queue, then its in-flight list */
    struct kvbridge *b;
    char method[RPC_METHOD_MAX + 1];
    struct rpc_buf *args; /* one allocation: the array, then the bytes */
    size_t n;
    struct timespec deadline;
    int hops;
    struct event *retry;
    char last_err[256];
    /* the result, under b->mu */
    bool done;
    struct rpc_frame *resp;
    char err[300];
    pthread_cond_t cv;
};

struct store_client {
    char addr[ADDR_MAX];
    struct rpc_client *c;
};

struct kvbridge {
    struct event_base *base;
    struct tls_ctx *tls;
    struct http_client *pd[MAX_PD];
    char *pd_url[MAX_PD];
    size_t n_pd, pd_next;
    bool pd_busy;
    char leader[ADDR_MAX];
    char peers[3][ADDR_MAX]; /* the region's peers PD named last: where to go when the leader
                                is unreachable (a follower redirects to the new leader) */
    size_t n_peers, next_peer;
    struct store_client stores[MAX_STORES];
    size_t n_stores;
    struct req *waiting_pd; /* singly linked through next */
    struct req inflight;    /* list head (next/prev) of calls on the loop */
    /* shared with workers */
    pthread_mutex_t mu;
    struct req *queue_head, *queue_tail;
    bool closing;
    int pipe_rd, pipe_wr;
    struct event *wake;
    struct kvbridge_stats stats;
};

static void dispatch(struct req *r);

static long ms_left(const struct timespec *deadline)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
}

/* ---- loop side -------------------------------------------------------------------------- */

static void unlink_req(struct req *r)
{
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

/* Hands the result to the waiting worker; the loop never touches r afterwards. */
static void finish(struct req *r, const struct rpc_frame *resp, const char *err)
{
    struct kvbridge *b = r->b;
    unlink_req(r);
    if (r->retry)
        event_free(r->retry);
    r->retry = NULL;
    struct rpc_frame *copy = resp ? rpc_frame_dup(resp) : NULL;
    pthread_mutex_lock(&b->mu);
    r->resp = copy;
    if (!copy) {
        snprintf(r->err, sizeof r->err, "%s", resp ? "out of memory" : err);
        b->stats.failures++;
    }
    r->done = true;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dispatch(arg);
}

static void retry_later(struct req *r)
{
    if (!r->retry && !(r->retry = evtimer_new(r->b->base, on_retry, r))) {
        finish(r, NULL, "out of memory");
        return;
    }
    struct timeval tv = {0, KVBRIDGE_RETRY_MS * 1000};
    evtimer_add(r->retry, &tv);
}

static struct rpc_client *client_for(struct kvbridge *b, const char *addr)
{
    for (size_t i = 0; i < b->n_stores; i++)
        if (strcmp(b->stores[i].addr, addr) == 0)
            return b->stores[i].c;
    const char *colon = strrchr(addr, ':');
    if (!colon || b->n_stores == MAX_STORES)
        return NULL;
    char host[ADDR_MAX];
    snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
    struct rpc_client *c = rpc_client_new(b->base, host, atoi(colon + 1), b->tls, 3000);
    if (!c)
        return NULL;
    struct store_client *s = &b->stores[b->n_stores++];
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    s->c = c;
    return c;
}

static void ask_pd(struct kvbridge *b);

static void wait_for_pd(struct req *r)
{
    struct kvbridge *b = r->b;
    unlink_req(r);
    r->next = b->waiting_pd;
    b->waiting_pd = r;
    r->prev = NULL;
    ask_pd(b);
}

static void back_inflight(struct req *r)
{
    struct kvbridge *b = r->b;
    r->next = b->inflight.next;
    r->prev = &b->inflight;
    b->inflight.next->prev = r;
    b->inflight.next = r;
}

/* Every call that waited for PD goes on (later, if PD did not tell us a leader). */
static void release_waiting(struct kvbridge *b)
{
    struct req *r = b->waiting_pd;
    b->waiting_pd = NULL;
    while (r) {
        struct req *next = r->next;
        back_inflight(r);
        if (b->leader[0])
            dispatch(r);
        else
            retry_later(r);
        r = next;
    }
}

static int leader_from_region(struct kvbridge *b, const char *body, size_t len, char *out,
                              size_t outlen)
{
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *peers = json_object_get(j, "peers");
    b->n_peers = 0;
    for (size_t i = 0; i < json_array_size(peers) && b->n_peers < 3; i++) {
        const char *a = json_string_value(json_object_get(json_array_get(peers, i), "address"));
        if (a && *a && strlen(a) < ADDR_MAX)
            snprintf(b->peers[b->n_peers++], ADDR_MAX, "%s", a);
    }
    const char *addr = json_string_value(json_object_get(json_object_get(j, "leader"), "address"));
    if (!addr)
        addr = json_string_value(json_object_get(json_array_get(json_object_get(j, "peers"), 0),
                                                 "address"));
    int rc = addr && *addr ? 0 : -1;
    if (rc == 0)
        snprintf(out, outlen, "%s", addr);
    json_decref(j);
    return rc;
}

/* PD refused us: every call waiting for PD fails with why now, rather than retry into the
 * deadline (a certificate PD does not take stays refused). */
static void pd_refused(struct kvbridge *b, const char *why)
{
    log_warnx("%s", why);
    struct req *r = b->waiting_pd;
    b->waiting_pd = NULL;
    while (r) {
        struct req *next = r->next;
        back_inflight(r);
        finish(r, NULL, why);
        r = next;
    }
}

static void on_pd_reply(int status, const char *body, size_t len, const char *err, void *arg)
{
    struct kvbridge *b = arg;
    b->pd_busy = false;
    char addr[ADDR_MAX];
    if (status == 200 && leader_from_region(b, body, len, addr, sizeof addr) == 0) {
        snprintf(b->leader, sizeof b->leader, "%s", addr);
        b->next_peer = 0;
    } else if (status >= 400 && status < 500 && status != 404) {
        char why[300];
        json_t *j = json_loadb(body ? body : "", len, JSON_DECODE_ANY, NULL);
        snprintf(why, sizeof why, "PD %s refused TiDB (HTTP %d): %.200s", b->pd_url[b->pd_next],
                 status, json_is_string(j) ? json_string_value(j) : "");
        json_decref(j);
        pd_refused(b, why);
        return;
    } else if (!status && err && strstr(err, "certificate")) {
        /* the TLS handshake refused our certificate (CN, CA, expiry): no retry will pass */
        char why[400];
        snprintf(why, sizeof why, "PD %s refused TiDB: %s", b->pd_url[b->pd_next], err);
        pd_refused(b, why);
        return;
    } else {
        static unsigned logged;
        if (logged++ % 50 == 0)
            log_warnx("cannot learn TiKV's leader from PD %s: %s", b->pd_url[b->pd_next],
                      status ? (status == 404 ? "PD has no region yet (no TiKV store registered)"
                                              : "unexpected answer")
                             : err);
        b->pd_next = (b->pd_next + 1) % b->n_pd;
    }
    release_waiting(b);
}

static void ask_pd(struct kvbridge *b)
{
    if (b->pd_busy || b->closing)
        return;
    b->stats.pd_lookups++;
    if (http_client_request(b->pd[b->pd_next], EVHTTP_REQ_GET, "/pd/api/v1/region/id/1", NULL,
                            0, on_pd_reply, b) == 0)
        b->pd_busy = true;
    else
        release_waiting(b);
}

/* The leader did not answer: try the region's other peers in turn, then PD again. */
static void next_candidate(struct kvbridge *b)
{
    while (b->next_peer < b->n_peers) {
        const char *p = b->peers[b->next_peer++];
        if (strcmp(p, b->leader) != 0) {
            snprintf(b->leader, sizeof b->leader, "%s", p);
            return;
        }
    }
    b->next_peer = 0;
    b->leader[0] = '\0'; /* ask PD again */
}

static void on_reply(const struct rpc_frame *resp, const char *err, void *arg)
{
    struct req *r = arg;
    struct kvbridge *b = r->b;
    if (!resp) {
        snprintf(r->last_err, sizeof r->last_err, "%s", err);
        next_candidate(b);
        retry_later(r);
        return;
    }
    if (resp->status == RPC_NOT_LEADER && resp->nfields >= 1) {
        rpc_frame_message(resp, r->last_err, sizeof r->last_err);
        b->stats.redirects++;
        if (resp->fields[0].len > 0 && resp->fields[0].len < ADDR_MAX && r->hops++ < MAX_HOPS) {
            snprintf(b->leader, sizeof b->leader, "%.*s", (int)resp->fields[0].len,
                     (const char *)resp->fields[0].data);
            dispatch(r);
        } else {
            retry_later(r);
        }
        return;
    }
    finish(r, resp, NULL);
}

static void dispatch(struct req *r)
{
    struct kvbridge *b = r->b;
    if (b->closing) {
        finish(r, NULL, "TiDB is stopping");
        return;
    }
    long left = ms_left(&r->deadline);
    if (left <= 0) {
        char why[300];
        snprintf(why, sizeof why, "no TiKV leader answered within %d ms%s%s",
                 KVBRIDGE_DEADLINE_MS, r->last_err[0] ? ": " : "", r->last_err);
        finish(r, NULL, why);
        return;
    }
    if (!b->leader[0]) {
        wait_for_pd(r);
        return;
    }
    struct rpc_client *c = client_for(b, b->leader);
    char err[256];
    if (!c || rpc_client_call(c, r->method, r->args, r->n,
                              left < KVBRIDGE_CALL_TIMEOUT_MS ? (int)left : KVBRIDGE_CALL_TIMEOUT_MS,
                              on_reply, r, err, sizeof err) != 0) {
        finish(r, NULL, c ? err : "cannot reach the TiKV leader's address");
        return;
    }
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct kvbridge *b = arg;
    char buf[256];
    while (read(fd, buf, sizeof buf) == (ssize_t)sizeof buf) /* a short read: drained */
        ;
    pthread_mutex_lock(&b->mu);
    struct req *r = b->queue_head;
    b->queue_head = b->queue_tail = NULL;
    pthread_mutex_unlock(&b->mu);
    while (r) {
        struct req *next = r->next;
        back_inflight(r);
        b->stats.calls++;
        dispatch(r);
        r = next;
    }
}

/* ---- worker side ------------------------------------------------------------------------ */

static struct req *req_new(struct kvbridge *b, const char *method, const struct rpc_buf *args,
                           size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += args[i].len;
    struct req *r = calloc(1, sizeof *r);
    if (!r || !(r->args = malloc(n * sizeof *r->args + bytes + 1))) {
        free(r);
        return NULL;
    }
    uint8_t *p = (uint8_t *)(r->args + n);
    for (size_t i = 0; i < n; i++) {
        if (args[i].len)
            memcpy(p, args[i].data, args[i].len);
        r->args[i] = (struct rpc_buf){p, args[i].len};
        p += args[i].len;
    }
    r->n = n;
    r->b = b;
    snprintf(r->method, sizeof r->method, "%s", method);
    clock_gettime(CLOCK_MONOTONIC, &r->deadline);
    r->deadline.tv_sec += KVBRIDGE_DEADLINE_MS / 1000;
    pthread_cond_init(&r->cv, NULL);
    return r;
}

int kvbridge_call(struct kvbridge *b, const char *method, const struct rpc_buf *args, size_t n,
                  struct rpc_frame **resp, char *err, size_t errlen)
{
    *resp = NULL;
    struct req *r = req_new(b, method, args, n);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    pthread_mutex_lock(&b->mu);
    if (b->closing) {
        snprintf(r->err, sizeof r->err, "TiDB is stopping");
        r->done = true;
    } else {
        bool wake = !b->queue_head; /* else the loop has a wake-up coming for the queue */
        if (b->queue_tail)
            b->queue_tail->next = r;
        else
            b->queue_head = r;
        b->queue_tail = r;
        char one = 1;
        if (wake && write(b->pipe_wr, &one, 1) < 0 && errno != EAGAIN)
            log_warn("kvbridge: cannot wake the event loop");
    }
    while (!r->done)
        pthread_cond_wait(&r->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
    *resp = r->resp;
    if (!r->resp)
        snprintf(err, errlen, "%s", r->err);
    pthread_cond_destroy(&r->cv);
    free(r->args);
    free(r);
    return *resp ? 0 : -1;
}

/* ---- convenience -------------------------------------------------------------------------- */

/* Calls method; -1 unless the answer is OK (or NOT_FOUND when not_found is given). */
static int call_ok(struct kvbridge *b, const char *method, const struct rpc_buf *args, size_t n,
                   struct rpc_frame **resp, bool *not_found, char *err, size_t errlen)
{
    if (kvbridge_call(b, method, args, n, resp, err, errlen) != 0)
        return -1;
    if ((*resp)->status == RPC_OK)
        return 0;
    if (not_found && (*resp)->status == RPC_NOT_FOUND) {
        *not_found = true;
        return 0;
    }
    char msg[RPC_ERR_LEN];
    rpc_frame_message(*resp, msg, sizeof msg);
    snprintf(err, errlen, "TiKV: %s: %s", rpc_status_name((*resp)->status), msg);
    rpc_frame_free(*resp);
    *resp = NULL;
    return -1;
}

static uint8_t *dup_bytes(const void *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

int kvb_get(struct kvbridge *b, const void *key, size_t klen, uint8_t **val, size_t *vlen,
            char *err, size_t errlen)
{
    struct rpc_buf a = {key, klen};
    struct rpc_frame *resp;
    bool nf = false;
    if (call_ok(b, "raw_get", &a, 1, &resp, &nf, err, errlen) != 0)
        return -1;
    int rc = nf ? 1 : 0;
    if (rc == 0 && resp->nfields < 1) {
        snprintf(err, errlen, "TiKV: raw_get answered without a value");
        rc = -1;
    } else if (rc == 0) {
        *vlen = resp->fields[0].len;
        if (!(*val = dup_bytes(resp->fields[0].data, *vlen))) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
    }
    rpc_frame_free(resp);
    return rc;
}

int kvb_put(struct kvbridge *b, const void *key, size_t klen, const void *val, size_t vlen,
            char *err, size_t errlen)
{
    struct rpc_buf a[2] = {{key, klen}, {val, vlen}};
    struct rpc_frame *resp;
    if (call_ok(b, "raw_put", a, 2, &resp, NULL, err, errlen) != 0)
        return -1;
    rpc_frame_free(resp);
    return 0;
}

int kvb_delete(struct kvbridge *b, const void *key, size_t klen, char *err, size_t errlen)
{
    struct rpc_buf a = {key, klen};
    struct rpc_frame *resp;
    if (call_ok(b, "raw_delete", &a, 1, &resp, NULL, err, errlen) != 0)
        return -1;
    rpc_frame_free(resp);
    return 0;
}

int kvb_batch_put(struct kvbridge *b, const struct rpc_buf *keys, const struct rpc_buf *vals,
                  size_t n, char *err, size_t errlen)
{
    struct rpc_buf *a = malloc(2 * n * sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        a[2 * i] = keys[i];
        a[2 * i + 1] = vals[i];
    }
    struct rpc_frame *resp;
    int rc = call_ok(b, "raw_batch_put", a, 2 * n, &resp, NULL, err, errlen);
    free(a);
    if (rc == 0)
        rpc_frame_free(resp);
    return rc;
}

int kvb_batch_delete(struct kvbridge *b, const struct rpc_buf *keys, size_t n, char *err,
                     size_t errlen)
{
    struct rpc_frame *resp;
    if (call_ok(b, "raw_batch_delete", keys, n, &resp, NULL, err, errlen) != 0)
        return -1;
    rpc_frame_free(resp);
    return 0;
}

void kvb_pairs_free(struct kvb_pair *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) {
        free(p[i].key);
        free(p[i].val);
    }
    free(p);
}

int kvb_scan(struct kvbridge *b, const void *start, size_t slen, const void *end, size_t elen,
             size_t limit, struct kvb_pair **out, size_t *n, char *err, size_t errlen)
{
    char lim[24];
    snprintf(lim, sizeof lim, "%zu", limit);
    struct rpc_buf a[3] = {{start, slen}, {end ? end : "", end ? elen : 0}, {lim, strlen(lim)}};
    struct rpc_frame *resp;
    *out = NULL;
    *n = 0;
    if (call_ok(b, "raw_scan", a, 3, &resp, NULL, err, errlen) != 0)
        return -1;
    size_t count = resp->nfields / 2;
    struct kvb_pair *p = calloc(count ? count : 1, sizeof *p);
    int rc = p ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        p[i].klen = resp->fields[2 * i].len;
        p[i].vlen = resp->fields[2 * i + 1].len;
        p[i].key = dup_bytes(resp->fields[2 * i].data, p[i].klen);
        p[i].val = dup_bytes(resp->fields[2 * i + 1].data, p[i].vlen);
        if (!p[i].key || !p[i].val)
            rc = -1;
    }
    rpc_frame_free(resp);
    if (rc != 0) {
        kvb_pairs_free(p, count);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *out = p;
    *n = count;
    return 0;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

static int split_pd(struct kvbridge *b, const char *list, char *err, size_t errlen)
{
    char *copy = strdup(list ? list : ""), *save = NULL;
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (char *t = strtok_r(copy, ",", &save); t && b->n_pd < MAX_PD;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        char cerr[300];
        b->pd[b->n_pd] = http_client_new(b->base, t, b->tls, 3, cerr, sizeof cerr);
        if (!b->pd[b->n_pd]) {
            snprintf(err, errlen, "PD endpoint %s: %s", t, cerr);
            free(copy);
            return -1;
        }
        b->pd_url[b->n_pd++] = strdup(t);
    }
    free(copy);
    if (b->n_pd == 0) {
        snprintf(err, errlen, "no PD endpoint given");
        return -1;
    }
    return 0;
}

struct kvbridge *kvbridge_new(struct event_base *base, const char *pd_endpoints,
                              struct tls_ctx *tls, char *err, size_t errlen)
{
    struct kvbridge *b = calloc(1, sizeof *b);
    int fds[2] = {-1, -1};
    if (!b || pipe(fds) != 0) {
        snprintf(err, errlen, "cannot set up the KV bridge: %s", b ? strerror(errno) : "out of memory");
        free(b);
        return NULL;
    }
    b->base = base;
    b->tls = tls;
    b->pipe_rd = fds[0];
    b->pipe_wr = fds[1];
    fcntl(b->pipe_rd, F_SETFL, O_NONBLOCK);
    fcntl(b->pipe_wr, F_SETFL, O_NONBLOCK);
    pthread_mutex_init(&b->mu, NULL);
    b->inflight.next = b->inflight.prev = &b->inflight;
    b->wake = event_new(base, b->pipe_rd, EV_READ | EV_PERSIST, on_wake, b);
    if (!b->wake || event_add(b->wake, NULL) != 0) {
        snprintf(err, errlen, "out of memory");
        kvbridge_free(b);
        return NULL;
    }
    if (split_pd(b, pd_endpoints, err, errlen) != 0) {
        kvbridge_free(b);
        return NULL;
    }
    return b;
}

void kvbridge_stats(struct kvbridge *b, struct kvbridge_stats *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->stats;
    pthread_mutex_unlock(&b->mu);
}

void kvbridge_free(struct kvbridge *b)
{
    if (!b)
        return;
    kvbridge_close(b);
    for (size_t i = 0; i < b->n_pd; i++) {
        http_client_free(b->pd[i]);
        free(b->pd_url[i]);
    }
    if (b->wake)
        event_free(b->wake);
    close(b->pipe_rd);
    close(b->pipe_wr);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void kvbridge_close(struct kvbridge *b)
{
    pthread_mutex_lock(&b->mu);
    b->closing = true;
    struct req *q = b->queue_head;
    b->queue_head = b->queue_tail = NULL;
    pthread_mutex_unlock(&b->mu);
    while (q) { /* never reached the loop */
        struct req *next = q->next;
        back_inflight(q);
        finish(q, NULL, "TiDB is stopping");
        q = next;
    }
    struct req *w = b->waiting_pd;
    b->waiting_pd = NULL;
    while (w) {
        struct req *next = w->next;
        back_inflight(w);
        finish(w, NULL, "TiDB is stopping");
        w = next;
    }
    for (size_t i = 0; i < b->n_stores; i++)
        rpc_client_free(b->stores[i].c); /* their calls fail: on_reply retries, then finish */
    b->n_stores = 0;
    while (b->inflight.next != &b->inflight)
        finish(b->inflight.next, NULL, "TiDB is stopping");
}
