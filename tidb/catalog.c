/* catalog.c — schemas and users in TiKV. See catalog.h. */
#include "catalog.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "tablecodec.h"

#define AUTO_ID_STEP 1000
#define MAX_CACHED 64
#define SCAN_PAGE 1000

struct auto_range {
    int64_t table_id;
    int64_t next, end; /* handed out: [next, end) is this process's */
};

struct catalog {
    struct kvbridge *kv;
    pthread_mutex_t mu; /* ids, auto-increment ranges, the cache */
    struct auto_range ranges[MAX_CACHED];
    size_t nranges;
    struct cat_table *cache[MAX_CACHED];
    size_t ncache;
};

static const char *const TYPE_NAMES[] = {"int", "bigint", "varchar", "char", "text"};

/* ---- keys --------------------------------------------------------------------------------- */

static void lower(char *dst, size_t len, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < len; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

static void db_key(char *out, size_t len, const char *db)
{
    char l[CAT_NAME_MAX + 1];
    lower(l, sizeof l, db);
    snprintf(out, len, "mDB:%s", l);
}

static void table_key(char *out, size_t len, const char *db, const char *t)
{
    char ld[CAT_NAME_MAX + 1], lt[CAT_NAME_MAX + 1];
    lower(ld, sizeof ld, db);
    lower(lt, sizeof lt, t);
    snprintf(out, len, "mTable:%s.%s", ld, lt);
}

static void user_key(char *out, size_t len, const char *user, const char *host)
{
    char lh[256];
    lower(lh, sizeof lh, host);
    snprintf(out, len, "mUser:%s@%s", user, lh);
}

/* ---- JSON values in TiKV ------------------------------------------------------------------ */

/* 0 and *out (decref it), 1 not found, -1 error. */
static int get_json(struct catalog *c, const char *key, json_t **out, char *err, size_t errlen)
{
    uint8_t *v;
    size_t n;
    int rc = kvb_get(c->kv, key, strlen(key), &v, &n, err, errlen);
    if (rc != 0)
        return rc;
    json_error_t je;
    *out = json_loadb((const char *)v, n, 0, &je);
    free(v);
    if (!*out) {
        snprintf(err, errlen, "catalog entry %s is damaged: %s", key, je.text);
        return -1;
    }
    return 0;
}

static int put_json(struct catalog *c, const char *key, json_t *j, char *err, size_t errlen)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!text) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = kvb_put(c->kv, key, strlen(key), text, strlen(text), err, errlen);
    free(text);
    return rc;
}

static int get_number(struct catalog *c, const char *key, int64_t *out, char *err, size_t errlen)
{
    uint8_t *v;
    size_t n;
    int rc = kvb_get(c->kv, key, strlen(key), &v, &n, err, errlen);
    if (rc != 0)
        return rc;
    char text[32];
    snprintf(text, sizeof text, "%.*s", (int)(n < 31 ? n : 31), (const char *)v);
    free(v);
    char *end;
    *out = strtoll(text, &end, 10);
    if (*end || !text[0]) {
        snprintf(err, errlen, "catalog entry %s is damaged", key);
        return -1;
    }
    return 0;
}

static int put_number(struct catalog *c, const char *key, int64_t v, char *err, size_t errlen)
{
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, v);
    return kvb_put(c->kv, key, strlen(key), text, strlen(text), err, errlen);
}

/* A new database or table id. Called with mu held. */
static int next_id(struct catalog *c, int64_t *id, char *err, size_t errlen)
{
    int64_t v = 1;
    int rc = get_number(c, "mNextID", &v, err, errlen);
    if (rc < 0)
        return -1;
    if (rc == 1)
        v = 100; /* TiDB's own system tables sit below */
    *id = v;
    return put_number(c, "mNextID", v + 1, err, errlen);
}

/* ---- table definitions --------------------------------------------------------------------- */

static json_t *table_json(const struct cat_table *t)
{
    json_t *cols = json_array(), *idx = json_array();
    for (size_t i = 0; i < t->ncols; i++) {
        const struct cat_column *k = &t->cols[i];
        json_array_append_new(
            cols, json_pack("{s:s, s:s, s:i, s:b, s:b, s:b, s:s?}", "name", k->name, "type",
                            TYPE_NAMES[k->type], "len", (int)k->len, "not_null", k->not_null,
                            "auto_inc", k->auto_inc, "has_default", k->has_default, "default",
                            k->def));
    }
    for (size_t i = 0; i < t->nindexes; i++) {
        const struct cat_index *x = &t->indexes[i];
        json_t *ic = json_array();
        for (size_t k = 0; k < x->ncols; k++)
            json_array_append_new(ic, json_integer(x->cols[k]));
        json_array_append_new(idx, json_pack("{s:I, s:s, s:o, s:b}", "id", (json_int_t)x->id,
                                             "name", x->name, "cols", ic, "unique", x->unique));
    }
    return json_pack("{s:I, s:s, s:s, s:o, s:i, s:o}", "id", (json_int_t)t->id, "db", t->db,
                     "name", t->name, "columns", cols, "pk", t->pk, "indexes", idx);
}

static int type_of(const char *name)
{
    for (size_t i = 0; i < sizeof TYPE_NAMES / sizeof TYPE_NAMES[0]; i++)
        if (name && strcmp(name, TYPE_NAMES[i]) == 0)
            return (int)i;
    return -1;
}

static int column_from(json_t *j, struct cat_column *k)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    int type = type_of(json_string_value(json_object_get(j, "type")));
    const char *def = json_string_value(json_object_get(j, "default"));
    if (!name || type < 0)
        return -1;
    snprintf(k->name, sizeof k->name, "%s", name);
    k->type = (enum cat_type)type;
    k->len = (unsigned)json_integer_value(json_object_get(j, "len"));
    k->not_null = json_is_true(json_object_get(j, "not_null"));
    k->auto_inc = json_is_true(json_object_get(j, "auto_inc"));
    k->has_default = json_is_true(json_object_get(j, "has_default"));
    k->def = def ? strdup(def) : NULL;
    return def && !k->def ? -1 : 0;
}

static int index_from(json_t *j, const struct cat_table *t, struct cat_index *x)
{
    const char *name = json_string_value(json_object_get(j, "name"));
    json_t *cols = json_object_get(j, "cols");
    if (!name || json_array_size(cols) == 0 || json_array_size(cols) > CAT_MAX_COLUMNS)
        return -1;
    x->id = json_integer_value(json_object_get(j, "id"));
    snprintf(x->name, sizeof x->name, "%s", name);
    x->unique = json_is_true(json_object_get(j, "unique"));
    x->ncols = json_array_size(cols);
    for (size_t k = 0; k < x->ncols; k++) {
        json_int_t col = json_integer_value(json_array_get(cols, k));
        if (col < 0 || (size_t)col >= t->ncols)
            return -1;
        x->cols[k] = (int)col;
    }
    return 0;
}

static int table_from(json_t *j, struct cat_table *t)
{
    memset(t, 0, sizeof *t);
    json_t *cols = json_object_get(j, "columns"), *idx = json_object_get(j, "indexes");
    const char *db = json_string_value(json_object_get(j, "db"));
    const char *name = json_string_value(json_object_get(j, "name"));
    if (!db || !name || json_array_size(cols) == 0 || json_array_size(cols) > CAT_MAX_COLUMNS ||
        json_array_size(idx) > CAT_MAX_INDEXES)
        return -1;
    t->id = json_integer_value(json_object_get(j, "id"));
    snprintf(t->db, sizeof t->db, "%s", db);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->pk = (int)json_integer_value(json_object_get(j, "pk"));
    for (size_t i = 0; i < json_array_size(cols); i++, t->ncols++)
        if (column_from(json_array_get(cols, i), &t->cols[i]) != 0)
            return -1;
    if (t->pk < -1 || t->pk >= (int)t->ncols)
        return -1;
    for (size_t i = 0; i < json_array_size(idx); i++, t->nindexes++)
        if (index_from(json_array_get(idx, i), t, &t->indexes[i]) != 0)
            return -1;
    return 0;
}

void catalog_table_clear(struct cat_table *t)
{
    for (size_t i = 0; i < t->ncols; i++) {
        free(t->cols[i].def);
        t->cols[i].def = NULL;
    }
    t->ncols = 0;
}

/* A deep copy (the column defaults are the only pointers). */
static int table_copy(struct cat_table *dst, const struct cat_table *src)
{
    *dst = *src;
    for (size_t i = 0; i < src->ncols; i++)
        dst->cols[i].def = NULL;
    for (size_t i = 0; i < src->ncols; i++) {
        if (src->cols[i].def && !(dst->cols[i].def = strdup(src->cols[i].def))) {
            catalog_table_clear(dst);
            return -1;
        }
    }
    return 0;
}

/* ---- the cache (under mu) -------------------------------------------------------------------- */

static struct cat_table *cache_find(struct catalog *c, const char *db, const char *name)
{
    for (size_t i = 0; i < c->ncache; i++)
        if (strcasecmp(c->cache[i]->db, db) == 0 && strcasecmp(c->cache[i]->name, name) == 0)
            return c->cache[i];
    return NULL;
}

static void cache_drop(struct catalog *c, const char *db, const char *name)
{
    for (size_t i = 0; i < c->ncache; i++) {
        if (strcasecmp(c->cache[i]->db, db) == 0 &&
            (!name || strcasecmp(c->cache[i]->name, name) == 0)) {
            catalog_table_clear(c->cache[i]);
            free(c->cache[i]);
            c->cache[i--] = c->cache[--c->ncache];
        }
    }
}

static void cache_put(struct catalog *c, const struct cat_table *t)
{
    struct cat_table *copy = malloc(sizeof *copy);
    if (!copy || table_copy(copy, t) != 0) {
        free(copy);
        return;
    }
    if (c->ncache == MAX_CACHED) {
        catalog_table_clear(c->cache[0]);
        free(c->cache[0]);
        c->cache[0] = c->cache[--c->ncache];
    }
    c->cache[c->ncache++] = copy;
}

/* ---- databases -------------------------------------------------------------------------------- */

struct catalog *catalog_new(struct kvbridge *kv)
{
    struct catalog *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->kv = kv;
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void catalog_free(struct catalog *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->ncache; i++) {
        catalog_table_clear(c->cache[i]);
        free(c->cache[i]);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

struct kvbridge *catalog_kv(struct catalog *c)
{
    return c->kv;
}

int catalog_db_exists(struct catalog *c, const char *db, char *err, size_t errlen)
{
    char key[128];
    db_key(key, sizeof key, db);
    json_t *j;
    int rc = get_json(c, key, &j, err, errlen);
    if (rc == 0)
        json_decref(j);
    return rc;
}

int catalog_create_db(struct catalog *c, const char *db, bool if_not_exists, char *err,
                      size_t errlen)
{
    char key[128];
    db_key(key, sizeof key, db);
    pthread_mutex_lock(&c->mu);
    int rc = catalog_db_exists(c, db, err, errlen);
    int64_t id;
    if (rc == 0) {
        rc = if_not_exists ? 0 : 1;
    } else if (rc == 1 && (rc = next_id(c, &id, err, errlen)) == 0) {
        json_t *j = json_pack("{s:I, s:s}", "id", (json_int_t)id, "name", db);
        rc = put_json(c, key, j, err, errlen);
        json_decref(j);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void catalog_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

/* The "name" of every JSON value under [start, end). */
static int list_names(struct catalog *c, const char *start, const char *end, char ***names,
                      size_t *n, char *err, size_t errlen)
{
    struct kvb_pair *p;
    size_t np;
    *names = NULL;
    *n = 0;
    if (kvb_scan(c->kv, start, strlen(start), end, strlen(end), 10000, &p, &np, err, errlen) != 0)
        return -1;
    char **out = calloc(np ? np : 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; out && i < np; i++) {
        json_t *j = json_loadb((const char *)p[i].val, p[i].vlen, 0, NULL);
        const char *name = json_string_value(json_object_get(j, "name"));
        if (name && (out[k] = strdup(name)))
            k++;
        json_decref(j);
    }
    kvb_pairs_free(p, np);
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *names = out;
    *n = k;
    return 0;
}

int catalog_list_dbs(struct catalog *c, char ***names, size_t *n, char *err, size_t errlen)
{
    return list_names(c, "mDB:", "mDB;", names, n, err, errlen);
}

int catalog_list_tables(struct catalog *c, const char *db, char ***names, size_t *n, char *err,
                        size_t errlen)
{
    char start[160], end[160], l[CAT_NAME_MAX + 1];
    lower(l, sizeof l, db);
    snprintf(start, sizeof start, "mTable:%s.", l);
    snprintf(end, sizeof end, "mTable:%s/", l); /* '.' + 1 */
    return list_names(c, start, end, names, n, err, errlen);
}

int catalog_drop_db(struct catalog *c, const char *db, bool if_exists, char *err, size_t errlen)
{
    char **tables;
    size_t n;
    int rc = catalog_db_exists(c, db, err, errlen);
    if (rc != 0)
        return rc == 1 && if_exists ? 0 : rc;
    if (catalog_list_tables(c, db, &tables, &n, err, errlen) != 0)
        return -1;
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = catalog_drop_table(c, db, tables[i], err, errlen) < 0 ? -1 : 0;
    catalog_names_free(tables, n);
    char key[128];
    db_key(key, sizeof key, db);
    if (rc == 0)
        rc = kvb_delete(c->kv, key, strlen(key), err, errlen);
    pthread_mutex_lock(&c->mu);
    cache_drop(c, db, NULL);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- tables ------------------------------------------------------------------------------------ */

int catalog_get_table(struct catalog *c, const char *db, const char *name, struct cat_table *t,
                      char *err, size_t errlen)
{
    pthread_mutex_lock(&c->mu);
    struct cat_table *hit = cache_find(c, db, name);
    int rc = hit ? table_copy(t, hit) : 1;
    pthread_mutex_unlock(&c->mu);
    if (hit) {
        if (rc != 0)
            snprintf(err, errlen, "out of memory");
        return rc;
    }
    char key[160];
    table_key(key, sizeof key, db, name);
    json_t *j;
    if ((rc = get_json(c, key, &j, err, errlen)) != 0)
        return rc;
    rc = table_from(j, t);
    json_decref(j);
    if (rc != 0) {
        catalog_table_clear(t);
        snprintf(err, errlen, "catalog entry %s is damaged", key);
        return -1;
    }
    pthread_mutex_lock(&c->mu);
    if (!cache_find(c, db, name))
        cache_put(c, t);
    pthread_mutex_unlock(&c->mu);
    return 0;
}

int catalog_create_table(struct catalog *c, struct cat_table *t, bool if_not_exists, char *err,
                         size_t errlen)
{
    char key[160];
    table_key(key, sizeof key, t->db, t->name);
    pthread_mutex_lock(&c->mu);
    json_t *old = NULL;
    int rc = get_json(c, key, &old, err, errlen);
    json_decref(old);
    if (rc == 0) {
        rc = if_not_exists ? 0 : 1;
    } else if (rc == 1 && (rc = next_id(c, &t->id, err, errlen)) == 0) {
        json_t *j = table_json(t);
        rc = put_json(c, key, j, err, errlen);
        json_decref(j);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Deletes every key in [start, end), a page at a time. */
static int delete_range(struct catalog *c, const uint8_t *start, size_t slen, const uint8_t *end,
                        size_t elen, char *err, size_t errlen)
{
    for (;;) {
        struct kvb_pair *p;
        size_t n;
        if (kvb_scan(c->kv, start, slen, end, elen, SCAN_PAGE, &p, &n, err, errlen) != 0)
            return -1;
        struct rpc_buf *keys = calloc(n ? n : 1, sizeof *keys);
        int rc = keys ? 0 : errorf(err, errlen, "out of memory");
        for (size_t i = 0; keys && i < n; i++)
            keys[i] = (struct rpc_buf){p[i].key, p[i].klen};
        if (keys && n)
            rc = kvb_batch_delete(c->kv, keys, n, err, errlen);
        free(keys);
        kvb_pairs_free(p, n);
        if (rc != 0 || n == 0) /* a short page may only mean the reply filled up */
            return rc;
    }
}

int catalog_drop_table(struct catalog *c, const char *db, const char *name, char *err,
                       size_t errlen)
{
    struct cat_table t;
    int rc = catalog_get_table(c, db, name, &t, err, errlen);
    if (rc != 0)
        return rc;
    char key[160];
    table_key(key, sizeof key, db, name);
    pthread_mutex_lock(&c->mu);
    cache_drop(c, db, name);
    rc = kvb_delete(c->kv, key, strlen(key), err, errlen);
    pthread_mutex_unlock(&c->mu);
    /* the definition is gone first: nobody reads or writes the rows any more */
    uint8_t lo[TC_PREFIX_LEN] = {'t'}, hi[TC_PREFIX_LEN] = {'t'};
    tc_encode_int(lo + 1, t.id);
    tc_encode_int(hi + 1, t.id + 1);
    if (rc == 0)
        rc = delete_range(c, lo, 9, hi, 9, err, errlen);
    char auto_key[48];
    snprintf(auto_key, sizeof auto_key, "mAutoID:%" PRId64, t.id);
    if (rc == 0)
        rc = kvb_delete(c->kv, auto_key, strlen(auto_key), err, errlen);
    catalog_table_clear(&t);
    return rc;
}

int catalog_add_index(struct catalog *c, const char *db, const char *table, const char *index,
                      const int *cols, size_t ncols, bool unique, char *err, size_t errlen)
{
    struct cat_table t;
    int rc = catalog_get_table(c, db, table, &t, err, errlen);
    if (rc != 0)
        return rc;
    rc = -1;
    int64_t max_id = 0;
    for (size_t i = 0; i < t.nindexes; i++) {
        if (strcasecmp(t.indexes[i].name, index) == 0) {
            snprintf(err, errlen, "Duplicate key name '%s'", index);
            goto out;
        }
        max_id = t.indexes[i].id > max_id ? t.indexes[i].id : max_id;
    }
    if (t.nindexes == CAT_MAX_INDEXES || ncols == 0 || ncols > CAT_MAX_COLUMNS) {
        snprintf(err, errlen, "too many indexes or columns (at most %d)", CAT_MAX_INDEXES);
        goto out;
    }
    struct cat_index *x = &t.indexes[t.nindexes++];
    *x = (struct cat_index){.id = max_id + 1, .ncols = ncols, .unique = unique};
    snprintf(x->name, sizeof x->name, "%s", index);
    memcpy(x->cols, cols, ncols * sizeof *cols);
    char key[160];
    table_key(key, sizeof key, db, table);
    json_t *j = table_json(&t);
    pthread_mutex_lock(&c->mu);
    rc = put_json(c, key, j, err, errlen);
    cache_drop(c, db, table);
    pthread_mutex_unlock(&c->mu);
    json_decref(j);
out:
    catalog_table_clear(&t);
    return rc;
}

/* ---- auto-increment ------------------------------------------------------------------------------ */

static struct auto_range *range_of(struct catalog *c, int64_t table_id)
{
    for (size_t i = 0; i < c->nranges; i++)
        if (c->ranges[i].table_id == table_id)
            return &c->ranges[i];
    if (c->nranges == MAX_CACHED)
        c->nranges = 0; /* forget the ranges of old tables: their ids are skipped, never reused */
    struct auto_range *r = &c->ranges[c->nranges++];
    *r = (struct auto_range){table_id, 0, 0};
    return r;
}

int catalog_auto_ids(struct catalog *c, int64_t table_id, int64_t n, int64_t at_least,
                     int64_t *first, char *err, size_t errlen)
{
    char key[48];
    snprintf(key, sizeof key, "mAutoID:%" PRId64, table_id);
    pthread_mutex_lock(&c->mu);
    struct auto_range *r = range_of(c, table_id);
    int rc = 0;
    if (at_least >= r->next && at_least < r->end)
        r->next = at_least + 1;
    if (r->end - r->next < n || at_least >= r->end) {
        int64_t stored = 1;
        rc = get_number(c, key, &stored, err, errlen);
        if (rc == 1) {
            stored = 1;
            rc = 0;
        }
        int64_t start = stored > at_least ? stored : at_least + 1;
        int64_t end = start + (n > AUTO_ID_STEP ? n : AUTO_ID_STEP);
        if (rc == 0)
            rc = put_number(c, key, end, err, errlen);
        if (rc == 0)
            *r = (struct auto_range){table_id, start, end};
    }
    if (rc == 0) {
        *first = r->next;
        r->next += n;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* ---- users ---------------------------------------------------------------------------------------- */

static const char *const REQUIRE_NAMES[] = {"NONE", "SSL", "X509", "SPECIFIED"};

int catalog_get_user(struct catalog *c, const char *user, const char *host, struct cat_user *u,
                     char *err, size_t errlen)
{
    char key[400];
    user_key(key, sizeof key, user, host);
    json_t *j;
    int rc = get_json(c, key, &j, err, errlen);
    if (rc != 0)
        return rc;
    memset(u, 0, sizeof *u);
    const char *auth = json_string_value(json_object_get(j, "auth"));
    const char *req = json_string_value(json_object_get(j, "require"));
    const char *subject = json_string_value(json_object_get(j, "subject"));
    const char *issuer = json_string_value(json_object_get(j, "issuer"));
    snprintf(u->user, sizeof u->user, "%s", user);
    snprintf(u->host, sizeof u->host, "%s", host);
    snprintf(u->auth, sizeof u->auth, "%s", auth ? auth : "");
    snprintf(u->subject, sizeof u->subject, "%s", subject ? subject : "");
    snprintf(u->issuer, sizeof u->issuer, "%s", issuer ? issuer : "");
    for (size_t i = 0; req && i < 4; i++)
        if (strcmp(req, REQUIRE_NAMES[i]) == 0)
            u->require = (enum cat_require)i;
    json_decref(j);
    return 0;
}

int catalog_match_user(struct catalog *c, const char *user, const char *client_host,
                       struct cat_user *u, char *err, size_t errlen)
{
    int rc = catalog_get_user(c, user, client_host, u, err, errlen);
    if (rc == 1 && (strcmp(client_host, "127.0.0.1") == 0 || strcmp(client_host, "::1") == 0))
        rc = catalog_get_user(c, user, "localhost", u, err, errlen);
    if (rc == 1)
        rc = catalog_get_user(c, user, "%", u, err, errlen);
    return rc;
}

int catalog_put_user(struct catalog *c, const struct cat_user *u, char *err, size_t errlen)
{
    char key[400];
    user_key(key, sizeof key, u->user, u->host);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "user", u->user, "host", u->host,
                          "auth", u->auth, "require", REQUIRE_NAMES[u->require], "subject",
                          u->subject, "issuer", u->issuer);
    int rc = put_json(c, key, j, err, errlen);
    json_decref(j);
    return rc;
}

int catalog_drop_user(struct catalog *c, const char *user, const char *host, char *err,
                      size_t errlen)
{
    struct cat_user u;
    int rc = catalog_get_user(c, user, host, &u, err, errlen);
    if (rc != 0)
        return rc;
    char key[400];
    user_key(key, sizeof key, user, host);
    return kvb_delete(c->kv, key, strlen(key), err, errlen);
}

int catalog_bootstrap(struct catalog *c, char *err, size_t errlen)
{
    uint8_t *v;
    size_t n;
    int rc = kvb_get(c->kv, "mBootstrapped", 13, &v, &n, err, errlen);
    if (rc <= 0) {
        if (rc == 0)
            free(v);
        return rc;
    }
    struct cat_user root = {.user = "root", .host = "%", .require = CAT_REQ_NONE};
    if (catalog_put_user(c, &root, err, errlen) != 0 ||
        catalog_create_db(c, "test", true, err, errlen) != 0 ||
        catalog_create_db(c, "mysql", true, err, errlen) != 0)
        return -1;
    return kvb_put(c->kv, "mBootstrapped", 13, "1", 1, err, errlen);
}
