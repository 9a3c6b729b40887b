#include "pd_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pd_tso.h"

#define STORE_DOWN_MS (30 * 60 * 1000)

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Followers hand the request to the leader; returns true when the caller must stop. */
static bool forwarded(struct pd_api *api, struct evhttp_request *req)
{
    if (pd_member_is_leader(api->member))
        return false;
    pd_member_forward(api->member, req);
    return true;
}

/* "12" → 12; anything else (including "", "0", "12x", overflow) → 0. */
static uint64_t parse_id(const char *s)
{
    if (!s || *s < '1' || *s > '9')
        return 0;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    return (*end || errno) ? 0 : (uint64_t)v;
}

static void format_time(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_int_t int_of(const json_t *o, const char *key)
{
    return json_integer_value(json_object_get(o, key));
}

static const char *state_name(int64_t since_heartbeat_ms)
{
    if (since_heartbeat_ms < PD_STORE_DISCONNECTED_MS)
        return "Up";
    return since_heartbeat_ms < STORE_DOWN_MS ? "Disconnected" : "Down";
}

/* {"store": {...}, "status": {...}} as real PD's StoreInfo. */
static json_t *store_info(const json_t *s)
{
    int64_t last = int_of(s, "last_heartbeat_ms"), start = int_of(s, "start_ts_ms");
    char last_s[32], start_s[32];
    format_time(last, last_s, sizeof last_s);
    format_time(start, start_s, sizeof start_s);
    const char *name = state_name(now_ms() - last);
    return json_pack(
        "{s:{s:O, s:O, s:i, s:s, s:O, s:O, s:O, s:I, s:I}, "
        "s:{s:I, s:I, s:I, s:I, s:s, s:s, s:s}}",
        "store", "id", json_object_get(s, "id"), "address", json_object_get(s, "address"),
        "state", strcmp(name, "Up") == 0 ? 0 : 1, "state_name", name, "version",
        json_object_get(s, "version"), "status_address", json_object_get(s, "status_address"),
        "encrypted", json_object_get(s, "encrypted"), "start_timestamp", (json_int_t)(start / 1000),
        "last_heartbeat", (json_int_t)last * 1000000, "status", "capacity",
        int_of(s, "capacity"), "available", int_of(s, "available"), "used_size",
        int_of(s, "used_size"), "region_count", int_of(s, "region_count"), "start_ts", start_s,
        "last_heartbeat_ts", last_s, "uptime", "");
}

static void handle_members(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    http_reply_json(req, 200, pd_member_members_json(api->member));
}

static void handle_leader(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    json_t *leader = pd_member_leader_json(api->member);
    if (json_is_null(leader)) {
        json_decref(leader);
        http_reply_error(req, 503, "no PD leader elected yet");
        return;
    }
    http_reply_json(req, 200, leader);
}

static void handle_health(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    /* Only the leader hears from every member; without a leader, say what we know. */
    if (pd_member_leader_known(api->member) && forwarded(api, req))
        return;
    http_reply_json(req, 200, pd_member_health_json(api->member));
}

static void handle_stores(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    if (forwarded(api, req))
        return;
    json_t *list = json_array();
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(api->state->doc, "stores"), i, s)
        json_array_append_new(list, store_info(s));
    http_reply_json(req, 200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list),
                                        "stores", list));
}

static void handle_store(struct evhttp_request *req, const char *rest, void *arg)
{
    struct pd_api *api = arg;
    if (forwarded(api, req))
        return;
    uint64_t id = parse_id(rest);
    json_t *s = id ? pd_state_find_store(api->state, id) : NULL;
    if (!id)
        http_reply_error(req, 400, "invalid store id '%s'", rest);
    else if (!s)
        http_reply_error(req, 404, "store %llu not found", (unsigned long long)id);
    else
        http_reply_json(req, 200, store_info(s));
}

/* A peer as real PD shows it ({"id","store_id","role_name":"Voter"}), plus its store's
 * address. */
static json_t *peer_info(const struct pd_state *st, const json_t *p)
{
    const json_t *store = pd_state_find_store(st, (uint64_t)int_of(p, "store_id"));
    const char *address = json_string_value(json_object_get(store, "address"));
    return json_pack("{s:O, s:O, s:s, s:s}", "id", json_object_get(p, "id"), "store_id",
                     json_object_get(p, "store_id"), "role_name", "Voter", "address",
                     address ? address : "");
}

/* Real PD's RegionInfo; "leader" only once a store reported leading it. */
static json_t *region_info(const struct pd_state *st, const json_t *r)
{
    json_t *peers = json_array();
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(r, "peers"), i, p)
        json_array_append_new(peers, peer_info(st, p));
    json_t *info = json_pack(
        "{s:O, s:O, s:O, s:O, s:o, s:I, s:I, s:I, s:I, s:I, s:I}", "id", json_object_get(r, "id"),
        "start_key", json_object_get(r, "start_key"), "end_key", json_object_get(r, "end_key"),
        "epoch", json_object_get(r, "epoch"), "peers", peers, "written_bytes", (json_int_t)0,
        "read_bytes", (json_int_t)0, "written_keys", (json_int_t)0, "read_keys", (json_int_t)0,
        "approximate_size", (json_int_t)0, "approximate_keys", (json_int_t)0);
    const json_t *leader = json_object_get(r, "leader");
    if (info && leader)
        json_object_set_new(info, "leader", peer_info(st, leader));
    return info;
}

static void handle_regions(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    if (forwarded(api, req))
        return;
    json_t *list = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(api->state->doc, "regions"), i, r)
        json_array_append_new(list, region_info(api->state, r));
    http_reply_json(req, 200, json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(list),
                                        "regions", list));
}

static void handle_region(struct evhttp_request *req, const char *rest, void *arg)
{
    struct pd_api *api = arg;
    if (forwarded(api, req))
        return;
    uint64_t id = parse_id(rest);
    const json_t *r = id ? pd_state_find_region(api->state, id) : NULL;
    if (!id)
        http_reply_error(req, 400, "invalid region id '%s'", rest);
    else if (!r)
        http_reply_error(req, 404, "region %llu not found", (unsigned long long)id);
    else
        http_reply_json(req, 200, region_info(api->state, r));
}

static void handle_cluster(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    if (forwarded(api, req))
        return;
    http_reply_json(req, 200, json_pack("{s:I, s:I}", "id",
                                        (json_int_t)pd_member_cluster_id(api->member),
                                        "max_peer_count", (json_int_t)api->cfg->max_replicas));
}

static json_t *string_list(const struct cfg_list *l)
{
    json_t *a = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(a, json_string(l->items[i]));
    return a;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static void handle_config(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    if (forwarded(api, req))
        return;
    const struct pd_config *c = api->cfg;
    http_reply_json(
        req, 200,
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:I, s:s}, s:{s:I, s:s, s:s}, "
                  "s:{s:s, s:s, s:s, s:o}}",
                  "name", c->name, "data-dir", c->data_dir, "client-urls", c->client_urls,
                  "peer-urls", c->peer_urls, "initial-cluster", c->initial_cluster,
                  "replication", "max-replicas", (json_int_t)c->max_replicas, "location-labels",
                  "", "schedule", "max-snapshot-count", (json_int_t)64, "max-store-down-time",
                  "30m0s", "split-merge-interval", "1h0m0s", "security", "cacert-path",
                  or_empty(c->security.cacert_path), "cert-path",
                  or_empty(c->security.cert_path), "key-path", or_empty(c->security.key_path),
                  "cert-allowed-cn", string_list(&c->security.cert_allowed_cn)));
}

static void handle_status(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    http_reply_json(req, 200, json_pack("{s:s, s:s, s:I}", "version", "tisim-0.1.0",
                                        "git_hash", "", "start_timestamp",
                                        (json_int_t)api->start_time));
}

/* POST /pd/api/v1/tso[?count=N] → {"tso":N,"physical":MS,"logical":L,"count":N}: the last of
 * count consecutive timestamps. */
static void handle_tso(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    if (forwarded(api, req))
        return;
    char *count_s = http_query_param(req, "count");
    uint64_t count = count_s ? parse_id(count_s) : 1;
    free(count_s);
    if (count == 0 || count >= PD_TSO_MAX_LOGICAL) {
        http_reply_error(req, 400, "count must be a number from 1 to %u", PD_TSO_MAX_LOGICAL - 1);
        return;
    }
    pd_member_tso_reply(api->member, req, (uint32_t)count);
}

static json_t *read_object(struct evhttp_request *req)
{
    char err[256];
    json_t *b = http_request_json(req, err, sizeof err);
    if (b && !json_is_object(b)) {
        snprintf(err, sizeof err, "request body must be a JSON object");
        json_decref(b);
        b = NULL;
    }
    if (!b)
        http_reply_error(req, 400, "%s", err);
    return b;
}

/* A write's JSON object body on the leader; NULL when the request was forwarded or answered
 * with 400. */
static json_t *leader_write_body(struct pd_api *api, struct evhttp_request *req)
{
    return forwarded(api, req) ? NULL : read_object(req);
}

/* reply["region"] = what store_id learns of region 1, when it is one of its peers. */
static void add_region(const struct pd_state *st, json_t *reply, uint64_t store_id)
{
    json_t *region = pd_state_region_for_store(st, store_id);
    if (reply && region)
        json_object_set_new(reply, "region", region);
    else
        json_decref(region);
}

/* POST /pd/api/v1/tikv/register
 *   {"address":"127.0.0.1:20160","status_address":"127.0.0.1:20180","version":"...",
 *    "encrypted":false}
 *   → {"store_id":N,"cluster_id":N,"region":{"id":1,"start_key":"","end_key":"",
 *      "peers":[{"id":P,"store_id":S,"address":"host:port"}...],
 *      "epoch":{"conf_ver":C,"version":1}}}
 * The same address gets the same id again (a restart). "region" is there when the store is
 * one of region 1's peers (the first 3 stores that are Up). */
static void handle_register(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    json_t *b = leader_write_body(api, req);
    if (!b)
        return;
    const char *address = json_string_value(json_object_get(b, "address"));
    int status = 400;
    char err[512];
    uint64_t id = pd_state_register_store(api->state, address,
                                          json_string_value(json_object_get(b, "status_address")),
                                          json_string_value(json_object_get(b, "version")),
                                          json_is_true(json_object_get(b, "encrypted")), now_ms(),
                                          &status, err, sizeof err);
    if (id == 0) {
        log_warnx("store registration refused: %s", err);
        http_reply_error(req, status, "%s", err);
    } else {
        log_info("store %llu registered at %s", (unsigned long long)id, address);
        json_t *reply = json_pack("{s:I, s:I}", "store_id", (json_int_t)id, "cluster_id",
                                  (json_int_t)pd_member_cluster_id(api->member));
        add_region(api->state, reply, id);
        pd_member_commit_reply(api->member, req, reply);
    }
    json_decref(b);
}

/* POST /pd/api/v1/tikv/heartbeat
 *   {"store_id":N,"capacity":B,"available":B,"used_size":B,"region_count":N,
 *    "leader_of":[1],"term":T}
 *   → {"region":{...as in the register reply...},"ok":true}
 * "leader_of" (optional) lists the regions this store leads in Raft term "term"; PD records
 * the leader unless it already has a report with a higher term (a stale leader is ignored,
 * logged, and still answered 200). "region" is there when the store is one of its peers. */
static void handle_heartbeat(struct evhttp_request *req, const char *rest, void *arg)
{
    (void)rest;
    struct pd_api *api = arg;
    json_t *b = leader_write_body(api, req);
    if (!b)
        return;
    json_int_t id = json_integer_value(json_object_get(b, "store_id"));
    char err[256], note[512];
    int status;
    if (id <= 0)
        http_reply_error(req, 400, "\"store_id\" must be a positive integer");
    else if (pd_state_store_heartbeat(api->state, (uint64_t)id, b, now_ms(), &status, err,
                                      sizeof err, note, sizeof note) != 0)
        http_reply_error(req, status, "%s", err);
    else {
        if (note[0])
            log_warnx("%s", note);
        json_t *reply = json_object(); /* "region" first: "ok" stays the last line */
        add_region(api->state, reply, (uint64_t)id);
        if (reply)
            json_object_set_new(reply, "ok", json_true());
        pd_member_commit_reply(api->member, req, reply);
    }
    json_decref(b);
}

int pd_api_register(struct pd_api *api, struct http_server *http)
{
    static const struct {
        int methods;
        const char *path;
        http_handler fn;
    } routes[] = {
        {EVHTTP_REQ_GET, "/pd/api/v1/health", handle_health},
        {EVHTTP_REQ_GET, "/pd/api/v1/members", handle_members},
        {EVHTTP_REQ_GET, "/pd/api/v1/leader", handle_leader},
        {EVHTTP_REQ_GET, "/pd/api/v1/stores", handle_stores},
        {EVHTTP_REQ_GET, "/pd/api/v1/store/", handle_store},
        {EVHTTP_REQ_GET, "/pd/api/v1/regions", handle_regions},
        {EVHTTP_REQ_GET, "/pd/api/v1/region/id/", handle_region},
        {EVHTTP_REQ_GET, "/pd/api/v1/cluster", handle_cluster},
        {EVHTTP_REQ_GET, "/pd/api/v1/config", handle_config},
        {EVHTTP_REQ_GET, "/pd/api/v1/status", handle_status},
        {EVHTTP_REQ_POST, "/pd/api/v1/tso", handle_tso},
        {EVHTTP_REQ_POST, "/pd/api/v1/tikv/register", handle_register},
        {EVHTTP_REQ_POST, "/pd/api/v1/tikv/heartbeat", handle_heartbeat},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (http_server_route(http, routes[i].methods, routes[i].path, routes[i].fn, api) != 0)
            return -1;
    return 0;
}
