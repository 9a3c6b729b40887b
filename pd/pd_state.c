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

static int check_regions(const json_t *regions, char *why, size_t len)
{
    size_t i;
    const json_t *r;
    json_array_foreach(regions, i, r) {
        char prefix[48];
        snprintf(prefix, sizeof prefix, "state.regions[%zu].", i);
        if (!json_is_object(r)) {
            snprintf(why, len, "field \"state.regions[%zu]\" must be an object", i);
            return -1;
        }
        if (check_int(r, prefix, "id", 1, ID_MAX, true, why, len) != 0)
            return -1;
    }
    return 0;
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
    return check_regions(json_object_get(doc, "regions"), why, len);
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

/* The first store bootstraps region 1, covering the whole key space. */
static void bootstrap_region(struct pd_state *s, uint64_t store_id)
{
    json_t *regions = json_object_get(s->doc, "regions");
    if (json_array_size(regions) > 0)
        return;
    uint64_t region_id = pd_state_alloc_id(s), peer_id = pd_state_alloc_id(s);
    json_array_append_new(
        regions, json_pack("{s:I, s:s, s:s, s:{s:I, s:I}, s:[{s:I, s:I}], s:{s:I, s:I}}", "id",
                           (json_int_t)region_id, "start_key", "", "end_key", "", "epoch",
                           "conf_ver", (json_int_t)1, "version", (json_int_t)1, "peers", "id",
                           (json_int_t)peer_id, "store_id", (json_int_t)store_id, "leader", "id",
                           (json_int_t)peer_id, "store_id", (json_int_t)store_id));
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
    bootstrap_region(s, id);
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

int pd_state_store_heartbeat(struct pd_state *s, uint64_t id, const json_t *stats, int64_t now_ms,
                             int *http_status, char *err, size_t errlen)
{
    *http_status = 400;
    if (check_counters(stats, err, errlen) != 0)
        return -1;
    json_t *store = pd_state_find_store(s, id);
    if (!store) {
        *http_status = 404;
        snprintf(err, errlen, "store %llu not found; register first", (unsigned long long)id);
        return -1;
    }
    for (size_t i = 0; i < N_STORE_COUNTERS; i++) {
        json_t *v = json_object_get(stats, store_counters[i]);
        if (v)
            json_object_set(store, store_counters[i], v);
    }
    json_object_set_new(store, "last_heartbeat_ms", json_integer(now_ms));
    return 0;
}
