/* catalog.h — TiDB's schema and users, kept in TiKV (through kvbridge) under tisim's meta
 * keys, with an in-memory cache of table definitions. One tidb-server per cluster: ids and
 * auto-increment ranges are allocated under this process's lock (read, add, write back), which
 * several tidb-servers could race on (TiKV's raw API has no compare-and-swap).
 *
 * Keys (values are JSON):
 *   mNextID                 the next database/table id (decimal text)
 *   mDB:<db>                {"id":N,"name":"db"}
 *   mTable:<db>.<table>     the table definition (struct cat_table as JSON)
 *   mAutoID:<table id>      the next auto-increment value not yet handed out (decimal text)
 *   mUser:<user>@<host>     {"user","host","auth":"*HEX","require":"NONE|SSL|X509|SPECIFIED",
 *                            "subject","issuer"}
 *   mBootstrapped           set once the first start created root and the default dbs
 * Database and table names compare case-insensitively, as TiDB's default.
 *
 * Contract: every function is blocking, for session workers (never the loop thread), returns
 * 0 / 1 (not found) / -1 with one line in err (an SQL-level message where a user causes it),
 * and is safe to call from several workers at once.
 */
#ifndef TISIM_CATALOG_H
#define TISIM_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kvbridge.h"

#define CAT_NAME_MAX 64
#define CAT_MAX_COLUMNS 64
#define CAT_MAX_INDEXES 16

enum cat_type { CAT_INT, CAT_BIGINT, CAT_VARCHAR, CAT_CHAR, CAT_TEXT };

struct cat_column {
    char name[CAT_NAME_MAX + 1];
    enum cat_type type;
    unsigned len; /* VARCHAR/CHAR length; 0 for others */
    bool not_null;
    bool auto_inc;
    bool has_default;
    char *def; /* default value as text (NULL: DEFAULT NULL or none) */
};

struct cat_index {
    int64_t id;
    char name[CAT_NAME_MAX + 1];
    size_t ncols;
    int cols[CAT_MAX_COLUMNS];
    bool unique;
};

struct cat_table {
    int64_t id;
    char db[CAT_NAME_MAX + 1];
    char name[CAT_NAME_MAX + 1];
    size_t ncols;
    struct cat_column cols[CAT_MAX_COLUMNS];
    int pk;                /* the integer primary key column (the row handle), or -1 */
    size_t nindexes;
    struct cat_index indexes[CAT_MAX_INDEXES]; /* secondary, and a non-int primary key (id 0) */
};

enum cat_require { CAT_REQ_NONE, CAT_REQ_SSL, CAT_REQ_X509, CAT_REQ_SPECIFIED };

struct cat_user {
    char user[CAT_NAME_MAX + 1];
    char host[256];
    char auth[48]; /* "" or "*" + 40 hex */
    enum cat_require require;
    char subject[512];
    char issuer[512];
};

struct catalog;

struct catalog *catalog_new(struct kvbridge *kv);
void catalog_free(struct catalog *c);
struct kvbridge *catalog_kv(struct catalog *c);

/* First start: root@% with an empty password, databases test and mysql. */
int catalog_bootstrap(struct catalog *c, char *err, size_t errlen);

int catalog_create_db(struct catalog *c, const char *db, bool if_not_exists, char *err,
                      size_t errlen);
int catalog_drop_db(struct catalog *c, const char *db, bool if_exists, char *err,
                    size_t errlen);
int catalog_db_exists(struct catalog *c, const char *db, char *err, size_t errlen);
/* Names in order; *names malloc'd array of malloc'd strings (catalog_names_free). */
int catalog_list_dbs(struct catalog *c, char ***names, size_t *n, char *err, size_t errlen);
int catalog_list_tables(struct catalog *c, const char *db, char ***names, size_t *n, char *err,
                        size_t errlen);
void catalog_names_free(char **names, size_t n);

/* t->db and t->name set; the id is allocated here. 1: exists (if_not_exists: 0, nothing done). */
int catalog_create_table(struct catalog *c, struct cat_table *t, bool if_not_exists, char *err,
                         size_t errlen);
/* Fills *t (a copy: the caller frees it with catalog_table_clear). 1: no such table. */
int catalog_get_table(struct catalog *c, const char *db, const char *name, struct cat_table *t,
                      char *err, size_t errlen);
/* Removes the definition and every row and index entry of the table. 1: no such table. */
int catalog_drop_table(struct catalog *c, const char *db, const char *name, char *err,
                       size_t errlen);
/* Adds a secondary index (entries for existing rows written too). */
int catalog_add_index(struct catalog *c, const char *db, const char *table, const char *index,
                      const int *cols, size_t ncols, bool unique, char *err, size_t errlen);
void catalog_table_clear(struct cat_table *t);

/* n values from the table's auto-increment sequence, starting at *first. at_least: a value
 * the user inserted explicitly (the sequence moves past it); 0 none. */
int catalog_auto_ids(struct catalog *c, int64_t table_id, int64_t n, int64_t at_least,
                     int64_t *first, char *err, size_t errlen);

int catalog_get_user(struct catalog *c, const char *user, const char *host, struct cat_user *u,
                     char *err, size_t errlen);
/* Finds the account for user connecting from host: an exact host, else '%'. */
int catalog_match_user(struct catalog *c, const char *user, const char *client_host,
                       struct cat_user *u, char *err, size_t errlen);
int catalog_put_user(struct catalog *c, const struct cat_user *u, char *err, size_t errlen);
int catalog_drop_user(struct catalog *c, const char *user, const char *host, char *err,
                      size_t errlen);

#endif
