/* tikv_pd.c — registration and heartbeats to PD. See tikv_pd.h. */
#include "tikv_pd.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "log.h"

#define TIKV_PD_MAX_ENDPOINTS 16
#define TIKV_PD_TIMEOUT_SEC 3

struct tikv_pd {
    struct event_base *base;
    struct tls_ctx *tls;
    char *urls[TIKV_PD_MAX_ENDPOINTS];
    struct http_client *clients[TIKV_PD_MAX_ENDPOINTS];
    size_t n_urls, current;
    char *address, *status_address, *version;
    bool encrypted;
    struct tikv_pd_callbacks cb;
    struct event *timer;
    uint64_t store_id;
    unsigned failures; /* in a row, for the log */
    bool refused, busy;
    bool bad_region_logged;
    bool hurry; /* the last stats asked for a quick next heartbeat */
    char last_answer[300];
};

static void schedule(struct tikv_pd *p, int ms);

static int split_endpoints(struct tikv_pd *p, const char *list, char *err, size_t errlen)
{
    const char *s = list;
    while (*s) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 0) {
            snprintf(err, errlen, "an empty PD endpoint in '%s'", list);
            return -1;
        }
        if (p->n_urls >= TIKV_PD_MAX_ENDPOINTS) {
            snprintf(err, errlen, "more than %d PD endpoints", TIKV_PD_MAX_ENDPOINTS);
            return -1;
        }
        if (!(p->urls[p->n_urls] = strndup(s, n))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        char cerr[300];
        p->clients[p->n_urls] =
            http_client_new(p->base, p->urls[p->n_urls], p->tls, TIKV_PD_TIMEOUT_SEC, cerr,
                            sizeof cerr);
        if (!p->clients[p->n_urls]) {
            snprintf(err, errlen, "PD endpoint %s: %s", p->urls[p->n_urls], cerr);
            free(p->urls[p->n_urls]);
            return -1;
        }
        p->n_urls++;
        s = end ? end + 1 : s + n;
    }
    if (p->n_urls == 0) {
        snprintf(err, errlen, "no PD endpoint given");
        return -1;
    }
    return 0;
}

/* One failed exchange: log now and then, move to the next endpoint, try again later. */
static void exchange_failed(struct tikv_pd *p, const char *what, const char *why)
{
    if (p->failures % 10 == 0)
        log_warnx("%s with PD %s failed: %s (retrying%s)", what, p->urls[p->current], why,
                  p->n_urls > 1 ? " with the next endpoint" : "");
    p->failures++;
    p->current = (p->current + 1) % p->n_urls;
    schedule(p, TIKV_PD_RETRY_MS);
}

static void answered(struct tikv_pd *p)
{
    if (p->failures)
        log_info("PD %s answers again", p->urls[p->current]);
    p->failures = 0;
    snprintf(p->last_answer, sizeof p->last_answer, "%s", p->urls[p->current]);
}

/* PD's error bodies are a JSON string; show it as text. */
static void pd_message(const char *body, size_t len, char *out, size_t outlen)
{
    json_t *v = json_loadb(body ? body : "", len, JSON_DECODE_ANY, NULL);
    if (json_is_string(v))
        snprintf(out, outlen, "%s", json_string_value(v));
    else
        snprintf(out, outlen, "%.*s", (int)(len > 200 ? 200 : len), body ? body : "");
    json_decref(v);
    size_t n = strlen(out); /* one line */
    while (n && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
        out[--n] = '\0';
}

static int parse_peer(json_t *j, struct tikv_pd_peer *out)
{
    json_t *id = json_object_get(j, "id"), *store = json_object_get(j, "store_id");
    const char *addr = json_string_value(json_object_get(j, "address"));
    if (!json_is_integer(id) || !json_is_integer(store) || json_integer_value(id) <= 0 ||
        json_integer_value(store) <= 0 || !addr || !*addr || strlen(addr) > TIKV_PD_ADDR_MAX ||
        !strchr(addr, ':'))
        return -1;
    out->id = (uint64_t)json_integer_value(id);
    out->store_id = (uint64_t)json_integer_value(store);
    snprintf(out->address, sizeof out->address, "%s", addr);
    return 0;
}

static int parse_region(json_t *j, struct tikv_pd_region *out)
{
    json_t *peers = json_object_get(j, "peers");
    json_int_t id = json_integer_value(json_object_get(j, "id"));
    json_int_t conf_ver =
        json_integer_value(json_object_get(json_object_get(j, "epoch"), "conf_ver"));
    size_t n = json_array_size(peers);
    if (id <= 0 || conf_ver <= 0 || n == 0 || n > TIKV_PD_MAX_PEERS)
        return -1;
    *out = (struct tikv_pd_region){(uint64_t)id, (uint64_t)conf_ver, n, {{0}}};
    for (size_t i = 0; i < n; i++)
        if (parse_peer(json_array_get(peers, i), &out->peers[i]) != 0)
            return -1;
    return 0;
}

/* Hands the reply's "region" (if any) to on_region. */
static void take_region(struct tikv_pd *p, json_t *reply)
{
    json_t *j = json_object_get(reply, "region");
    struct tikv_pd_region region;
    if (!j || !p->cb.on_region)
        return;
    if (parse_region(j, &region) != 0) {
        if (!p->bad_region_logged)
            log_warnx("PD %s sent a malformed region; ignoring it", p->urls[p->current]);
        p->bad_region_logged = true;
        return;
    }
    p->cb.on_region(&region, p->cb.arg);
}

static void on_register_reply(int status, const char *body, size_t len, const char *err,
                              void *arg)
{
    struct tikv_pd *p = arg;
    p->busy = false;
    char msg[300];
    if (status == 200) {
        json_t *v = json_loadb(body, len, 0, NULL);
        json_int_t id = json_integer_value(json_object_get(v, "store_id"));
        if (id <= 0) {
            json_decref(v);
            exchange_failed(p, "registration", "PD's answer has no store_id");
            return;
        }
        answered(p);
        p->store_id = (uint64_t)id;
        log_info("registered with PD %s as store %llu", p->urls[p->current],
                 (unsigned long long)p->store_id);
        if (p->cb.on_registered)
            p->cb.on_registered(p->store_id, p->cb.arg);
        take_region(p, v);
        json_decref(v);
        schedule(p, TIKV_PD_HEARTBEAT_FAST_MS); /* the first heartbeat soon: a group may form */
        return;
    }
    if (status >= 400 && status < 500) {
        pd_message(body, len, msg, sizeof msg);
        char why[400];
        if (strstr(msg, "HTTP request to an HTTPS server"))
            snprintf(why, sizeof why, "PD %s speaks HTTPS but this store is configured without "
                     "TLS: set [security] ca-path, cert-path and key-path, and use https:// PD "
                     "endpoints", p->urls[p->current]);
        else
            snprintf(why, sizeof why, "PD %s refused this store (HTTP %d): %s",
                     p->urls[p->current], status, msg);
        p->refused = true;
        log_error("%s", why);
        if (p->cb.on_refused)
            p->cb.on_refused(why, p->cb.arg);
        return;
    }
    if (status)
        pd_message(body, len, msg, sizeof msg);
    exchange_failed(p, "registration", status ? msg : err);
}

static void on_heartbeat_reply(int status, const char *body, size_t len, const char *err,
                               void *arg)
{
    struct tikv_pd *p = arg;
    p->busy = false;
    char msg[300];
    if (status == 200) {
        answered(p);
        json_t *v = json_loadb(body, len, 0, NULL);
        take_region(p, v);
        json_decref(v);
        schedule(p, p->hurry ? TIKV_PD_HEARTBEAT_FAST_MS : TIKV_PD_HEARTBEAT_MS);
        return;
    }
    if (status == 404) { /* PD lost its state: register again */
        log_warnx("PD %s does not know store %llu any more; registering again",
                  p->urls[p->current], (unsigned long long)p->store_id);
        p->store_id = 0;
        schedule(p, 0);
        return;
    }
    if (status)
        pd_message(body, len, msg, sizeof msg);
    exchange_failed(p, "heartbeat", status ? msg : err);
}

static void send_register(struct tikv_pd *p)
{
    json_t *b = json_pack("{s:s, s:s, s:s, s:b}", "address", p->address, "status_address",
                          p->status_address, "version", p->version, "encrypted", p->encrypted);
    char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (text && http_client_request(p->clients[p->current], EVHTTP_REQ_POST,
                                    "/pd/api/v1/tikv/register", text, strlen(text),
                                    on_register_reply, p) == 0)
        p->busy = true;
    else
        exchange_failed(p, "registration", "cannot queue the request");
    free(text);
}

static void send_heartbeat(struct tikv_pd *p)
{
    struct tikv_pd_stats st = {0};
    if (p->cb.stats)
        p->cb.stats(&st, p->cb.arg);
    p->hurry = st.hurry;
    json_t *b = json_pack("{s:I, s:I, s:I, s:I, s:I}", "store_id", (json_int_t)p->store_id,
                          "capacity", (json_int_t)st.capacity, "available",
                          (json_int_t)st.available, "used_size", (json_int_t)st.used_size,
                          "region_count", (json_int_t)st.region_count);
    if (b && st.leader_of) {
        json_object_set_new(b, "leader_of", json_pack("[I]", (json_int_t)st.leader_of));
        json_object_set_new(b, "term", json_integer((json_int_t)st.term));
    }
    char *text = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    if (text && http_client_request(p->clients[p->current], EVHTTP_REQ_POST,
                                    "/pd/api/v1/tikv/heartbeat", text, strlen(text),
                                    on_heartbeat_reply, p) == 0)
        p->busy = true;
    else
        exchange_failed(p, "heartbeat", "cannot queue the request");
    free(text);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tikv_pd *p = arg;
    if (p->refused || p->busy)
        return;
    if (p->store_id == 0)
        send_register(p);
    else
        send_heartbeat(p);
}

static void schedule(struct tikv_pd *p, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(p->timer, &tv);
}

struct tikv_pd *tikv_pd_new(struct event_base *base, const char *endpoints, struct tls_ctx *tls,
                            const struct tikv_pd_store *store,
                            const struct tikv_pd_callbacks *cb, char *err, size_t errlen)
{
    struct tikv_pd *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    p->base = base;
    p->tls = tls;
    p->cb = *cb;
    p->encrypted = store->encrypted;
    p->address = strdup(store->address ? store->address : "");
    p->status_address = strdup(store->status_address ? store->status_address : "");
    p->version = strdup(store->version ? store->version : "");
    p->timer = evtimer_new(base, on_timer, p);
    if (!p->address || !p->status_address || !p->version || !p->timer) {
        snprintf(err, errlen, "out of memory");
        tikv_pd_free(p);
        return NULL;
    }
    if (split_endpoints(p, endpoints ? endpoints : "", err, errlen) != 0) {
        tikv_pd_free(p);
        return NULL;
    }
    return p;
}

void tikv_pd_start(struct tikv_pd *p)
{
    schedule(p, 0);
}

uint64_t tikv_pd_store_id(const struct tikv_pd *p)
{
    return p->store_id;
}

const char *tikv_pd_endpoint(const struct tikv_pd *p)
{
    return p->last_answer;
}

void tikv_pd_free(struct tikv_pd *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_urls; i++) {
        http_client_free(p->clients[i]);
        free(p->urls[i]);
    }
    if (p->timer)
        event_free(p->timer);
    free(p->address);
    free(p->status_address);
    free(p->version);
    free(p);
}
