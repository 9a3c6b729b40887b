#include "pd_state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

static bool state_shape_ok(const json_t *doc)
{
    return json_is_object(doc) && json_is_array(json_object_get(doc, "stores")) &&
           json_is_array(json_object_get(doc, "regions")) &&
           json_is_integer(json_object_get(doc, "next_id")) &&
           json_is_integer(json_object_get(doc, "tso_hw"));
}

static int load_doc(struct pd_state *s, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = json_load_file(s->path, 0, &jerr);
    if (!root) {
        snprintf(err, errlen, "%s is corrupt (%s at line %d); refusing to start rather than lose "
                 "cluster state", s->path, jerr.text, jerr.line);
        return -1;
    }
    json_t *doc = json_object_get(root, "state");
    if (!state_shape_ok(doc)) {
        snprintf(err, errlen, "%s is corrupt (missing or malformed \"state\"); refusing to start",
                 s->path);
        json_decref(root);
        return -1;
    }
    s->doc = json_incref(doc);
    s->term = get_u64(root, "term");
    const char *voted = json_string_value(json_object_get(root, "voted_for"));
    snprintf(s->voted_for, sizeof s->voted_for, "%s", voted ? voted : "");
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
    if (access(s->path, F_OK) == 0)
        return load_doc(s, err, errlen);
    if (!(s->doc = empty_state())) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return pd_state_save(s, err, errlen);
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
    if (!state_shape_ok(doc)) {
        snprintf(err, errlen, "leader sent a malformed state");
        return -1;
    }
    json_t *copy = json_deep_copy(doc);
    if (!copy) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    json_decref(s->doc);
    s->doc = copy;
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

/* The seed's limitation: all TiKV instances encrypt, or none does. */
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

uint64_t pd_state_register_store(struct pd_state *s, const char *address,
                                 const char *status_address, const char *version,
                                 bool encrypted, int64_t now_ms, int *http_status, char *err,
                                 size_t errlen)
{
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

int pd_state_store_heartbeat(struct pd_state *s, uint64_t id, const json_t *stats, int64_t now_ms,
                             char *err, size_t errlen)
{
    json_t *store = pd_state_find_store(s, id);
    if (!store) {
        snprintf(err, errlen, "store %llu not found; register first", (unsigned long long)id);
        return -1;
    }
    const char *keys[] = {"capacity", "available", "used_size", "region_count"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(stats, keys[i]);
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            json_object_set(store, keys[i], v);
    }
    json_object_set_new(store, "last_heartbeat_ms", json_integer(now_ms));
    return 0;
}
