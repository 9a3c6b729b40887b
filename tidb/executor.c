/* executor.c — one SQL statement for a session. See executor.h. */
#include "executor.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "kvbridge.h"
#include "sql_parse.h"
#include "tablecodec.h"

#define SCAN_PAGE 1000
#define MAX_RESULT_ROWS 100000
#define VERSION_COMMENT "TiDB Server (Apache License 2.0) Community Edition, MySQL 8.0 compatible"

/* ---- per-statement memory ------------------------------------------------------------------ */

struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
};

struct arena {
    struct chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (!a->head || a->head->cap - a->head->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        struct chunk *c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        *c = (struct chunk){a->head, 0, cap};
        a->head = c;
    }
    void *p = a->head->data + a->head->used;
    a->head->used += n;
    return p;
}

static char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *d = arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static void arena_free(struct arena *a)
{
    while (a->head) {
        struct chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ---- the statement's context ----------------------------------------------------------------- */

enum vkind { V_NULL, V_INT, V_STR };

struct val {
    enum vkind k;
    int64_t i;
    const char *s; /* V_STR: len bytes (NUL-terminated when from the arena) */
    size_t len;
};

struct ctx {
    struct exec_session *s;
    struct catalog *cat;
    struct kvbridge *kv;
    struct arena arena;
    uint8_t seq;
    struct mysql_buf *out;
    /* the first error: code, SQLSTATE (NULL: the code's), message */
    int err_code;
    const char *err_state;
    char err[512];
    /* the row being evaluated */
    const struct cat_table *table;
    const char *alias;
    const struct tc_value *row;
    int64_t handle;
};

static int fail(struct ctx *x, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *x, int code, const char *fmt, ...)
{
    if (x->err_code)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    x->err_code = code;
    return -1;
}

static int fail_kv(struct ctx *x, const char *err)
{
    return fail(x, MYSQL_ER_UNKNOWN_ERROR, "%s", err);
}

static int oom(struct ctx *x)
{
    return fail(x, 1037, "Out of memory");
}

/* ---- values ------------------------------------------------------------------------------- */

static struct val vint(int64_t i)
{
    return (struct val){V_INT, i, NULL, 0};
}

static struct val vstr(const char *s, size_t len)
{
    return (struct val){V_STR, 0, s, len};
}

static struct val vnull(void)
{
    return (struct val){V_NULL, 0, NULL, 0};
}

static int vprintf_str(struct ctx *x, struct val *out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int vprintf_str(struct ctx *x, struct val *out, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return oom(x);
    size_t len = (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1;
    char *s = arena_strndup(&x->arena, buf, len);
    if (!s)
        return oom(x);
    *out = vstr(s, len);
    return 0;
}

/* A value as text (NULL for SQL NULL), in the arena. */
static const char *vtext(struct ctx *x, const struct val *v, size_t *len)
{
    if (v->k == V_NULL)
        return NULL;
    if (v->k == V_STR) {
        *len = v->len;
        return v->s;
    }
    char buf[24];
    int n = snprintf(buf, sizeof buf, "%" PRId64, v->i);
    *len = (size_t)n;
    return arena_strndup(&x->arena, buf, (size_t)n);
}

/* MySQL's string-to-number: leading blanks, optional sign, digits; *clean false when other
 * bytes follow or none were digits. */
static int64_t str_to_int(const char *s, size_t len, bool *clean)
{
    size_t i = 0;
    while (i < len && isspace((unsigned char)s[i]))
        i++;
    bool neg = i < len && s[i] == '-';
    if (i < len && (s[i] == '-' || s[i] == '+'))
        i++;
    size_t digits = i;
    uint64_t v = 0;
    bool overflow = false;
    for (; i < len && isdigit((unsigned char)s[i]); i++) {
        if (v > (UINT64_MAX - 9) / 10)
            overflow = true;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *clean = i > digits && i == len && !overflow && v <= (uint64_t)INT64_MAX + (neg ? 1 : 0);
    if (neg)
        return v > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)v;
    return v > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)v;
}

static int64_t vnum(const struct val *v)
{
    bool clean;
    return v->k == V_INT ? v->i : v->k == V_STR ? str_to_int(v->s, v->len, &clean) : 0;
}

/* -1, 0, 1; *null when either side is NULL. Numbers when either side is a number. */
static int vcmp(const struct val *a, const struct val *b, bool *null)
{
    *null = a->k == V_NULL || b->k == V_NULL;
    if (*null)
        return 0;
    if (a->k == V_STR && b->k == V_STR) {
        int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
        return c ? (c > 0) - (c < 0) : (a->len > b->len) - (a->len < b->len);
    }
    int64_t l = vnum(a), r = vnum(b);
    return (l > r) - (l < r);
}

static bool vtrue(const struct val *v)
{
    return v->k != V_NULL && vnum(v) != 0;
}

/* ---- system variables ---------------------------------------------------------------------- */

struct sysvar {
    const char *name;
    const char *value; /* NULL: computed */
};

static const struct sysvar SYSVARS[] = {
    {"auto_increment_increment", "1"},
    {"auto_increment_offset", "1"},
    {"autocommit", "1"},
    {"character_set_client", "utf8mb4"},
    {"character_set_connection", "utf8mb4"},
    {"character_set_database", "utf8mb4"},
    {"character_set_results", "utf8mb4"},
    {"character_set_server", "utf8mb4"},
    {"collation_connection", "utf8mb4_bin"},
    {"collation_database", "utf8mb4_bin"},
    {"collation_server", "utf8mb4_bin"},
    {"have_openssl", NULL},
    {"have_ssl", NULL},
    {"init_connect", ""},
    {"interactive_timeout", "28800"},
    {"license", "Apache License 2.0"},
    {"lower_case_table_names", "2"},
    {"max_allowed_packet", "67108864"},
    {"net_buffer_length", "16384"},
    {"net_write_timeout", "60"},
    {"require_secure_transport", NULL},
    {"sql_mode", "ONLY_FULL_GROUP_BY,STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
                 "ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION"},
    {"ssl_ca", NULL},
    {"ssl_cert", NULL},
    {"ssl_key", NULL},
    {"system_time_zone", "UTC"},
    {"time_zone", "SYSTEM"},
    {"tidb_version", NULL},
    {"transaction_isolation", "REPEATABLE-READ"},
    {"tx_isolation", "REPEATABLE-READ"},
    {"tx_read_only", "0"},
    {"version", NULL},
    {"version_comment", VERSION_COMMENT},
    {"wait_timeout", "28800"},
};

static const char *sysvar_value(struct ctx *x, const struct sysvar *v)
{
    const struct exec_server *srv = x->s->server;
    if (v->value)
        return v->value;
    if (strcmp(v->name, "have_ssl") == 0 || strcmp(v->name, "have_openssl") == 0)
        return srv->have_ssl ? "YES" : "DISABLED";
    if (strcmp(v->name, "require_secure_transport") == 0)
        return srv->require_secure ? "ON" : "OFF";
    if (strcmp(v->name, "ssl_ca") == 0)
        return srv->ssl_ca;
    if (strcmp(v->name, "ssl_cert") == 0)
        return srv->ssl_cert;
    if (strcmp(v->name, "ssl_key") == 0)
        return srv->ssl_key;
    if (strcmp(v->name, "tidb_version") == 0)
        return "Release Version: v8.0.11-tisim\nEdition: Community\nStore: tikv";
    return srv->version; /* version */
}

static const struct sysvar *find_sysvar(const char *name)
{
    for (size_t i = 0; i < sizeof SYSVARS / sizeof SYSVARS[0]; i++)
        if (strcasecmp(SYSVARS[i].name, name) == 0)
            return &SYSVARS[i];
    return NULL;
}

/* ---- expressions --------------------------------------------------------------------------- */

static int column_index(const struct cat_table *t, const char *name)
{
    for (size_t i = 0; t && i < t->ncols; i++)
        if (strcasecmp(t->cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int eval(struct ctx *x, const struct sql_expr *e, struct val *out);

static int eval_column(struct ctx *x, const struct sql_expr *e, struct val *out)
{
    const char *tq = e->u.col.table;
    bool table_ok = !tq || (x->table && (strcasecmp(tq, x->table->name) == 0 ||
                                         (x->alias && strcasecmp(tq, x->alias) == 0)));
    int c = table_ok ? column_index(x->table, e->u.col.name) : -1;
    if (c < 0 || !x->row)
        return fail(x, MYSQL_ER_BAD_FIELD_ERROR, "Unknown column '%s%s%s' in 'field list'",
                    tq ? tq : "", tq ? "." : "", e->u.col.name);
    const struct tc_value *v = &x->row[c];
    *out = v->kind == 1 ? vint(v->i) : v->kind == 2 ? vstr((const char *)v->s, v->len) : vnull();
    return 0;
}

static int eval_func(struct ctx *x, const struct sql_expr *e, struct val *out)
{
    const char *f = e->u.func.name;
    struct exec_session *s = x->s;
    size_t n = e->u.func.n_args;
    if (n == 0 && strcmp(f, "VERSION") == 0)
        return vprintf_str(x, out, "%s", s->server->version);
    if (n == 0 && strcmp(f, "CURRENT_USER") == 0)
        return vprintf_str(x, out, "%s@%s", s->user, s->account_host);
    if (n == 0 && (strcmp(f, "USER") == 0 || strcmp(f, "SESSION_USER") == 0 ||
                   strcmp(f, "SYSTEM_USER") == 0))
        return vprintf_str(x, out, "%s@%s", s->user, s->client_host);
    if (n == 0 && (strcmp(f, "DATABASE") == 0 || strcmp(f, "SCHEMA") == 0)) {
        *out = s->db[0] ? vstr(s->db, strlen(s->db)) : vnull();
        return 0;
    }
    if (n == 0 && strcmp(f, "CONNECTION_ID") == 0) {
        *out = vint(s->conn_id);
        return 0;
    }
    if (n == 0 && strcmp(f, "LAST_INSERT_ID") == 0) {
        *out = vint((int64_t)s->last_insert_id);
        return 0;
    }
    if (n == 0 && strcmp(f, "TIDB_VERSION") == 0)
        return vprintf_str(x, out, "%s", sysvar_value(x, find_sysvar("tidb_version")));
    struct val a[8];
    if (n > 8)
        return fail(x, MYSQL_ER_NOT_SUPPORTED_YET,
                    "This version of TiDB doesn't yet support '%s with %zu arguments'", f, n);
    for (size_t i = 0; i < n; i++)
        if (eval(x, e->u.func.args[i], &a[i]) != 0)
            return -1;
    if (strcmp(f, "CONCAT") == 0 && n > 0) {
        size_t total = 0, at = 0;
        for (size_t i = 0; i < n; i++) {
            if (a[i].k == V_NULL) {
                *out = vnull();
                return 0;
            }
            vtext(x, &a[i], &a[i].len);
            total += a[i].len;
        }
        char *buf = arena_alloc(&x->arena, total + 1);
        if (!buf)
            return oom(x);
        for (size_t i = 0; i < n; i++) {
            size_t len;
            const char *t = vtext(x, &a[i], &len);
            memcpy(buf + at, t, len);
            at += len;
        }
        buf[at] = '\0';
        *out = vstr(buf, at);
        return 0;
    }
    if ((strcmp(f, "UPPER") == 0 || strcmp(f, "LOWER") == 0 || strcmp(f, "UCASE") == 0 ||
         strcmp(f, "LCASE") == 0) && n == 1) {
        size_t len;
        const char *t = vtext(x, &a[0], &len);
        if (!t) {
            *out = vnull();
            return 0;
        }
        char *d = arena_strndup(&x->arena, t, len);
        if (!d)
            return oom(x);
        for (size_t i = 0; i < len; i++)
            d[i] = (char)(f[0] == 'U' ? toupper((unsigned char)d[i]) : tolower((unsigned char)d[i]));
        *out = vstr(d, len);
        return 0;
    }
    if ((strcmp(f, "LENGTH") == 0 || strcmp(f, "CHAR_LENGTH") == 0) && n == 1) {
        size_t len;
        *out = vtext(x, &a[0], &len) ? vint((int64_t)len) : vnull();
        return 0;
    }
    if (strcmp(f, "ABS") == 0 && n == 1) {
        *out = a[0].k == V_NULL ? vnull() : vint(llabs(vnum(&a[0])));
        return 0;
    }
    if ((strcmp(f, "IFNULL") == 0 || strcmp(f, "COALESCE") == 0) && n >= 1) {
        *out = vnull();
        for (size_t i = 0; i < n && out->k == V_NULL; i++)
            *out = a[i];
        return 0;
    }
    return fail(x, MYSQL_ER_NOT_SUPPORTED_YET,
                "This version of TiDB doesn't yet support 'function %s'", f);
}

static int eval_binary(struct ctx *x, const struct sql_expr *e, struct val *out)
{
    struct val l, r;
    enum sql_op op = e->u.binary.op;
    if (eval(x, e->u.binary.l, &l) != 0)
        return -1;
    if (op == SQL_OP_AND && l.k != V_NULL && !vtrue(&l)) {
        *out = vint(0);
        return 0;
    }
    if (op == SQL_OP_OR && vtrue(&l)) {
        *out = vint(1);
        return 0;
    }
    if (eval(x, e->u.binary.r, &r) != 0)
        return -1;
    bool null;
    int c;
    switch (op) {
    case SQL_OP_AND:
        *out = l.k == V_NULL || r.k == V_NULL ? (vtrue(&r) || r.k == V_NULL ? vnull() : vint(0))
                                              : vint(vtrue(&r));
        return 0;
    case SQL_OP_OR:
        *out = vtrue(&r) ? vint(1) : (l.k == V_NULL || r.k == V_NULL) ? vnull() : vint(0);
        return 0;
    case SQL_OP_NSEQ:
        c = vcmp(&l, &r, &null);
        *out = vint(null ? (l.k == V_NULL && r.k == V_NULL) : c == 0);
        return 0;
    case SQL_OP_EQ: case SQL_OP_NE: case SQL_OP_LT: case SQL_OP_LE: case SQL_OP_GT: case SQL_OP_GE:
        c = vcmp(&l, &r, &null);
        if (null) {
            *out = vnull();
            return 0;
        }
        *out = vint(op == SQL_OP_EQ   ? c == 0
                    : op == SQL_OP_NE ? c != 0
                    : op == SQL_OP_LT ? c < 0
                    : op == SQL_OP_LE ? c <= 0
                    : op == SQL_OP_GT ? c > 0
                                      : c >= 0);
        return 0;
    case SQL_OP_LIKE: {
        size_t ln, rn;
        const char *ls = vtext(x, &l, &ln), *rs = vtext(x, &r, &rn);
        *out = ls && rs ? vint(executor_like(ls, rs)) : vnull();
        return 0;
    }
    default:
        break;
    }
    if (l.k == V_NULL || r.k == V_NULL) {
        *out = vnull();
        return 0;
    }
    int64_t a = vnum(&l), b = vnum(&r);
    switch (op) {
    case SQL_OP_ADD: *out = vint(a + b); return 0;
    case SQL_OP_SUB: *out = vint(a - b); return 0;
    case SQL_OP_MUL: *out = vint(a * b); return 0;
    case SQL_OP_DIV: case SQL_OP_INTDIV:
        *out = b == 0 ? vnull() : vint(a / b); /* integer division: no decimals here */
        return 0;
    case SQL_OP_MOD: *out = b == 0 ? vnull() : vint(a % b); return 0;
    default:
        return fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support "
                    "this operator");
    }
}

static int eval(struct ctx *x, const struct sql_expr *e, struct val *out)
{
    struct val v, lo, hi;
    bool null;
    switch (e->kind) {
    case SQL_E_INT:
        *out = vint(e->u.i);
        return 0;
    case SQL_E_STRING: case SQL_E_DECIMAL:
        *out = vstr(e->u.str.s, e->kind == SQL_E_STRING ? e->u.str.len : strlen(e->u.str.s));
        return 0;
    case SQL_E_NULL:
        *out = vnull();
        return 0;
    case SQL_E_COLUMN:
        return eval_column(x, e, out);
    case SQL_E_SYSVAR: {
        const struct sysvar *sv = find_sysvar(e->u.var.name);
        if (!sv)
            return fail(x, MYSQL_ER_UNKNOWN_SYSTEM_VARIABLE, "Unknown system variable '%s'",
                        e->u.var.name);
        const char *t = sysvar_value(x, sv);
        bool clean;
        int64_t i = str_to_int(t, strlen(t), &clean);
        *out = clean ? vint(i) : vstr(t, strlen(t));
        return 0;
    }
    case SQL_E_USERVAR:
        *out = vnull(); /* user variables are not kept */
        return 0;
    case SQL_E_FUNC:
        return eval_func(x, e, out);
    case SQL_E_UNARY:
        if (eval(x, e->u.unary.arg, &v) != 0)
            return -1;
        *out = v.k == V_NULL ? vnull()
               : e->u.unary.op == SQL_OP_NEG ? vint(-vnum(&v)) : vint(!vtrue(&v));
        return 0;
    case SQL_E_BINARY:
        return eval_binary(x, e, out);
    case SQL_E_BETWEEN:
        if (eval(x, e->u.between.x, &v) != 0 || eval(x, e->u.between.lo, &lo) != 0 ||
            eval(x, e->u.between.hi, &hi) != 0)
            return -1;
        {
            bool n1, n2;
            int c1 = vcmp(&v, &lo, &n1), c2 = vcmp(&v, &hi, &n2);
            if (n1 || n2)
                *out = vnull();
            else
                *out = vint((c1 >= 0 && c2 <= 0) != e->u.between.negated);
        }
        return 0;
    case SQL_E_IN: {
        if (eval(x, e->u.in.x, &v) != 0)
            return -1;
        bool found = false, saw_null = v.k == V_NULL;
        for (size_t i = 0; i < e->u.in.n && !found; i++) {
            if (eval(x, e->u.in.list[i], &lo) != 0)
                return -1;
            found = vcmp(&v, &lo, &null) == 0 && !null;
            saw_null |= null;
        }
        *out = found ? vint(!e->u.in.negated) : saw_null ? vnull() : vint(e->u.in.negated);
        return 0;
    }
    case SQL_E_IS_NULL:
        if (eval(x, e->u.is_null.x, &v) != 0)
            return -1;
        *out = vint((v.k == V_NULL) != e->u.is_null.negated);
        return 0;
    case SQL_E_STAR: case SQL_E_DEFAULT:
        break;
    }
    return fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support this "
                "expression here");
}

bool executor_like(const char *s, const char *p)
{
    for (; *p; p++, s++) {
        if (*p == '%') {
            while (p[1] == '%')
                p++;
            if (!p[1])
                return true;
            for (; *s; s++)
                if (executor_like(s, p + 1))
                    return true;
            return false;
        }
        if (!*s)
            return false;
        if (*p == '\\' && p[1])
            p++;
        else if (*p == '_')
            continue;
        if (tolower((unsigned char)*p) != tolower((unsigned char)*s))
            return false;
    }
    return *s == '\0';
}

/* ---- replies ----------------------------------------------------------------------------------- */

static void reply_ok(struct ctx *x, uint64_t affected, uint64_t last_id, const char *info)
{
    mysql_write_ok(x->out, &x->seq, affected, last_id, MYSQL_SERVER_STATUS_AUTOCOMMIT, 0, info);
}

static void reply_err(struct ctx *x)
{
    if (x->err_state)
        mysql_write_err_state(x->out, &x->seq, (uint16_t)x->err_code, x->err_state, x->err);
    else
        mysql_write_err(x->out, &x->seq, (uint16_t)x->err_code, x->err);
}

/* A result set being built: columns, then cells (row-major) in the arena. */
struct result {
    struct mysql_column cols[CAT_MAX_COLUMNS + 8];
    size_t ncols;
    const char **cells;
    size_t *lens;
    size_t nrows, cap;
};

static int result_col(struct ctx *x, struct result *r, const char *name, uint8_t type)
{
    if (r->ncols == sizeof r->cols / sizeof r->cols[0])
        return fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support "
                    "so many result columns");
    mysql_column_init(&r->cols[r->ncols++], name, type);
    return 0;
}

static int result_row(struct ctx *x, struct result *r, const struct val *vals)
{
    if (r->nrows >= MAX_RESULT_ROWS)
        return fail(x, MYSQL_ER_UNKNOWN_ERROR, "the result has more than %d rows: add a LIMIT",
                    MAX_RESULT_ROWS);
    if (r->nrows == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        const char **c = arena_alloc(&x->arena, cap * r->ncols * sizeof *c);
        size_t *l = arena_alloc(&x->arena, cap * r->ncols * sizeof *l);
        if (!c || !l)
            return oom(x);
        if (r->nrows) {
            memcpy(c, r->cells, r->nrows * r->ncols * sizeof *c);
            memcpy(l, r->lens, r->nrows * r->ncols * sizeof *l);
        }
        r->cells = c;
        r->lens = l;
        r->cap = cap;
    }
    for (size_t i = 0; i < r->ncols; i++) {
        size_t at = r->nrows * r->ncols + i, len = 0;
        const char *t = vtext(x, &vals[i], &len);
        if (t && vals[i].k == V_STR && !(t = arena_strndup(&x->arena, t, len)))
            return oom(x); /* row bytes do not outlive the scan page */
        r->cells[at] = t;
        r->lens[at] = len;
    }
    r->nrows++;
    return 0;
}

static void reply_result(struct ctx *x, struct result *r)
{
    mysql_write_resultset(x->out, &x->seq, r->cols, r->ncols, r->cells, r->lens, r->nrows,
                          MYSQL_SERVER_STATUS_AUTOCOMMIT);
}

/* A two-column Variable_name/Value result of pairs matching like (NULL: all). */
static void reply_pairs(struct ctx *x, const char *const *pairs, size_t n, const char *like)
{
    struct result r = {0};
    result_col(x, &r, "Variable_name", MYSQL_TYPE_VAR_STRING);
    result_col(x, &r, "Value", MYSQL_TYPE_VAR_STRING);
    for (size_t i = 0; i < n; i++) {
        if (like && !executor_like(pairs[2 * i], like))
            continue;
        struct val v[2] = {vstr(pairs[2 * i], strlen(pairs[2 * i])),
                           vstr(pairs[2 * i + 1], strlen(pairs[2 * i + 1]))};
        if (result_row(x, &r, v) != 0)
            return;
    }
    reply_result(x, &r);
}


/* ---- statements without tables ------------------------------------------------------------------ */

static uint8_t type_of_val(const struct val *v)
{
    return v->k == V_INT ? MYSQL_TYPE_LONGLONG : v->k == V_NULL ? MYSQL_TYPE_NULL
                                                                : MYSQL_TYPE_VAR_STRING;
}

static void select_no_table(struct ctx *x, const struct sql_select *q)
{
    struct val vals[CAT_MAX_COLUMNS];
    struct result r = {0};
    if (q->n_items > CAT_MAX_COLUMNS) {
        fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support so many "
             "result columns");
        return;
    }
    for (size_t i = 0; i < q->n_items; i++) {
        if (!q->items[i].expr) {
            fail(x, 1096, "No tables used");
            return;
        }
        if (eval(x, q->items[i].expr, &vals[i]) != 0 ||
            result_col(x, &r, q->items[i].name, type_of_val(&vals[i])) != 0)
            return;
    }
    bool keep = true;
    if (q->where) {
        struct val w;
        if (eval(x, q->where, &w) != 0)
            return;
        keep = vtrue(&w);
    }
    if (q->limit.present && (q->limit.count == 0 || q->limit.offset > 0))
        keep = false;
    if (keep && result_row(x, &r, vals) != 0)
        return;
    reply_result(x, &r);
}

static void show_variables(struct ctx *x, const struct sql_show *q)
{
    size_t n = sizeof SYSVARS / sizeof SYSVARS[0];
    const char **pairs = arena_alloc(&x->arena, 2 * n * sizeof *pairs);
    if (!pairs) {
        oom(x);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        pairs[2 * i] = SYSVARS[i].name;
        pairs[2 * i + 1] = sysvar_value(x, &SYSVARS[i]);
    }
    reply_pairs(x, pairs, n, q->like);
}

static void show_status(struct ctx *x, const struct sql_show *q)
{
    const struct exec_session *s = x->s;
    const struct exec_server *srv = s->server;
    char id[24];
    snprintf(id, sizeof id, "%" PRIu32, s->conn_id);
    /* Ssl_verify_mode as MySQL shows it: 5 (verify the peer, once) when ssl-ca is set */
    const char *pairs[] = {
        "Ssl_cipher", s->tls ? s->tls_cipher : "",
        "Ssl_cipher_list", s->tls ? s->tls_cipher : "",
        "Ssl_server_not_after", s->tls ? srv->server_not_after : "",
        "Ssl_server_not_before", s->tls ? srv->server_not_before : "",
        "Ssl_verify_mode", s->tls && srv->ssl_ca[0] ? "5" : "0",
        "Ssl_version", s->tls ? s->tls_version : "",
        "Threads_connected", "1",
        "Uptime", "1",
    };
    reply_pairs(x, pairs, sizeof pairs / sizeof pairs[0] / 2, q->like);
}

static void show_names(struct ctx *x, const char *header, char **names, size_t n,
                       const char *like)
{
    struct result r = {0};
    if (result_col(x, &r, header, MYSQL_TYPE_VAR_STRING) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        if (like && !executor_like(names[i], like))
            continue;
        struct val v = vstr(names[i], strlen(names[i]));
        if (result_row(x, &r, &v) != 0)
            return;
    }
    reply_result(x, &r);
}

static void show_databases(struct ctx *x, const struct sql_show *q)
{
    char **names, err[300];
    size_t n;
    if (catalog_list_dbs(x->cat, &names, &n, err, sizeof err) != 0) {
        fail_kv(x, err);
        return;
    }
    char **all = calloc(n + 1, sizeof *all);
    if (all) {
        all[0] = "INFORMATION_SCHEMA";
        memcpy(all + 1, names, n * sizeof *names);
        show_names(x, "Database", all, n + 1, q->like);
    } else {
        oom(x);
    }
    free(all);
    catalog_names_free(names, n);
}

/* The database a statement names, else the session's; NULL (1046) when neither. */
static const char *db_of(struct ctx *x, const char *named)
{
    if (named)
        return named;
    if (x->s->db[0])
        return x->s->db;
    fail(x, MYSQL_ER_NO_DB_ERROR, "No database selected");
    return NULL;
}

static int need_db(struct ctx *x, const char *db)
{
    char err[300];
    int rc = catalog_db_exists(x->cat, db, err, sizeof err);
    if (rc < 0)
        return fail_kv(x, err);
    if (rc == 1)
        return fail(x, MYSQL_ER_BAD_DB_ERROR, "Unknown database '%s'", db);
    return 0;
}

static void show_tables(struct ctx *x, const struct sql_show *q)
{
    const char *db = db_of(x, q->db);
    char **names, err[300], header[CAT_NAME_MAX + 16];
    size_t n;
    if (!db || need_db(x, db) != 0)
        return;
    if (catalog_list_tables(x->cat, db, &names, &n, err, sizeof err) != 0) {
        fail_kv(x, err);
        return;
    }
    snprintf(header, sizeof header, "Tables_in_%s", db);
    show_names(x, header, names, n, q->like);
    catalog_names_free(names, n);
}

static void do_use(struct ctx *x, const char *db)
{
    if (need_db(x, db) != 0)
        return;
    snprintf(x->s->db, sizeof x->s->db, "%s", db);
    reply_ok(x, 0, 0, NULL);
}

void executor_use(struct exec_session *s, const char *db, uint8_t seq, struct mysql_buf *out)
{
    struct ctx x = {.s = s, .cat = s->server->catalog, .kv = catalog_kv(s->server->catalog),
                    .seq = seq, .out = out};
    do_use(&x, db);
    if (x.err_code)
        reply_err(&x);
    arena_free(&x.arena);
}

/* ---- tables: resolving, reading rows ---------------------------------------------------------------- */

/* Loads the table a statement names (1046 / 1049 / 1146 otherwise). */
static int open_table(struct ctx *x, const struct sql_table_ref *ref, struct cat_table *t)
{
    const char *db = db_of(x, ref->db);
    char err[300];
    if (!db)
        return -1;
    int rc = catalog_get_table(x->cat, db, ref->name, t, err, sizeof err);
    if (rc < 0)
        return fail_kv(x, err);
    if (rc == 1) {
        if (need_db(x, db) != 0)
            return -1;
        return fail(x, MYSQL_ER_NO_SUCH_TABLE, "Table '%s.%s' doesn't exist", db, ref->name);
    }
    return 0;
}

/* What a WHERE clause says about the integer primary key: a list of values, or a range. */
struct keys {
    bool points;         /* else a range */
    int64_t *pts;        /* sorted, distinct */
    size_t npts;
    int64_t lo, hi;      /* inclusive range */
    bool empty;
};

static bool is_pk(const struct ctx *x, const struct sql_expr *e)
{
    return e->kind == SQL_E_COLUMN && x->table->pk >= 0 &&
           strcasecmp(e->u.col.name, x->table->cols[x->table->pk].name) == 0;
}

/* A constant integer expression (no columns); false when it is not one. */
static bool const_int(struct ctx *x, const struct sql_expr *e, int64_t *out)
{
    if (e->kind != SQL_E_INT && e->kind != SQL_E_STRING)
        return false;
    struct val v;
    if (eval(x, e, &v) != 0)
        return false;
    bool clean = true;
    *out = v.k == V_INT ? v.i : str_to_int(v.s, v.len, &clean);
    return clean;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t l = *(const int64_t *)a, r = *(const int64_t *)b;
    return (l > r) - (l < r);
}

static void narrow(struct keys *k, int64_t lo, int64_t hi)
{
    if (lo > k->lo)
        k->lo = lo;
    if (hi < k->hi)
        k->hi = hi;
}

/* Tightens k from one conjunct; conjuncts it does not understand are left to the filter. */
static void conjunct(struct ctx *x, const struct sql_expr *e, struct keys *k)
{
    int64_t v, v2;
    if (e->kind == SQL_E_BINARY && e->u.binary.op == SQL_OP_AND) {
        conjunct(x, e->u.binary.l, k);
        conjunct(x, e->u.binary.r, k);
        return;
    }
    if (e->kind == SQL_E_BINARY && e->u.binary.op >= SQL_OP_EQ && e->u.binary.op <= SQL_OP_GE) {
        const struct sql_expr *col = e->u.binary.l, *c = e->u.binary.r;
        enum sql_op op = e->u.binary.op;
        if (!is_pk(x, col)) { /* 5 < id */
            const struct sql_expr *t = col;
            col = c;
            c = t;
            op = op == SQL_OP_LT ? SQL_OP_GT : op == SQL_OP_GT ? SQL_OP_LT
                 : op == SQL_OP_LE ? SQL_OP_GE : op == SQL_OP_GE ? SQL_OP_LE : op;
        }
        if (!is_pk(x, col) || !const_int(x, c, &v) || op == SQL_OP_NE)
            return;
        if (op == SQL_OP_EQ || op == SQL_OP_NSEQ)
            narrow(k, v, v);
        else if (op == SQL_OP_LT)
            v == INT64_MIN ? (void)(k->empty = true) : narrow(k, INT64_MIN, v - 1);
        else if (op == SQL_OP_LE)
            narrow(k, INT64_MIN, v);
        else if (op == SQL_OP_GT)
            v == INT64_MAX ? (void)(k->empty = true) : narrow(k, v + 1, INT64_MAX);
        else
            narrow(k, v, INT64_MAX);
        return;
    }
    if (e->kind == SQL_E_BETWEEN && !e->u.between.negated && is_pk(x, e->u.between.x) &&
        const_int(x, e->u.between.lo, &v) && const_int(x, e->u.between.hi, &v2)) {
        narrow(k, v, v2);
        return;
    }
    if (e->kind == SQL_E_IN && !e->u.in.negated && is_pk(x, e->u.in.x) && !k->points) {
        int64_t *pts = arena_alloc(&x->arena, (e->u.in.n + 1) * sizeof *pts);
        size_t n = 0;
        for (size_t i = 0; pts && i < e->u.in.n; i++)
            if (!const_int(x, e->u.in.list[i], &pts[n++]))
                return;
        if (!pts)
            return;
        qsort(pts, n, sizeof *pts, cmp_i64);
        size_t d = 0;
        for (size_t i = 0; i < n; i++)
            if (d == 0 || pts[d - 1] != pts[i])
                pts[d++] = pts[i];
        k->points = true;
        k->pts = pts;
        k->npts = d;
    }
}

static void plan_keys(struct ctx *x, const struct sql_expr *where, struct keys *k)
{
    *k = (struct keys){.lo = INT64_MIN, .hi = INT64_MAX};
    if (where && x->table->pk >= 0)
        conjunct(x, where, k);
    if (k->lo > k->hi)
        k->empty = true;
    if (k->points) { /* the range still bounds the points */
        size_t d = 0;
        for (size_t i = 0; i < k->npts; i++)
            if (k->pts[i] >= k->lo && k->pts[i] <= k->hi)
                k->pts[d++] = k->pts[i];
        k->npts = d;
    } else if (!k->empty && k->lo == k->hi) {
        k->points = true;
        k->pts = &k->lo;
        k->npts = 1;
    }
}

/* Called for each row the WHERE clause keeps; nonzero stops the walk (1 done, -1 error). */
typedef int (*row_fn)(struct ctx *x, const uint8_t *raw, size_t rawlen, void *arg);

static int visit(struct ctx *x, const struct sql_expr *where, const uint8_t *raw, size_t len,
                 int64_t handle, row_fn fn, void *arg)
{
    struct tc_value vals[CAT_MAX_COLUMNS];
    size_t n;
    if (tc_row_decode(raw, len, vals, CAT_MAX_COLUMNS, &n) != 0 || n != x->table->ncols)
        return fail(x, MYSQL_ER_UNKNOWN_ERROR, "row %" PRId64 " of table %s is damaged", handle,
                    x->table->name);
    x->row = vals;
    x->handle = handle;
    struct val w = vint(1);
    int rc = where ? eval(x, where, &w) : 0;
    if (rc == 0 && vtrue(&w))
        rc = fn(x, raw, len, arg);
    x->row = NULL;
    return rc;
}

/* Walks the rows WHERE selects, in handle order (stops early when fn returns 1). */
static int each_row(struct ctx *x, const struct sql_expr *where, row_fn fn, void *arg)
{
    struct keys k;
    char err[300];
    plan_keys(x, where, &k);
    if (x->err_code)
        return -1;
    if (k.empty)
        return 0;
    if (k.points) {
        for (size_t i = 0; i < k.npts; i++) {
            uint8_t key[TC_ROW_KEY_LEN], *v;
            size_t vlen;
            tc_row_key(key, x->table->id, k.pts[i]);
            int rc = kvb_get(x->kv, key, sizeof key, &v, &vlen, err, sizeof err);
            if (rc < 0)
                return fail_kv(x, err);
            if (rc == 1)
                continue;
            rc = visit(x, where, v, vlen, k.pts[i], fn, arg);
            free(v);
            if (rc != 0)
                return rc < 0 ? -1 : 0;
        }
        return 0;
    }
    uint8_t start[TC_ROW_KEY_LEN + 1], end[TC_ROW_KEY_LEN];
    size_t slen = TC_ROW_KEY_LEN, elen = TC_ROW_KEY_LEN;
    tc_row_key(start, x->table->id, k.lo);
    if (k.hi == INT64_MAX) {
        tc_row_prefix(end, x->table->id, true);
        elen = TC_PREFIX_LEN;
    } else {
        tc_row_key(end, x->table->id, k.hi + 1);
    }
    for (;;) {
        struct kvb_pair *p;
        size_t n;
        if (kvb_scan(x->kv, start, slen, end, elen, SCAN_PAGE, &p, &n, err, sizeof err) != 0)
            return fail_kv(x, err);
        int rc = 0;
        for (size_t i = 0; rc == 0 && i < n; i++) {
            int64_t h;
            if (tc_row_key_handle(p[i].key, p[i].klen, x->table->id, &h) != 0)
                continue;
            rc = visit(x, where, p[i].val, p[i].vlen, h, fn, arg);
        }
        if (n == SCAN_PAGE && rc == 0) { /* the next page starts just after the last key */
            memcpy(start, p[n - 1].key, p[n - 1].klen < TC_ROW_KEY_LEN ? p[n - 1].klen : TC_ROW_KEY_LEN);
            slen = TC_ROW_KEY_LEN + 1;
            start[TC_ROW_KEY_LEN] = 0;
        }
        kvb_pairs_free(p, n);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        if (n < SCAN_PAGE)
            return 0;
    }
}

/* ---- SELECT ... FROM ----------------------------------------------------------------------------------- */

static uint8_t column_type(const struct cat_column *c)
{
    switch (c->type) {
    case CAT_INT: return MYSQL_TYPE_LONG;
    case CAT_BIGINT: return MYSQL_TYPE_LONGLONG;
    case CAT_CHAR: return MYSQL_TYPE_STRING;
    case CAT_VARCHAR: return MYSQL_TYPE_VAR_STRING;
    default: return MYSQL_TYPE_BLOB;
    }
}

struct select_run {
    const struct sql_select *q;
    struct result r;
    bool count_only; /* SELECT COUNT(*) */
    int64_t count;
    uint64_t skip, want; /* LIMIT, when rows come in the order asked */
    bool limit_now;
    struct val **order_keys; /* per row when sorting: n_order_by values */
    size_t nkeys, keys_cap;
};

static bool is_count_star(const struct sql_expr *e)
{
    return e && e->kind == SQL_E_FUNC && strcmp(e->u.func.name, "COUNT") == 0 &&
           e->u.func.n_args == 1 && e->u.func.args[0]->kind == SQL_E_STAR;
}

static int select_row(struct ctx *x, const uint8_t *raw, size_t len, void *arg)
{
    (void)raw;
    (void)len;
    struct select_run *run = arg;
    const struct sql_select *q = run->q;
    if (run->count_only) {
        run->count++;
        return 0;
    }
    if (run->limit_now && run->skip) {
        run->skip--;
        return 0;
    }
    struct val vals[CAT_MAX_COLUMNS + 8];
    size_t n = 0;
    for (size_t i = 0; i < q->n_items; i++) {
        if (!q->items[i].expr) { /* * */
            for (size_t c = 0; c < x->table->ncols; c++) {
                const struct tc_value *v = &x->row[c];
                vals[n++] = v->kind == 1 ? vint(v->i)
                            : v->kind == 2 ? vstr((const char *)v->s, v->len) : vnull();
            }
        } else if (eval(x, q->items[i].expr, &vals[n++]) != 0) {
            return -1;
        }
    }
    if (result_row(x, &run->r, vals) != 0)
        return -1;
    if (q->n_order_by && !run->limit_now) {
        struct val *k = arena_alloc(&x->arena, q->n_order_by * sizeof *k);
        if (!k)
            return oom(x);
        for (size_t i = 0; i < q->n_order_by; i++) {
            if (eval(x, q->order_by[i].expr, &k[i]) != 0)
                return -1;
            if (k[i].k == V_STR && !(k[i].s = arena_strndup(&x->arena, k[i].s, k[i].len)))
                return oom(x);
        }
        if (run->nkeys == run->keys_cap) {
            size_t cap = run->keys_cap ? 2 * run->keys_cap : 64;
            struct val **all = arena_alloc(&x->arena, cap * sizeof *all);
            if (!all)
                return oom(x);
            if (run->nkeys)
                memcpy(all, run->order_keys, run->nkeys * sizeof *all);
            run->order_keys = all;
            run->keys_cap = cap;
        }
        run->order_keys[run->nkeys++] = k;
    }
    if (run->limit_now && run->want && --run->want == 0)
        return 1;
    return 0;
}

/* Sorting rows by their ORDER BY keys: qsort over row indexes. */
/* qsort takes no argument: the run being sorted, per thread (workers sort concurrently) */
static __thread const struct select_run *t_sort_run;

static int cmp_rows(const void *a, const void *b)
{
    const struct select_run *run = t_sort_run;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const struct val *ki = run->order_keys[i], *kj = run->order_keys[j];
    for (size_t k = 0; k < run->q->n_order_by; k++) {
        bool null;
        int c = vcmp(&ki[k], &kj[k], &null);
        if (null)
            c = (ki[k].k != V_NULL) - (kj[k].k != V_NULL); /* NULL first */
        if (c)
            return run->q->order_by[k].desc ? -c : c;
    }
    return (i > j) - (i < j);
}

static int sort_rows(struct ctx *x, struct select_run *run)
{
    struct result *r = &run->r;
    size_t *idx = arena_alloc(&x->arena, (r->nrows + 1) * sizeof *idx);
    const char **cells = arena_alloc(&x->arena, (r->nrows * r->ncols + 1) * sizeof *cells);
    size_t *lens = arena_alloc(&x->arena, (r->nrows * r->ncols + 1) * sizeof *lens);
    if (!idx || !cells || !lens)
        return oom(x);
    for (size_t i = 0; i < r->nrows; i++)
        idx[i] = i;
    t_sort_run = run;
    qsort(idx, r->nrows, sizeof *idx, cmp_rows);
    uint64_t off = run->q->limit.present ? run->q->limit.offset : 0;
    uint64_t cnt = run->q->limit.present ? run->q->limit.count : UINT64_MAX;
    size_t out = 0;
    for (size_t i = (size_t)(off < r->nrows ? off : r->nrows); i < r->nrows && out < cnt; i++, out++) {
        memcpy(cells + out * r->ncols, r->cells + idx[i] * r->ncols, r->ncols * sizeof *cells);
        memcpy(lens + out * r->ncols, r->lens + idx[i] * r->ncols, r->ncols * sizeof *lens);
    }
    r->cells = cells;
    r->lens = lens;
    r->nrows = out;
    return 0;
}

/* ORDER BY the integer primary key ascending is the order rows come in. */
static bool natural_order(struct ctx *x, const struct sql_select *q)
{
    return q->n_order_by == 0 ||
           (q->n_order_by == 1 && !q->order_by[0].desc && is_pk(x, q->order_by[0].expr));
}

static void select_from(struct ctx *x, const struct sql_select *q)
{
    struct cat_table t;
    if (open_table(x, &q->from, &t) != 0)
        return;
    x->table = &t;
    x->alias = q->from.alias;
    struct select_run run = {.q = q};
    run.count_only = q->n_items == 1 && is_count_star(q->items[0].expr);
    if (run.count_only) {
        result_col(x, &run.r, q->items[0].name, MYSQL_TYPE_LONGLONG);
    } else {
        for (size_t i = 0; i < q->n_items; i++) {
            const struct sql_expr *e = q->items[i].expr;
            if (!e) {
                for (size_t c = 0; c < t.ncols; c++)
                    result_col(x, &run.r, t.cols[c].name, column_type(&t.cols[c]));
                continue;
            }
            int c = e->kind == SQL_E_COLUMN ? column_index(&t, e->u.col.name) : -1;
            result_col(x, &run.r, q->items[i].name,
                       c >= 0 ? column_type(&t.cols[c]) : MYSQL_TYPE_VAR_STRING);
        }
    }
    run.limit_now = natural_order(x, q) && q->limit.present && !run.count_only;
    run.skip = q->limit.offset;
    run.want = q->limit.count;
    bool none = run.limit_now && q->limit.count == 0;
    if (!x->err_code && !none && each_row(x, q->where, select_row, &run) == 0) {
        if (run.count_only) {
            struct val v = vint(run.count);
            result_row(x, &run.r, &v);
        } else if (!natural_order(x, q)) {
            sort_rows(x, &run);
        }
    }
    if (!x->err_code)
        reply_result(x, &run.r);
    x->table = NULL;
    catalog_table_clear(&t);
}

/* ---- writing rows ------------------------------------------------------------------------------------ */

/* A batch of keys and values to write in one raw_batch_put (or keys to delete in one
 * raw_batch_delete), in the arena. */
struct batch {
    struct rpc_buf *keys, *vals;
    size_t n, cap;
    size_t bytes; /* keys and values so far */
};

static int batch_add(struct ctx *x, struct batch *b, const void *k, size_t klen, const void *v,
                     size_t vlen)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        struct rpc_buf *nk = arena_alloc(&x->arena, cap * sizeof *nk);
        struct rpc_buf *nv = arena_alloc(&x->arena, cap * sizeof *nv);
        if (!nk || !nv)
            return oom(x);
        if (b->n) {
            memcpy(nk, b->keys, b->n * sizeof *nk);
            memcpy(nv, b->vals, b->n * sizeof *nv);
        }
        b->keys = nk;
        b->vals = nv;
        b->cap = cap;
    }
    uint8_t *kc = arena_alloc(&x->arena, klen + 1), *vc = arena_alloc(&x->arena, vlen + 1);
    if (!kc || !vc)
        return oom(x);
    memcpy(kc, k, klen);
    if (vlen)
        memcpy(vc, v, vlen);
    b->keys[b->n] = (struct rpc_buf){kc, klen};
    b->vals[b->n++] = (struct rpc_buf){vc, vlen};
    b->bytes += klen + vlen;
    return 0;
}

/* The index entry of row vals under index ix: key (and value) into kb (cleared first). */
static void index_key(const struct cat_table *t, const struct cat_index *ix,
                      const struct tc_value *vals, int64_t handle, struct tc_buf *kb,
                      bool *has_null)
{
    kb->len = 0;
    tc_index_prefix(kb, t->id, ix->id);
    *has_null = false;
    for (size_t k = 0; k < ix->ncols; k++) {
        const struct tc_value *v = &vals[ix->cols[k]];
        if (v->kind == 0) {
            tc_datum_null(kb);
            *has_null = true;
        } else if (v->kind == 1) {
            tc_datum_int(kb, v->i);
        } else {
            tc_datum_bytes(kb, v->s, v->len);
        }
    }
    if (!ix->unique || *has_null) /* NULLs never collide, as in MySQL */
        tc_datum_int(kb, handle);
}

static const char *index_display_name(const struct cat_table *t, const struct cat_index *ix,
                                      char *buf, size_t len)
{
    snprintf(buf, len, "%s.%s", t->name, ix->id == 0 ? "PRIMARY" : ix->name);
    return buf;
}

/* The value text of a row's index columns for a duplicate-entry message: "5" or "a-b". */
static void dup_text(const struct cat_index *ix, const struct tc_value *vals, char *out,
                     size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t k = 0; k < ix->ncols && at < len; k++) {
        const struct tc_value *v = &vals[ix->cols[k]];
        int n = v->kind == 1 ? snprintf(out + at, len - at, "%s%" PRId64, k ? "-" : "", v->i)
                : v->kind == 2 ? snprintf(out + at, len - at, "%s%.*s", k ? "-" : "",
                                          (int)(v->len > 64 ? 64 : v->len), (const char *)v->s)
                               : snprintf(out + at, len - at, "%sNULL", k ? "-" : "");
        at += n > 0 ? (size_t)n : 0;
    }
}

/* Queues the row and its index entries; checks that no key it takes exists already. */
static int write_row(struct ctx *x, struct batch *b, const struct tc_value *vals, int64_t handle,
                     bool check_row)
{
    const struct cat_table *t = x->table;
    char err[300], name[160], text[256];
    uint8_t key[TC_ROW_KEY_LEN], *old;
    size_t oldlen;
    tc_row_key(key, t->id, handle);
    if (check_row) {
        int rc = kvb_get(x->kv, key, sizeof key, &old, &oldlen, err, sizeof err);
        if (rc < 0)
            return fail_kv(x, err);
        if (rc == 0) {
            free(old);
            snprintf(text, sizeof text, "%" PRId64, handle);
            return fail(x, MYSQL_ER_DUP_ENTRY, "Duplicate entry '%s' for key '%s.PRIMARY'",
                        text, t->name);
        }
        for (size_t i = 0; i < b->n; i++)
            if (b->keys[i].len == sizeof key && memcmp(b->keys[i].data, key, sizeof key) == 0) {
                snprintf(text, sizeof text, "%" PRId64, handle);
                return fail(x, MYSQL_ER_DUP_ENTRY, "Duplicate entry '%s' for key '%s.PRIMARY'",
                            text, t->name);
            }
    }
    struct tc_buf rb = {0}, kb = {0};
    tc_row_encode(&rb, vals, t->ncols);
    int rc = rb.oom ? oom(x) : batch_add(x, b, key, sizeof key, rb.p, rb.len);
    uint8_t hv[8];
    tc_encode_int(hv, handle);
    for (size_t i = 0; rc == 0 && i < t->nindexes; i++) {
        const struct cat_index *ix = &t->indexes[i];
        bool has_null;
        index_key(t, ix, vals, handle, &kb, &has_null);
        if (kb.oom) {
            rc = oom(x);
            break;
        }
        if (ix->unique && !has_null) {
            int g = kvb_get(x->kv, kb.p, kb.len, &old, &oldlen, err, sizeof err);
            bool taken = g == 0;
            for (size_t k = 0; !taken && k < b->n; k++)
                taken = b->keys[k].len == kb.len && memcmp(b->keys[k].data, kb.p, kb.len) == 0;
            if (g == 0)
                free(old);
            if (g < 0) {
                rc = fail_kv(x, err);
                break;
            }
            if (taken) {
                dup_text(ix, vals, text, sizeof text);
                rc = fail(x, MYSQL_ER_DUP_ENTRY, "Duplicate entry '%s' for key '%s'", text,
                          index_display_name(t, ix, name, sizeof name));
                break;
            }
        }
        rc = batch_add(x, b, kb.p, kb.len, hv, sizeof hv);
    }
    tc_buf_free(&rb);
    tc_buf_free(&kb);
    return rc;
}

/* Converts v for column c of row rownum into out (strings copied into the arena). */
static int to_column(struct ctx *x, const struct cat_column *c, const struct val *v,
                     size_t rownum, struct tc_value *out)
{
    if (v->k == V_NULL) {
        if (c->not_null)
            return fail(x, MYSQL_ER_BAD_NULL_ERROR, "Column '%s' cannot be null", c->name);
        *out = (struct tc_value){.kind = 0};
        return 0;
    }
    if (c->type == CAT_INT || c->type == CAT_BIGINT) {
        bool clean = true;
        int64_t i = v->k == V_INT ? v->i : str_to_int(v->s, v->len, &clean);
        if (!clean)
            return fail(x, MYSQL_ER_TRUNCATED_WRONG_VALUE_FOR_FIELD,
                        "Incorrect int value: '%.*s' for column '%s' at row %zu",
                        (int)(v->len > 64 ? 64 : v->len), v->s, c->name, rownum);
        if (c->type == CAT_INT && (i < INT32_MIN || i > INT32_MAX))
            return fail(x, MYSQL_ER_WARN_DATA_OUT_OF_RANGE,
                        "Out of range value for column '%s' at row %zu", c->name, rownum);
        *out = (struct tc_value){.kind = 1, .i = i};
        return 0;
    }
    size_t len;
    const char *s = vtext(x, v, &len);
    if (!s)
        return oom(x);
    if (c->len && len > c->len) /* bytes; ASCII data is what the tools send */
        return fail(x, MYSQL_ER_DATA_TOO_LONG, "Data too long for column '%s' at row %zu",
                    c->name, rownum);
    *out = (struct tc_value){.kind = 2, .s = (const uint8_t *)s, .len = len};
    return 0;
}

/* A column's DEFAULT as a value (none: NULL, or 1364 for NOT NULL without one). */
static int default_of(struct ctx *x, const struct cat_column *c, struct val *out)
{
    if (c->has_default && c->def) {
        *out = vstr(c->def, strlen(c->def));
        return 0;
    }
    if (c->not_null && !c->has_default && !c->auto_inc)
        return fail(x, MYSQL_ER_NO_DEFAULT_FOR_FIELD, "Field '%s' doesn't have a default value",
                    c->name);
    *out = vnull();
    return 0;
}

static int auto_col(const struct cat_table *t)
{
    for (size_t i = 0; i < t->ncols; i++)
        if (t->cols[i].auto_inc)
            return (int)i;
    return -1;
}

/* Fills vals (one row of t) from an INSERT row: given columns, defaults for the rest. An
 * auto-increment column left NULL or 0 stays kind 0 with i = -1, to be numbered later. */
static int insert_values(struct ctx *x, const struct sql_insert *q, const int *map,
                         const struct sql_row *row, size_t rownum, struct tc_value *vals)
{
    const struct cat_table *t = x->table;
    int ai = auto_col(t);
    size_t given = q->has_cols ? q->n_cols : t->ncols;
    if (row->n_vals != given && !(row->n_vals == 0 && !q->has_cols))
        return fail(x, MYSQL_ER_WRONG_VALUE_COUNT_ON_ROW,
                    "Column count doesn't match value count at row %zu", rownum);
    bool set[CAT_MAX_COLUMNS] = {false};
    for (size_t i = 0; i < row->n_vals; i++) {
        int c = map[i];
        struct val v;
        if (row->vals[i]->kind == SQL_E_DEFAULT ? default_of(x, &t->cols[c], &v) != 0
                                                : eval(x, row->vals[i], &v) != 0)
            return -1;
        set[c] = true;
        if (c == ai && (v.k == V_NULL || vnum(&v) == 0)) {
            vals[c] = (struct tc_value){.kind = 0, .i = -1};
            continue;
        }
        if (to_column(x, &t->cols[c], &v, rownum, &vals[c]) != 0)
            return -1;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        if (set[c])
            continue;
        struct val v;
        if ((int)c == ai) {
            vals[c] = (struct tc_value){.kind = 0, .i = -1};
            continue;
        }
        if (default_of(x, &t->cols[c], &v) != 0 || to_column(x, &t->cols[c], &v, rownum, &vals[c]) != 0)
            return -1;
    }
    return 0;
}

static int column_map(struct ctx *x, const struct sql_insert *q, int *map)
{
    const struct cat_table *t = x->table;
    size_t n = q->has_cols ? q->n_cols : t->ncols;
    for (size_t i = 0; i < n; i++) {
        map[i] = q->has_cols ? column_index(t, q->cols[i]) : (int)i;
        if (map[i] < 0)
            return fail(x, MYSQL_ER_BAD_FIELD_ERROR, "Unknown column '%s' in 'field list'",
                        q->cols[i]);
        for (size_t k = 0; k < i; k++)
            if (map[k] == map[i])
                return fail(x, MYSQL_ER_FIELD_SPECIFIED_TWICE, "Column '%s' specified twice",
                            t->cols[map[i]].name);
    }
    return 0;
}

static void do_insert(struct ctx *x, const struct sql_insert *q)
{
    struct cat_table t;
    if (open_table(x, &q->table, &t) != 0)
        return;
    x->table = &t;
    int map[CAT_MAX_COLUMNS];
    struct tc_value *rows = NULL;
    struct batch b = {0};
    char err[300];
    size_t nrows = q->n_rows;
    int ai = auto_col(&t);
    if ((q->has_cols ? q->n_cols : t.ncols) > CAT_MAX_COLUMNS || column_map(x, q, map) != 0)
        goto out;
    if (!(rows = arena_alloc(&x->arena, nrows * t.ncols * sizeof *rows))) {
        oom(x);
        goto out;
    }
    int64_t need = 0, explicit_max = 0;
    for (size_t r = 0; r < nrows; r++) {
        struct tc_value *v = rows + r * t.ncols;
        if (insert_values(x, q, map, &q->rows[r], r + 1, v) != 0)
            goto out;
        if (ai >= 0 && v[ai].kind == 0 && v[ai].i == -1)
            need++;
        else if (ai >= 0 && v[ai].kind == 1 && v[ai].i > explicit_max)
            explicit_max = v[ai].i;
    }
    /* numbers for the auto-increment column (and hidden handles when the key is no integer) */
    int64_t first = 0, next;
    int64_t hidden = t.pk < 0 ? (int64_t)nrows : 0;
    if ((need || hidden || explicit_max) &&
        catalog_auto_ids(x->cat, t.id, need + hidden, explicit_max, &first, err, sizeof err) != 0) {
        fail_kv(x, err);
        goto out;
    }
    next = first;
    for (size_t r = 0; r < nrows; r++) {
        struct tc_value *v = rows + r * t.ncols;
        bool generated = ai >= 0 && v[ai].kind == 0 && v[ai].i == -1;
        if (generated)
            v[ai] = (struct tc_value){.kind = 1, .i = next++};
        for (size_t c = 0; c < t.ncols; c++)
            if (v[c].kind == 0 && t.cols[c].not_null) {
                fail(x, MYSQL_ER_BAD_NULL_ERROR, "Column '%s' cannot be null", t.cols[c].name);
                goto out;
            }
        int64_t handle = t.pk >= 0 ? v[t.pk].i : next++;
        bool check = t.pk >= 0 && !(generated && ai == t.pk);
        if (write_row(x, &b, v, handle, check) != 0)
            goto out;
    }
    if (b.n && kvb_batch_put(x->kv, b.keys, b.vals, b.n, err, sizeof err) != 0) {
        fail_kv(x, err);
        goto out;
    }
    if (need)
        x->s->last_insert_id = (uint64_t)first;
    reply_ok(x, nrows, need ? (uint64_t)first : 0, NULL);
out:
    x->table = NULL;
    catalog_table_clear(&t);
}

/* Rows matched by UPDATE / DELETE, copied out of the scan (decoded per use). */
struct matched {
    struct tc_value *vals; /* nrows * ncols, strings in the arena */
    int64_t *handles;
    size_t n, cap;
    uint64_t limit; /* 0: none */
};

static int match_row(struct ctx *x, const uint8_t *raw, size_t len, void *arg)
{
    (void)raw;
    (void)len;
    struct matched *m = arg;
    size_t nc = x->table->ncols;
    if (m->n == m->cap) {
        size_t cap = m->cap ? 2 * m->cap : 64;
        struct tc_value *v = arena_alloc(&x->arena, cap * nc * sizeof *v);
        int64_t *h = arena_alloc(&x->arena, cap * sizeof *h);
        if (!v || !h)
            return oom(x);
        if (m->n) {
            memcpy(v, m->vals, m->n * nc * sizeof *v);
            memcpy(h, m->handles, m->n * sizeof *h);
        }
        m->vals = v;
        m->handles = h;
        m->cap = cap;
    }
    struct tc_value *v = m->vals + m->n * nc;
    for (size_t c = 0; c < nc; c++) {
        v[c] = x->row[c];
        if (v[c].kind == 2 && !(v[c].s = (const uint8_t *)arena_strndup(&x->arena, (const char *)v[c].s, v[c].len)))
            return oom(x);
    }
    m->handles[m->n++] = x->handle;
    return m->limit && m->n >= m->limit ? 1 : 0;
}

/* Adds the row's key (row_too) and its index entries to b, for one atomic raw_batch_delete:
 * a row never outlives or loses its index entries half-way. */
static int delete_keys(struct ctx *x, struct batch *b, const struct tc_value *vals,
                       int64_t handle, bool row_too)
{
    const struct cat_table *t = x->table;
    struct tc_buf kb = {0};
    int rc = 0;
    if (row_too) {
        uint8_t key[TC_ROW_KEY_LEN];
        tc_row_key(key, t->id, handle);
        rc = batch_add(x, b, key, sizeof key, NULL, 0);
    }
    for (size_t i = 0; rc == 0 && i < t->nindexes; i++) {
        bool has_null;
        index_key(t, &t->indexes[i], vals, handle, &kb, &has_null);
        rc = kb.oom ? oom(x) : batch_add(x, b, kb.p, kb.len, NULL, 0);
    }
    tc_buf_free(&kb);
    return rc;
}

static int flush_deletes(struct ctx *x, struct batch *b)
{
    char err[300];
    if (b->n && kvb_batch_delete(x->kv, b->keys, b->n, err, sizeof err) != 0)
        return fail_kv(x, err);
    b->n = b->bytes = 0;
    return 0;
}

/* A DELETE of many rows goes out in batches well under the RPC body limit. */
#define DELETE_BATCH_KEYS 1000
#define DELETE_BATCH_BYTES (1u << 20)

static void do_delete(struct ctx *x, const struct sql_delete *q)
{
    struct cat_table t;
    if (open_table(x, &q->table, &t) != 0)
        return;
    x->table = &t;
    x->alias = q->table.alias;
    struct matched m = {.limit = q->limit.present ? q->limit.count : 0};
    if (q->n_order_by)
        fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support 'DELETE "
             "... ORDER BY'");
    else if (!(q->limit.present && q->limit.count == 0))
        each_row(x, q->where, match_row, &m);
    struct batch b = {0};
    for (size_t i = 0; !x->err_code && i < m.n; i++)
        if (delete_keys(x, &b, m.vals + i * t.ncols, m.handles[i], true) == 0 &&
            (b.n >= DELETE_BATCH_KEYS || b.bytes >= DELETE_BATCH_BYTES))
            flush_deletes(x, &b);
    if (!x->err_code && flush_deletes(x, &b) == 0)
        reply_ok(x, m.n, 0, NULL);
    x->table = NULL;
    catalog_table_clear(&t);
}

static void do_update(struct ctx *x, const struct sql_update *q)
{
    struct cat_table t;
    if (open_table(x, &q->table, &t) != 0)
        return;
    x->table = &t;
    x->alias = q->table.alias;
    struct matched m = {.limit = q->limit.present ? q->limit.count : 0};
    int cols[CAT_MAX_COLUMNS];
    char err[300], info[96];
    size_t changed = 0;
    for (size_t i = 0; i < q->n_sets && !x->err_code; i++)
        if ((cols[i] = column_index(&t, q->sets[i].col)) < 0)
            fail(x, MYSQL_ER_BAD_FIELD_ERROR, "Unknown column '%s' in 'field list'", q->sets[i].col);
    if (!x->err_code && q->n_order_by)
        fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support 'UPDATE "
             "... ORDER BY'");
    if (!x->err_code && !(q->limit.present && q->limit.count == 0))
        each_row(x, q->where, match_row, &m);
    for (size_t r = 0; !x->err_code && r < m.n; r++) {
        struct tc_value *old = m.vals + r * t.ncols, nv[CAT_MAX_COLUMNS];
        memcpy(nv, old, t.ncols * sizeof *nv);
        x->row = old; /* SET c = c + 1 reads the old row */
        for (size_t i = 0; i < q->n_sets && !x->err_code; i++) {
            struct val v;
            if (q->sets[i].value->kind == SQL_E_DEFAULT ? default_of(x, &t.cols[cols[i]], &v) == 0
                                                        : eval(x, q->sets[i].value, &v) == 0)
                to_column(x, &t.cols[cols[i]], &v, r + 1, &nv[cols[i]]);
        }
        x->row = NULL;
        if (x->err_code)
            break;
        struct tc_buf a = {0}, bb = {0};
        tc_row_encode(&a, old, t.ncols);
        tc_row_encode(&bb, nv, t.ncols);
        bool same = a.len == bb.len && memcmp(a.p, bb.p, a.len) == 0;
        tc_buf_free(&a);
        tc_buf_free(&bb);
        if (same)
            continue;
        int64_t handle = t.pk >= 0 ? nv[t.pk].i : m.handles[r];
        bool moved = handle != m.handles[r];
        struct batch d = {0}, b = {0};
        /* old index entries go first, so the new row's own unique values do not collide */
        if (delete_keys(x, &d, old, m.handles[r], moved) != 0 || flush_deletes(x, &d) != 0 ||
            write_row(x, &b, nv, handle, moved) != 0 ||
            kvb_batch_put(x->kv, b.keys, b.vals, b.n, err, sizeof err) != 0) {
            if (!x->err_code)
                fail_kv(x, err);
            break;
        }
        changed++;
    }
    if (!x->err_code) {
        snprintf(info, sizeof info, "Rows matched: %zu  Changed: %zu  Warnings: 0", m.n, changed);
        reply_ok(x, changed, 0, info);
    }
    x->table = NULL;
    catalog_table_clear(&t);
}

/* ---- DDL ---------------------------------------------------------------------------------------------- */

static int literal_text(struct ctx *x, const struct sql_expr *e, char **out)
{
    *out = NULL;
    if (!e || e->kind == SQL_E_NULL)
        return 0;
    struct val v;
    size_t len;
    if (eval(x, e, &v) != 0)
        return -1;
    const char *t = vtext(x, &v, &len);
    if (t && !(*out = strndup(t, len)))
        return oom(x);
    return 0;
}

static int table_def(struct ctx *x, const struct sql_create_table *q, const char *db,
                     struct cat_table *t)
{
    static const enum cat_type TYPES[] = {[SQL_TYPE_INT] = CAT_INT, [SQL_TYPE_BIGINT] = CAT_BIGINT,
                                          [SQL_TYPE_CHAR] = CAT_CHAR, [SQL_TYPE_VARCHAR] = CAT_VARCHAR,
                                          [SQL_TYPE_TEXT] = CAT_TEXT};
    memset(t, 0, sizeof *t);
    snprintf(t->db, sizeof t->db, "%s", db);
    snprintf(t->name, sizeof t->name, "%s", q->table.name);
    t->pk = -1;
    if (q->n_cols > CAT_MAX_COLUMNS || q->n_indexes + 1 > CAT_MAX_INDEXES)
        return fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support more "
                    "than %d columns or %d indexes", CAT_MAX_COLUMNS, CAT_MAX_INDEXES - 1);
    for (size_t i = 0; i < q->n_cols; i++, t->ncols++) {
        const struct sql_column_def *d = &q->cols[i];
        struct cat_column *c = &t->cols[i];
        snprintf(c->name, sizeof c->name, "%s", d->name);
        c->type = TYPES[d->type];
        c->len = (c->type == CAT_CHAR || c->type == CAT_VARCHAR) && d->length > 0 ? (unsigned)d->length : 0;
        c->not_null = d->not_null;
        c->auto_inc = d->auto_increment;
        c->has_default = d->default_value != NULL;
        if (literal_text(x, d->default_value, &c->def) != 0)
            return -1;
    }
    int pkcols[CAT_MAX_COLUMNS];
    for (size_t i = 0; i < q->n_pk_cols; i++)
        pkcols[i] = column_index(t, q->pk_cols[i]);
    if (q->n_pk_cols == 1 && (t->cols[pkcols[0]].type == CAT_INT || t->cols[pkcols[0]].type == CAT_BIGINT)) {
        t->pk = pkcols[0];
    } else if (q->n_pk_cols) { /* clustered only for one integer column: else a unique index */
        struct cat_index *ix = &t->indexes[t->nindexes++];
        *ix = (struct cat_index){.id = 0, .name = "PRIMARY", .ncols = q->n_pk_cols, .unique = true};
        memcpy(ix->cols, pkcols, q->n_pk_cols * sizeof *pkcols);
    }
    for (size_t i = 0; i < q->n_indexes; i++) {
        const struct sql_index_def *d = &q->indexes[i];
        struct cat_index *ix = &t->indexes[t->nindexes++];
        *ix = (struct cat_index){.id = (int64_t)i + 1, .ncols = d->n_cols, .unique = d->unique};
        snprintf(ix->name, sizeof ix->name, "%s", d->name ? d->name : d->cols[0]);
        for (size_t k = 0; k < d->n_cols; k++)
            if ((ix->cols[k] = column_index(t, d->cols[k])) < 0)
                return fail(x, 1072, "Key column '%s' doesn't exist in table", d->cols[k]);
    }
    for (size_t i = 0; i < q->n_cols && t->nindexes < CAT_MAX_INDEXES; i++) {
        if (!q->cols[i].unique || q->cols[i].primary_key)
            continue;
        struct cat_index *ix = &t->indexes[t->nindexes++];
        *ix = (struct cat_index){.id = (int64_t)(q->n_indexes + i + 1), .ncols = 1, .unique = true};
        snprintf(ix->name, sizeof ix->name, "%s", q->cols[i].name);
        ix->cols[0] = (int)i;
    }
    return 0;
}

static void create_table(struct ctx *x, const struct sql_create_table *q)
{
    const char *db = db_of(x, q->table.db);
    struct cat_table t;
    char err[300];
    if (!db || need_db(x, db) != 0)
        return;
    if (table_def(x, q, db, &t) == 0) {
        int rc = catalog_create_table(x->cat, &t, q->if_not_exists, err, sizeof err);
        if (rc < 0)
            fail_kv(x, err);
        else if (rc == 1)
            fail(x, MYSQL_ER_TABLE_EXISTS_ERROR, "Table '%s.%s' already exists", db, q->table.name);
        else
            reply_ok(x, 0, 0, NULL);
    }
    catalog_table_clear(&t);
}

static int index_row(struct ctx *x, const uint8_t *raw, size_t len, void *arg)
{
    (void)raw;
    (void)len;
    struct batch *b = arg;
    const struct cat_table *t = x->table;
    const struct cat_index *ix = &t->indexes[t->nindexes - 1];
    struct tc_buf kb = {0};
    bool has_null;
    uint8_t hv[8];
    tc_encode_int(hv, x->handle);
    index_key(t, ix, x->row, x->handle, &kb, &has_null);
    int rc = kb.oom ? oom(x) : batch_add(x, b, kb.p, kb.len, hv, sizeof hv);
    tc_buf_free(&kb);
    return rc;
}

static void create_index(struct ctx *x, const struct sql_create_index *q)
{
    struct cat_table t;
    char err[300];
    int cols[CAT_MAX_COLUMNS];
    if (open_table(x, &q->table, &t) != 0)
        return;
    for (size_t i = 0; i < q->n_cols && i < CAT_MAX_COLUMNS && !x->err_code; i++)
        if ((cols[i] = column_index(&t, q->cols[i])) < 0)
            fail(x, 1072, "Key column '%s' doesn't exist in table", q->cols[i]);
    int rc = x->err_code ? -1
             : catalog_add_index(x->cat, t.db, t.name, q->name, cols, q->n_cols, q->unique, err,
                                 sizeof err);
    if (rc != 0 && !x->err_code)
        fail(x, strncmp(err, "Duplicate key name", 18) == 0 ? MYSQL_ER_DUP_KEYNAME
                                                           : MYSQL_ER_UNKNOWN_ERROR, "%s", err);
    catalog_table_clear(&t);
    if (x->err_code)
        return;
    /* entries for the rows already there (the definition is written first: new rows get theirs) */
    if (open_table(x, &q->table, &t) != 0)
        return;
    x->table = &t;
    struct batch b = {0};
    if (each_row(x, NULL, index_row, &b) == 0 && b.n &&
        kvb_batch_put(x->kv, b.keys, b.vals, b.n, err, sizeof err) != 0)
        fail_kv(x, err);
    if (!x->err_code)
        reply_ok(x, 0, 0, NULL);
    x->table = NULL;
    catalog_table_clear(&t);
}

static void drop_tables(struct ctx *x, const struct sql_drop_table *q)
{
    char err[300];
    for (size_t i = 0; i < q->n_tables; i++) {
        const char *db = db_of(x, q->tables[i].db);
        if (!db)
            return;
        int rc = catalog_drop_table(x->cat, db, q->tables[i].name, err, sizeof err);
        if (rc < 0) {
            fail_kv(x, err);
            return;
        }
        if (rc == 1 && !q->if_exists) {
            fail(x, MYSQL_ER_BAD_TABLE_ERROR, "Unknown table '%s.%s'", db, q->tables[i].name);
            return;
        }
    }
    reply_ok(x, 0, 0, NULL);
}

static void create_database(struct ctx *x, const struct sql_database *q)
{
    char err[300];
    int rc = catalog_create_db(x->cat, q->name, q->if_not_exists, err, sizeof err);
    if (rc < 0)
        fail_kv(x, err);
    else if (rc == 1)
        fail(x, MYSQL_ER_DB_CREATE_EXISTS, "Can't create database '%s'; database exists", q->name);
    else
        reply_ok(x, 1, 0, NULL);
}

static void drop_database(struct ctx *x, const struct sql_database *q)
{
    char err[300];
    int rc = catalog_drop_db(x->cat, q->name, q->if_exists, err, sizeof err);
    if (rc < 0) {
        fail_kv(x, err);
        return;
    }
    if (rc == 1) {
        fail(x, MYSQL_ER_DB_DROP_EXISTS, "Can't drop database '%s'; database doesn't exist", q->name);
        return;
    }
    if (strcasecmp(x->s->db, q->name) == 0)
        x->s->db[0] = '\0';
    reply_ok(x, 0, 0, NULL);
}

static const char *type_text(const struct cat_column *c, char *buf, size_t len)
{
    switch (c->type) {
    case CAT_INT: return "int";
    case CAT_BIGINT: return "bigint";
    case CAT_TEXT: return "text";
    default:
        snprintf(buf, len, "%s(%u)", c->type == CAT_CHAR ? "char" : "varchar", c->len);
        return buf;
    }
}

static void show_columns(struct ctx *x, const struct sql_show *q)
{
    struct cat_table t;
    if (open_table(x, &q->table, &t) != 0)
        return;
    struct result r = {0};
    const char *heads[] = {"Field", "Type", "Null", "Key", "Default", "Extra"};
    for (size_t i = 0; i < 6; i++)
        result_col(x, &r, heads[i], MYSQL_TYPE_VAR_STRING);
    for (size_t c = 0; c < t.ncols && !x->err_code; c++) {
        char tb[32];
        const char *type = type_text(&t.cols[c], tb, sizeof tb);
        bool in_index = false;
        for (size_t i = 0; i < t.nindexes; i++)
            in_index |= t.indexes[i].cols[0] == (int)c;
        const char *key = (int)c == t.pk ? "PRI" : in_index ? "MUL" : "";
        struct val v[6] = {vstr(t.cols[c].name, strlen(t.cols[c].name)), vstr(type, strlen(type)),
                           vstr(t.cols[c].not_null ? "NO" : "YES", t.cols[c].not_null ? 2 : 3),
                           vstr(key, strlen(key)),
                           t.cols[c].def ? vstr(t.cols[c].def, strlen(t.cols[c].def)) : vnull(),
                           vstr(t.cols[c].auto_inc ? "auto_increment" : "",
                                t.cols[c].auto_inc ? 14 : 0)};
        result_row(x, &r, v);
    }
    if (!x->err_code)
        reply_result(x, &r);
    catalog_table_clear(&t);
}

static void show_create_table(struct ctx *x, const struct sql_show *q)
{
    struct cat_table t;
    if (open_table(x, &q->table, &t) != 0)
        return;
    struct tc_buf b = {0};
    char line[512], tb[32];
    snprintf(line, sizeof line, "CREATE TABLE `%s` (\n", t.name);
    tc_put(&b, line, strlen(line));
    for (size_t c = 0; c < t.ncols; c++) {
        const struct cat_column *k = &t.cols[c];
        snprintf(line, sizeof line, "  `%s` %s%s%s%s%s%s,\n", k->name, type_text(k, tb, sizeof tb),
                 k->not_null ? " NOT NULL" : "", k->def ? " DEFAULT '" : "", k->def ? k->def : "",
                 k->def ? "'" : "", k->auto_inc ? " AUTO_INCREMENT" : "");
        tc_put(&b, line, strlen(line));
    }
    if (t.pk >= 0) {
        snprintf(line, sizeof line, "  PRIMARY KEY (`%s`),\n", t.cols[t.pk].name);
        tc_put(&b, line, strlen(line));
    }
    for (size_t i = 0; i < t.nindexes; i++) {
        const struct cat_index *ix = &t.indexes[i];
        int n = ix->id == 0 ? snprintf(line, sizeof line, "  PRIMARY KEY (")
                            : snprintf(line, sizeof line, "  %sKEY `%s` (", ix->unique ? "UNIQUE " : "", ix->name);
        for (size_t k = 0; k < ix->ncols && n > 0 && (size_t)n < sizeof line; k++)
            n += snprintf(line + n, sizeof line - (size_t)n, "%s`%s`", k ? "," : "", t.cols[ix->cols[k]].name);
        tc_put(&b, line, strlen(line));
        tc_put(&b, "),\n", 3);
    }
    if (b.len >= 2 && b.p[b.len - 2] == ',') { /* no comma after the last definition */
        b.p[b.len - 2] = '\n';
        b.len--;
    }
    const char *tail = ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin";
    tc_put(&b, tail, strlen(tail));
    struct result r = {0};
    result_col(x, &r, "Table", MYSQL_TYPE_VAR_STRING);
    result_col(x, &r, "Create Table", MYSQL_TYPE_VAR_STRING);
    struct val v[2] = {vstr(t.name, strlen(t.name)), b.oom ? vnull() : vstr((const char *)b.p, b.len)};
    if (result_row(x, &r, v) == 0)
        reply_result(x, &r);
    tc_buf_free(&b);
    catalog_table_clear(&t);
}

/* ---- users ------------------------------------------------------------------------------------------------ */

static bool may_manage_users(struct ctx *x, const char *priv)
{
    if (strcmp(x->s->user, "root") == 0)
        return true;
    x->err_state = "42000";
    fail(x, MYSQL_ER_SPECIFIC_ACCESS_DENIED_ERROR,
         "Access denied; you need (at least one of) the %s privilege(s) for this operation", priv);
    return false;
}

static void set_require(const struct sql_user *q, struct cat_user *u)
{
    if (q->require == SQL_REQUIRE_UNSET)
        return;
    u->require = q->require == SQL_REQUIRE_SSL    ? CAT_REQ_SSL
                 : q->require == SQL_REQUIRE_X509 ? CAT_REQ_X509
                 : q->require == SQL_REQUIRE_SPECIFIED ? CAT_REQ_SPECIFIED
                                                       : CAT_REQ_NONE;
    snprintf(u->subject, sizeof u->subject, "%s", q->subject ? q->subject : "");
    snprintf(u->issuer, sizeof u->issuer, "%s", q->issuer ? q->issuer : "");
}

static int set_password(struct ctx *x, const struct sql_user_spec *spec, struct cat_user *u)
{
    if (spec->auth_plugin && strcmp(spec->auth_plugin, "mysql_native_password") != 0)
        return fail(x, MYSQL_ER_NOT_SUPPORTED_YET, "This version of TiDB doesn't yet support "
                    "'authentication plugin %s'", spec->auth_plugin);
    if (spec->auth_string) {
        snprintf(u->auth, sizeof u->auth, "%s", spec->auth_string);
    } else if (spec->password) {
        char hash[MYSQL_NATIVE_HASH_LEN + 1];
        if (mysql_native_password_hash(spec->password, strlen(spec->password), hash) != 0)
            return oom(x);
        snprintf(u->auth, sizeof u->auth, "%s", hash);
    }
    return 0;
}

/* MySQL's 1396 names every account the statement failed for. */
static void user_stmt(struct ctx *x, const struct sql_user *q, enum sql_stmt_kind kind)
{
    const char *op = kind == SQL_CREATE_USER ? "CREATE USER" : kind == SQL_ALTER_USER ? "ALTER USER"
                                                                                      : "DROP USER";
    if (!may_manage_users(x, "CREATE USER"))
        return;
    char failed[512] = "", err[300];
    size_t flen = 0;
    for (size_t i = 0; i < q->n_users && !x->err_code; i++) {
        const struct sql_user_spec *spec = &q->users[i];
        struct cat_user u;
        int rc = catalog_get_user(x->cat, spec->user, spec->host, &u, err, sizeof err);
        if (rc < 0) {
            fail_kv(x, err);
            return;
        }
        bool exists = rc == 0;
        if ((kind == SQL_CREATE_USER && exists) || (kind != SQL_CREATE_USER && !exists)) {
            if (!(kind == SQL_CREATE_USER ? q->if_not_exists : q->if_exists)) {
                int n = snprintf(failed + flen, sizeof failed - flen, "%s'%s'@'%s'", flen ? "," : "",
                                 spec->user, spec->host);
                flen += n > 0 && (size_t)n < sizeof failed - flen ? (size_t)n : 0;
            }
            continue;
        }
        if (kind == SQL_DROP_USER) {
            if (catalog_drop_user(x->cat, spec->user, spec->host, err, sizeof err) < 0)
                fail_kv(x, err);
            continue;
        }
        if (kind == SQL_CREATE_USER) {
            memset(&u, 0, sizeof u);
            snprintf(u.user, sizeof u.user, "%s", spec->user);
            snprintf(u.host, sizeof u.host, "%s", spec->host);
        }
        set_require(q, &u);
        if (set_password(x, spec, &u) == 0 && catalog_put_user(x->cat, &u, err, sizeof err) != 0)
            fail_kv(x, err);
    }
    if (!x->err_code && failed[0])
        fail(x, MYSQL_ER_CANNOT_USER, "Operation %s failed for %s", op, failed);
    if (!x->err_code)
        reply_ok(x, 0, 0, NULL);
}

/* ---- dispatch ------------------------------------------------------------------------------------------------ */

static const char *count_type(enum sql_stmt_kind k)
{
    switch (k) {
    case SQL_SELECT: return "Select";
    case SQL_INSERT: return "Insert";
    case SQL_UPDATE: return "Update";
    case SQL_DELETE: return "Delete";
    case SQL_SET: return "Set";
    case SQL_USE: return "Use";
    case SQL_BEGIN: case SQL_COMMIT: case SQL_ROLLBACK: return "Commit";
    case SQL_SHOW_DATABASES: case SQL_SHOW_TABLES: case SQL_SHOW_STATUS: case SQL_SHOW_VARIABLES:
    case SQL_SHOW_CREATE_TABLE: case SQL_SHOW_COLUMNS: case SQL_SHOW_WARNINGS: return "Show";
    case SQL_CREATE_USER: case SQL_ALTER_USER: case SQL_DROP_USER: return "Account";
    default: return "DDL";
    }
}

static void run(struct ctx *x, const struct sql_stmt *st)
{
    switch (st->kind) {
    case SQL_SELECT:
        if (st->u.select.has_from)
            select_from(x, &st->u.select);
        else
            select_no_table(x, &st->u.select);
        break;
    case SQL_INSERT: do_insert(x, &st->u.insert); break;
    case SQL_UPDATE: do_update(x, &st->u.update); break;
    case SQL_DELETE: do_delete(x, &st->u.del); break;
    case SQL_CREATE_TABLE: create_table(x, &st->u.create_table); break;
    case SQL_CREATE_INDEX: create_index(x, &st->u.create_index); break;
    case SQL_DROP_TABLE: drop_tables(x, &st->u.drop_table); break;
    case SQL_CREATE_DATABASE: create_database(x, &st->u.database); break;
    case SQL_DROP_DATABASE: drop_database(x, &st->u.database); break;
    case SQL_USE: do_use(x, st->u.database.name); break;
    case SQL_CREATE_USER: case SQL_ALTER_USER: case SQL_DROP_USER:
        user_stmt(x, &st->u.user, st->kind);
        break;
    case SQL_SHOW_DATABASES: show_databases(x, &st->u.show); break;
    case SQL_SHOW_TABLES: show_tables(x, &st->u.show); break;
    case SQL_SHOW_STATUS: show_status(x, &st->u.show); break;
    case SQL_SHOW_VARIABLES: show_variables(x, &st->u.show); break;
    case SQL_SHOW_COLUMNS: show_columns(x, &st->u.show); break;
    case SQL_SHOW_CREATE_TABLE: show_create_table(x, &st->u.show); break;
    case SQL_SHOW_WARNINGS: {
        struct result r = {0};
        result_col(x, &r, "Level", MYSQL_TYPE_VAR_STRING);
        result_col(x, &r, "Code", MYSQL_TYPE_LONG);
        result_col(x, &r, "Message", MYSQL_TYPE_VAR_STRING);
        reply_result(x, &r);
        break;
    }
    case SQL_SET: case SQL_BEGIN: case SQL_COMMIT: case SQL_ROLLBACK:
        reply_ok(x, 0, 0, NULL); /* every statement commits on its own */
        break;
    }
}

void executor_query(struct exec_session *s, const char *sql, size_t len, uint8_t seq,
                    struct mysql_buf *out)
{
    struct ctx x = {.s = s, .cat = s->server->catalog, .kv = catalog_kv(s->server->catalog),
                    .seq = seq, .out = out};
    struct sql_stmt *st = NULL;
    struct sql_error perr;
    const char *type = "Other";
    if (sql_parse(sql, len, &st, &perr) != 0) {
        x.err_code = perr.code;
        x.err_state = perr.sqlstate[0] ? arena_strndup(&x.arena, perr.sqlstate, 5) : NULL;
        snprintf(x.err, sizeof x.err, "%s", perr.msg);
    } else {
        type = count_type(st->kind);
        run(&x, st);
    }
    if (x.err_code)
        reply_err(&x);
    if (s->server->count)
        s->server->count(type, x.err_code == 0, s->server->count_arg);
    sql_stmt_free(st);
    arena_free(&x.arena);
}
