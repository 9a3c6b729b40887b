#include "pd_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pd_tso.h"
#include "url.h"

static json_t *empty_state(void)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:s, s:[], s:[]}", "version", (json_int_t)0,
                     "version_term", (json_int_t)0, "next_id", (json_int_t)1, "tso_hw",
                     (json_int_t)0, "encryption", "unknown", "stores", "regions");
}

static uint64_t get_u64(const json_t *doc, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(doc, key));
    return v > 0 ? (uint64_t)v : 0;
}

static void set_u64(json_t *doc, const char *key, uint64_t v)
{
    json_object_set_new(doc, key, json_integer((json_int_t)v));
}

/* "-5", "\"x\"", "null": a short rendering of a JSON value for error messages. */
static void describe(const json_t *v, char *buf, size_t len)
{
    char *text = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    int n = snprintf(buf, len, "%s", v ? (text ? text : "?") : "missing");
    if (n < 0 || (size_t)n >= len)
        snprintf(buf + len - 4, 4, "...");
    free(text);
}

/* An integer field within [min, max]; a missing optional field is fine. */
static int check_int(const json_t *obj, const char *prefix, const char *key, json_int_t min,
                     json_int_t max, bool required, char *why, size_t len)
{
    const json_t *v = json_object_get(obj, key);
    if (!v && !required)
        return 0;
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
    if (json_is_integer(v) && n >= min && n <= max)
        return 0;
    char got[48];
    describe(v, got, sizeof got);
    snprintf(why, len, "field \"%s%s\" is %s, must be an integer from %lld to %lld", prefix, key,
             got, (long long)min, (long long)max);
    return -1;
}

static int check_type(const json_t *obj, const char *prefix, const char *key, json_type type,
                      const char *what, char *why, size_t len)
{
    const json_t *v = json_object_get(obj, key);
    if (v && json_typeof(v) == type)
        return 0;
    char got[48];
    describe(v, got, sizeof got);
    snprintf(why, len, "field \"%s%s\" is %s, must be %s", prefix, key, got, what);
    return -1;
}

#define ID_MAX ((json_int_t)1 << 62)
static const char *const store_counters[] = {"capacity", "available", "used_size",
                                             "region_count"};
#define N_STORE_COUNTERS (sizeof store_counters / sizeof store_counters[0])

static int check_store(const json_t *store, size_t i, char *why, size_t len)
{
    char prefix[48];
    snprintf(prefix, sizeof prefix, "state.stores[%zu].", i);
    if (!json_is_object(store)) {
        snprintf(why, len, "field \"state.stores[%zu]\" must be an object", i);
        return -1;
    }
    if (check_int(store, prefix, "id", 1, ID_MAX, true, why, len) != 0 ||
        check_type(store, prefix, "address", JSON_STRING, "a host:port string", why, len) != 0)
        return -1;
    for (size_t k = 0; k < N_STORE_COUNTERS; k++)
        if (check_int(store, prefix, store_counters[k], 0, INT64_MAX, false, why, len) != 0)
            return -1;
    return 0;
}

static bool has_store(const json_t *stores, json_int_t id)
{
    size_t i;
    const json_t *st;
    json_array_foreach(stores, i, st) {
        if (json_integer_value(json_object_get(st, "id")) == id)
            return true;
    }
    return false;
}

/* peers[j]: an object with a peer id and the id of a known store, not already a peer. */
static int check_peer(const json_t *peers, size_t j, const char *prefix, const json_t *stores,
                      char *why, size_t len)
{
    const json_t *p = json_array_get(peers, j);
    char pp[80];
    snprintf(pp, sizeof pp, "%speers[%zu].", prefix, j);
    if (!json_is_object(p)) {
        snprintf(why, len, "field \"%speers[%zu]\" must be an object", prefix, j);
        return -1;
    }
    if (check_int(p, pp, "id", 1, ID_MAX, true, why, len) != 0 ||
        check_int(p, pp, "store_id", 1, ID_MAX, true, why, len) != 0)
        return -1;
    json_int_t sid = json_integer_value(json_object_get(p, "store_id"));
    for (size_t k = 0; k < j; k++)
        if (json_integer_value(json_object_get(json_array_get(peers, k), "store_id")) == sid) {
            snprintf(why, len, "field \"%sstore_id\" is %lld, a store that is already a peer",
                     pp, (long long)sid);
            return -1;
        }
    if (!has_store(stores, sid)) {
        snprintf(why, len, "field \"%sstore_id\" is %lld, not a known store", pp,
                 (long long)sid);
        return -1;
    }
    return 0;
}

static int check_peers(const json_t *r, const char *prefix, const json_t *stores, char *why,
                       size_t len)
{
    const json_t *peers = json_object_get(r, "peers");
    if (!json_is_array(peers) || json_array_size(peers) < 1 ||
        json_array_size(peers) > PD_REGION_MAX_PEERS) {
        char got[48];
        describe(peers, got, sizeof got);
        snprintf(why, len, "field \"%speers\" is %s, must be an array of 1 to %d peers", prefix,
                 got, PD_REGION_MAX_PEERS);
        return -1;
    }
    for (size_t j = 0; j < json_array_size(peers); j++)
        if (check_peer(peers, j, prefix, stores, why, len) != 0)
            return -1;
    return 0;
}

/* The leader, when known, is one of the peers; its term is a non-negative integer. */
static int check_leader(const json_t *r, const char *prefix, char *why, size_t len)
{
    if (check_int(r, prefix, "leader_term", 0, ID_MAX, false, why, len) != 0)
        return -1;
    const json_t *leader = json_object_get(r, "leader");
    if (!leader)
        return 0;
    size_t j;
    const json_t *p;
    json_array_foreach(json_object_get(r, "peers"), j, p) {
        if (json_is_object(leader) && json_equal((json_t *)p, (json_t *)leader))
            return 0;
    }
    char got[48];
    describe(leader, got, sizeof got);
    snprintf(why, len, "field \"%sleader\" is %s, must be one of the region's peers", prefix,
             got);
    return -1;
}

static int check_region(const json_t *r, const json_t *stores, char *why, size_t len)
{
    const char *prefix = "state.regions[0].", *ep = "state.regions[0].epoch.";
    if (!json_is_object(r)) {
        snprintf(why, len, "field \"state.regions[0]\" must be an object");
        return -1;
    }
    const json_t *epoch = json_object_get(r, "epoch");
    if (check_int(r, prefix, "id", PD_REGION_ID, PD_REGION_ID, true, why, len) != 0 ||
        check_type(r, prefix, "start_key", JSON_STRING, "a string", why, len) != 0 ||
        check_type(r, prefix, "end_key", JSON_STRING, "a string", why, len) != 0 ||
        check_type(r, prefix, "epoch", JSON_OBJECT, "an object", why, len) != 0 ||
        check_int(epoch, ep, "conf_ver", 1, ID_MAX, true, why, len) != 0 ||
        check_int(epoch, ep, "version", 1, ID_MAX, true, why, len) != 0)
        return -1;
    if (check_peers(r, prefix, stores, why, len) != 0)
        return -1;
    return check_leader(r, prefix, why, len);
}

/* tisim keeps one region: at most one entry, region 1. */
static int check_regions(const json_t *regions, const json_t *stores, char *why, size_t len)
{
    if (json_array_size(regions) > 1) {
        snprintf(why, len, "field \"state.regions\" has %zu entries, must have at most 1 "
                 "(region %d)", json_array_size(regions), PD_REGION_ID);
        return -1;
    }
    if (json_array_size(regions) == 0)
        return 0;
    return check_region(json_array_get(regions, 0), stores, why, len);
}

static bool is_encryption_state(const char *v)
{
    return v && (!strcmp(v, "unknown") || !strcmp(v, "on") || !strcmp(v, "off"));
}

int pd_state_check_doc(const json_t *doc, char *why, size_t len)
{
    const char *p = "state.";
    if (!json_is_object(doc)) {
        snprintf(why, len, "field \"state\" is missing or not an object");
        return -1;
    }
    if (check_int(doc, p, "version", 0, ID_MAX, true, why, len) != 0 ||
        check_int(doc, p, "version_term", 0, ID_MAX, true, why, len) != 0 ||
        check_int(doc, p, "next_id", 1, ID_MAX, true, why, len) != 0 ||
        check_int(doc, p, "tso_hw", 0, (json_int_t)PD_TSO_MAX_PHYSICAL, true, why, len) != 0 ||
        check_type(doc, p, "stores", JSON_ARRAY, "an array", why, len) != 0 ||
        check_type(doc, p, "regions", JSON_ARRAY, "an array", why, len) != 0)
        return -1;
    if (!is_encryption_state(json_string_value(json_object_get(doc, "encryption")))) {
        char got[48];
        describe(json_object_get(doc, "encryption"), got, sizeof got);
        snprintf(why, len, "field \"state.encryption\" is %s, must be \"unknown\", \"on\" or "
                 "\"off\"", got);
        return -1;
    }
    size_t i;
    const json_t *store;
    json_array_foreach(json_object_get(doc, "stores"), i, store)
        if (check_store(store, i, why, len) != 0)
            return -1;
    return check_regions(json_object_get(doc, "regions"), json_object_get(doc, "stores"), why,
                         len);
}

/* The file's top level: {"term": N, "voted_for": "name", "state": {...}}. */
static int check_root(const json_t *root, char *why, size_t len)
{
    if (!json_is_object(root)) {
        snprintf(why, len, "the top level must be an object");
        return -1;
    }
    if (check_int(root, "", "term", 0, ID_MAX, true, why, len) != 0 ||
        check_type(root, "", "voted_for", JSON_STRING, "a string (\"\" for none)", why, len) != 0)
        return -1;
    const char *voted = json_string_value(json_object_get(root, "voted_for"));
    if (strlen(voted) >= sizeof ((struct pd_state *)0)->voted_for) {
        snprintf(why, len, "field \"voted_for\" is longer than %zu bytes",
                 sizeof ((struct pd_state *)0)->voted_for - 1);
        return -1;
    }
    return pd_state_check_doc(json_object_get(root, "state"), why, len);
}

static int load_doc(struct pd_state *s, char *err, size_t errlen)
{
    json_error_t jerr;
    char why[300];
    json_t *root = json_load_file(s->path, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s is corrupt (%s at line %d); refusing to start rather than lose "
                 "cluster state", s->path, jerr.text, jerr.line);
        return -1;
    }
    if (check_root(root, why, sizeof why) != 0) {
        snprintf(err, errlen, "%s is corrupt: %s; refusing to start (the file is kept as it is)",
                 s->path, why);
        json_decref(root);
        return -1;
    }
    s->doc = json_incref(json_object_get(root, "state"));
    s->term = get_u64(root, "term");
    snprintf(s->voted_for, sizeof s->voted_for, "%s",
             json_string_value(json_object_get(root, "voted_for")));
    json_decref(root);
    return 0;
}

int pd_state_open(struct pd_state *s, const char *data_dir, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create data dir %s: %s", data_dir, strerror(errno));
        return -1;
    }
    size_t n = strlen(data_dir) + sizeof "/state.json";
    if (!(s->path = malloc(n))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(s->path, n, "%s/state.json", data_dir);
    int rc;
    if (access(s->path, F_OK) == 0)
        rc = load_doc(s, err, errlen);
    else if (!(s->doc = empty_state())) {
        snprintf(err, errlen, "out of memory");
        rc = -1;
    } else
        rc = pd_state_save(s, err, errlen);
    if (rc != 0)
        pd_state_close(s);
    return rc;
}

static int fsync_dir_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int pd_state_save(struct pd_state *s, char *err, size_t errlen)
{
    json_t *root = json_pack("{s:I, s:s, s:O}", "term", (json_int_t)s->term, "voted_for",
                             s->voted_for, "state", s->doc);
    char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
    int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    size_t len = text ? strlen(text) : 0;
    int rc = -1;
    if (fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0 && close(fd) == 0) {
        fd = -1;
        if (rename(tmp, s->path) == 0 && fsync_dir_of(s->path) == 0)
            rc = 0;
    }
    if (rc != 0)
        snprintf(err, errlen, "cannot write %s: %s", s->path, text ? strerror(errno) : "out of memory");
    if (fd >= 0)
        close(fd);
    free(text);
    return rc;
}

void pd_state_close(struct pd_state *s)
{
    json_decref(s->doc);
    free(s->path);
    memset(s, 0, sizeof *s);
}

uint64_t pd_state_version(const struct pd_state *s)
{
    return get_u64(s->doc, "version");
}

uint64_t pd_state_version_term(const struct pd_state *s)
{
    return get_u64(s->doc, "version_term");
}

void pd_state_touch(struct pd_state *s, uint64_t term)
{
    set_u64(s->doc, "version", pd_state_version(s) + 1);
    set_u64(s->doc, "version_term", term);
}

bool pd_state_newer(uint64_t term_a, uint64_t ver_a, uint64_t term_b, uint64_t ver_b)
{
    return term_a > term_b || (term_a == term_b && ver_a > ver_b);
}

int pd_state_replace(struct pd_state *s, const json_t *doc, char *err, size_t errlen)
{
    char why[300];
    if (pd_state_check_doc(doc, why, sizeof why) != 0) {
        snprintf(err, errlen, "leader sent a malformed state: %s", why);
        return -1;
    }
    json_t *copy = json_deep_copy(doc);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    uint64_t hw = pd_state_tso_hw(s);
    json_decref(s->doc);
    s->doc = copy;
    if (pd_state_tso_hw(s) < hw) /* a TSO high-water once persisted never goes down */
        pd_state_set_tso_hw(s, hw);
    return 0;
}

uint64_t pd_state_tso_hw(const struct pd_state *s)
{
    return get_u64(s->doc, "tso_hw");
}

void pd_state_set_tso_hw(struct pd_state *s, uint64_t hw)
{
    set_u64(s->doc, "tso_hw", hw);
}

uint64_t pd_state_alloc_id(struct pd_state *s)
{
    uint64_t id = get_u64(s->doc, "next_id");
    set_u64(s->doc, "next_id", id + 1);
    return id;
}

json_t *pd_state_find_store(const struct pd_state *s, uint64_t id)
{
    size_t i;
    json_t *store;
    json_array_foreach(json_object_get(s->doc, "stores"), i, store) {
        if (get_u64(store, "id") == id)
            return store;
    }
    return NULL;
}

static json_t *find_store_by_address(const struct pd_state *s, const char *address)
{
    size_t i;
    json_t *store;
    json_array_foreach(json_object_get(s->doc, "stores"), i, store) {
        const char *a = json_string_value(json_object_get(store, "address"));
        if (a && strcmp(a, address) == 0)
            return store;
    }
    return NULL;
}

/* TiDB's documented limitation: all TiKV instances encrypt, or none does. */
static int check_encryption(struct pd_state *s, const char *address, bool encrypted,
                            int *http_status, char *err, size_t errlen)
{
    const char *cluster = json_string_value(json_object_get(s->doc, "encryption"));
    const char *mine = encrypted ? "on" : "off";
    if (!cluster || strcmp(cluster, "unknown") == 0) {
        json_object_set_new(s->doc, "encryption", json_string(mine));
        return 0;
    }
    if (strcmp(cluster, mine) == 0)
        return 0;
    *http_status = 409;
    snprintf(err, errlen,
             "store %s has storage encryption %s but the cluster's stores have it %s: enable or "
             "disable cipher-file for all TiKV instances",
             address, mine, cluster);
    return -1;
}

json_t *pd_state_find_region(const struct pd_state *s, uint64_t id)
{
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(s->doc, "regions"), i, r) {
        if (get_u64(r, "id") == id)
            return r;
    }
    return NULL;
}

/* The region's peer on store_id, or NULL. Borrowed. */
static json_t *peer_on_store(const json_t *region, uint64_t store_id)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(region, "peers"), i, p) {
        if (get_u64(p, "store_id") == store_id)
            return p;
    }
    return NULL;
}

static bool store_is_up(const json_t *store, int64_t now_ms)
{
    return now_ms - json_integer_value(json_object_get(store, "last_heartbeat_ms")) <
           PD_STORE_DISCONNECTED_MS;
}

static void append_peer(struct pd_state *s, json_t *peers, uint64_t store_id)
{
    json_array_append_new(peers, json_pack("{s:I, s:I}", "id", (json_int_t)pd_state_alloc_id(s),
                                           "store_id", (json_int_t)store_id));
}

/* Region 1 over the whole key space, its peers the first up to 3 stores that are Up. */
static void bootstrap_region(struct pd_state *s, int64_t now_ms)
{
    json_t *peers = json_array();
    size_t i;
    json_t *store;
    json_array_foreach(json_object_get(s->doc, "stores"), i, store) {
        if (json_array_size(peers) < PD_REGION_MAX_PEERS && store_is_up(store, now_ms))
            append_peer(s, peers, get_u64(store, "id"));
    }
    json_array_append_new(json_object_get(s->doc, "regions"),
                          json_pack("{s:I, s:s, s:s, s:{s:I, s:I}, s:o, s:I}", "id",
                                    (json_int_t)PD_REGION_ID, "start_key", "", "end_key", "",
                                    "epoch", "conf_ver", (json_int_t)1, "version", (json_int_t)1,
                                    "peers", peers, "leader_term", (json_int_t)0));
}

/* A store that is Up (it just registered or heartbeated) joins region 1: the region is
 * bootstrapped when there is none, else the store is added while there are fewer than 3
 * peers (conf_ver bumps). */
static void place_store(struct pd_state *s, uint64_t store_id, int64_t now_ms)
{
    json_t *region = pd_state_find_region(s, PD_REGION_ID);
    if (!region) {
        bootstrap_region(s, now_ms);
        return;
    }
    json_t *peers = json_object_get(region, "peers");
    if (peer_on_store(region, store_id) || json_array_size(peers) >= PD_REGION_MAX_PEERS)
        return;
    append_peer(s, peers, store_id);
    json_t *epoch = json_object_get(region, "epoch");
    set_u64(epoch, "conf_ver", get_u64(epoch, "conf_ver") + 1);
}

json_t *pd_state_region_for_store(const struct pd_state *s, uint64_t store_id)
{
    const json_t *r = pd_state_find_region(s, PD_REGION_ID);
    if (!r || !peer_on_store(r, store_id))
        return NULL;
    json_t *peers = json_array();
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(r, "peers"), i, p) {
        const json_t *store = pd_state_find_store(s, get_u64(p, "store_id"));
        const char *address = json_string_value(json_object_get(store, "address"));
        json_array_append_new(peers, json_pack("{s:O, s:O, s:s}", "id", json_object_get(p, "id"),
                                               "store_id", json_object_get(p, "store_id"),
                                               "address", address ? address : ""));
    }
    return json_pack("{s:O, s:O, s:O, s:o, s:O}", "id", json_object_get(r, "id"), "start_key",
                     json_object_get(r, "start_key"), "end_key", json_object_get(r, "end_key"),
                     "peers", peers, "epoch", json_object_get(r, "epoch"));
}

int pd_state_report_leader(struct pd_state *s, uint64_t store_id, uint64_t region_id,
                           uint64_t term, char *why, size_t len)
{
    json_t *r = pd_state_find_region(s, region_id);
    json_t *peer = r ? peer_on_store(r, store_id) : NULL;
    uint64_t recorded = r ? get_u64(r, "leader_term") : 0;
    if (!r)
        snprintf(why, len, "store %llu reports leading region %llu, which does not exist",
                 (unsigned long long)store_id, (unsigned long long)region_id);
    else if (!peer)
        snprintf(why, len, "store %llu reports leading region %llu but is not one of its peers",
                 (unsigned long long)store_id, (unsigned long long)region_id);
    else if (term < recorded)
        snprintf(why, len, "store %llu reports leading region %llu in term %llu, older than the "
                 "recorded term %llu: ignored as stale", (unsigned long long)store_id,
                 (unsigned long long)region_id, (unsigned long long)term,
                 (unsigned long long)recorded);
    else {
        json_object_set_new(r, "leader", json_deep_copy(peer));
        set_u64(r, "leader_term", term);
        return 0;
    }
    return -1;
}

int pd_state_check_address(const char *field, const char *address, char *err, size_t errlen)
{
    struct url u;
    char why[400], bad[360];
    size_t n = address ? strlen(address) : 0;
    if (n == 0) {
        snprintf(err, errlen, "\"%s\" (host:port) is required", field);
        return -1;
    }
    if (n > PD_ADDRESS_MAX)
        snprintf(why, sizeof why, "of at most %d bytes; got %zu bytes", PD_ADDRESS_MAX, n);
    else if (url_parse(address, false, &u, bad, sizeof bad) != 0) /* "bad URL 'x': ..." */
        snprintf(why, sizeof why, "(%s)", bad);
    else if (u.scheme[0] || u.path[0])
        snprintf(why, sizeof why, "without a scheme or a path; got '%s'", address);
    else
        return 0;
    snprintf(err, errlen, "\"%s\" must be host:port %s", field, why);
    return -1;
}

/* Both addresses are host:port; the version is a short string. */
static int check_registration(const char *address, const char *status_address,
                              const char *version, char *err, size_t errlen)
{
    if (pd_state_check_address("address", address, err, errlen) != 0)
        return -1;
    if (status_address && *status_address &&
        pd_state_check_address("status_address", status_address, err, errlen) != 0)
        return -1;
    if (version && strlen(version) > PD_ADDRESS_MAX) {
        snprintf(err, errlen, "\"version\" is longer than %d bytes", PD_ADDRESS_MAX);
        return -1;
    }
    return 0;
}

uint64_t pd_state_register_store(struct pd_state *s, const char *address,
                                 const char *status_address, const char *version,
                                 bool encrypted, int64_t now_ms, int *http_status, char *err,
                                 size_t errlen)
{
    *http_status = 400;
    if (check_registration(address, status_address, version, err, errlen) != 0)
        return 0;
    json_t *store = find_store_by_address(s, address);
    if (!store && check_encryption(s, address, encrypted, http_status, err, errlen) != 0)
        return 0;
    if (store) {
        const char *was = json_is_true(json_object_get(store, "encrypted")) ? "on" : "off";
        if (json_is_true(json_object_get(store, "encrypted")) != encrypted) {
            *http_status = 409;
            snprintf(err, errlen, "store %s registered with storage encryption %s and cannot "
                     "switch it", address, was);
            return 0;
        }
    } else {
        store = json_object();
        json_object_set_new(store, "id", json_integer((json_int_t)pd_state_alloc_id(s)));
        json_object_set_new(store, "address", json_string(address));
        json_array_append_new(json_object_get(s->doc, "stores"), store);
    }
    json_object_set_new(store, "status_address", json_string(status_address ? status_address : ""));
    json_object_set_new(store, "version", json_string(version ? version : ""));
    json_object_set_new(store, "encrypted", json_boolean(encrypted));
    json_object_set_new(store, "start_ts_ms", json_integer(now_ms));
    json_object_set_new(store, "last_heartbeat_ms", json_integer(now_ms));
    uint64_t id = get_u64(store, "id");
    place_store(s, id, now_ms);
    return id;
}

/* Each counter, when present, is a non-negative integer. */
static int check_counters(const json_t *stats, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_STORE_COUNTERS; i++)
        if (check_int(stats, "", store_counters[i], 0, INT64_MAX, false, err, errlen) != 0)
            return -1;
    return 0;
}

/* "leader_of", when present, is an array of at most PD_LEADER_OF_MAX region ids; "term" is then
 * required. */
static int check_leader_of(const json_t *body, char *err, size_t errlen)
{
    const json_t *lo = json_object_get(body, "leader_of");
    if (!lo)
        return 0;
    if (!json_is_array(lo) || json_array_size(lo) > PD_LEADER_OF_MAX) {
        char got[48];
        describe(lo, got, sizeof got);
        snprintf(err, errlen, "field \"leader_of\" is %s, must be an array of at most %d region "
                 "ids", got, PD_LEADER_OF_MAX);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(lo); i++) {
        char field[32];
        snprintf(field, sizeof field, "leader_of[%zu]", i);
        json_t *one = json_pack("{s:O}", field, json_array_get(lo, i));
        int rc = one ? check_int(one, "", field, 1, ID_MAX, true, err, errlen) : -1;
        json_decref(one);
        if (rc != 0)
            return -1;
    }
    return check_int(body, "", "term", 0, ID_MAX, json_array_size(lo) > 0, err, errlen);
}

/* Records each region the store leads; the reports PD ignores are described in note. */
static void take_leader_reports(struct pd_state *s, uint64_t id, const json_t *body, char *note,
                                size_t notelen)
{
    uint64_t term = get_u64(body, "term");
    size_t i, used = 0;
    const json_t *rid;
    note[0] = '\0';
    json_array_foreach(json_object_get(body, "leader_of"), i, rid) {
        char why[300];
        if (pd_state_report_leader(s, id, (uint64_t)json_integer_value(rid), term, why,
                                   sizeof why) == 0 || used >= notelen)
            continue;
        int n = snprintf(note + used, notelen - used, "%s%s", used ? "; " : "", why);
        used = n < 0 ? notelen : used + (size_t)n;
    }
}

int pd_state_store_heartbeat(struct pd_state *s, uint64_t id, const json_t *body, int64_t now_ms,
                             int *http_status, char *err, size_t errlen, char *note,
                             size_t notelen)
{
    *http_status = 400;
    if (check_counters(body, err, errlen) != 0 || check_leader_of(body, err, errlen) != 0)
        return -1;
    json_t *store = pd_state_find_store(s, id);
    if (!store) {
        *http_status = 404;
        snprintf(err, errlen, "store %llu not found; register first", (unsigned long long)id);
        return -1;
    }
    for (size_t i = 0; i < N_STORE_COUNTERS; i++) {
        json_t *v = json_object_get(body, store_counters[i]);
        if (v)
            json_object_set(store, store_counters[i], v);
    }
    json_object_set_new(store, "last_heartbeat_ms", json_integer(now_ms));
    place_store(s, id, now_ms);
    take_leader_reports(s, id, body, note, notelen);
    return 0;
}
