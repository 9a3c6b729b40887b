/* Unit tests for sql_parse: the trees of sysbench 1.0.20's statements verbatim, of what the
 * mariadb client sends on connect, and of the rest of the subset; MySQL's error codes and
 * exact wording; limits; and fuzzing (random bytes, every prefix of every statement here,
 * deep nesting) where each input must give a tree or an error, never a crash or a leak
 * (run under ASan to see the latter). Expressions are checked through a small
 * S-expression printer: "(= id 5014)". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql_parse.h"
#include "testutil.h"

/* ---- helpers --------------------------------------------------------------------------------- */

struct sb {
    char buf[8192];
    size_t n;
};

__attribute__((format(printf, 2, 3)))
static void sb_add(struct sb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->buf + b->n, sizeof b->buf - b->n, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof b->buf - b->n);
    b->n += (size_t)n;
}

static const char *op_name(enum sql_op op)
{
    static const char *const names[] = {
        [SQL_OP_NEG] = "-", [SQL_OP_NOT] = "NOT", [SQL_OP_EQ] = "=", [SQL_OP_NSEQ] = "<=>",
        [SQL_OP_NE] = "<>", [SQL_OP_LT] = "<", [SQL_OP_LE] = "<=", [SQL_OP_GT] = ">",
        [SQL_OP_GE] = ">=", [SQL_OP_AND] = "AND", [SQL_OP_OR] = "OR", [SQL_OP_ADD] = "+",
        [SQL_OP_SUB] = "-", [SQL_OP_MUL] = "*", [SQL_OP_DIV] = "/", [SQL_OP_INTDIV] = "DIV",
        [SQL_OP_MOD] = "%", [SQL_OP_LIKE] = "LIKE",
    };
    return names[op];
}

static void dump(struct sb *b, const struct sql_expr *e);

static void dump_list(struct sb *b, struct sql_expr *const *list, size_t n, const char *sep)
{
    for (size_t i = 0; i < n; i++) {
        sb_add(b, "%s", i ? sep : "");
        dump(b, list[i]);
    }
}

static void dump_string(struct sb *b, const char *s, size_t len)
{
    sb_add(b, "'");
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0')
            sb_add(b, "\\0");
        else if (s[i] == '\n')
            sb_add(b, "\\n");
        else
            sb_add(b, "%c", s[i]);
    }
    sb_add(b, "'");
}

static void dump_var(struct sb *b, const struct sql_expr *e)
{
    static const char *const scopes[] = {"", "session.", "global."};
    if (e->kind == SQL_E_USERVAR)
        sb_add(b, "@%s", e->u.var.name);
    else
        sb_add(b, "@@%s%s", scopes[e->u.var.scope], e->u.var.name);
}

static void dump(struct sb *b, const struct sql_expr *e)
{
    switch (e->kind) {
    case SQL_E_INT: sb_add(b, "%lld", (long long)e->u.i); break;
    case SQL_E_DECIMAL: sb_add(b, "dec:%s", e->u.str.s); break;
    case SQL_E_STRING: dump_string(b, e->u.str.s, e->u.str.len); break;
    case SQL_E_NULL: sb_add(b, "NULL"); break;
    case SQL_E_DEFAULT: sb_add(b, "DEFAULT"); break;
    case SQL_E_STAR: sb_add(b, "*"); break;
    case SQL_E_COLUMN:
        sb_add(b, "%s%s%s%s%s", e->u.col.db ? e->u.col.db : "", e->u.col.db ? "." : "",
               e->u.col.table ? e->u.col.table : "", e->u.col.table ? "." : "", e->u.col.name);
        break;
    case SQL_E_SYSVAR:
    case SQL_E_USERVAR: dump_var(b, e); break;
    case SQL_E_FUNC:
        sb_add(b, "%s(", e->u.func.name);
        dump_list(b, e->u.func.args, e->u.func.n_args, ", ");
        sb_add(b, ")");
        break;
    case SQL_E_UNARY:
        sb_add(b, "(%s ", op_name(e->u.unary.op));
        dump(b, e->u.unary.arg);
        sb_add(b, ")");
        break;
    case SQL_E_BINARY:
        sb_add(b, "(%s ", op_name(e->u.binary.op));
        dump(b, e->u.binary.l);
        sb_add(b, " ");
        dump(b, e->u.binary.r);
        sb_add(b, ")");
        break;
    case SQL_E_BETWEEN:
        sb_add(b, "(%sBETWEEN ", e->u.between.negated ? "NOT " : "");
        dump_list(b, (struct sql_expr *const[]){e->u.between.x, e->u.between.lo,
                                               e->u.between.hi}, 3, " ");
        sb_add(b, ")");
        break;
    case SQL_E_IN:
        sb_add(b, "(%sIN ", e->u.in.negated ? "NOT " : "");
        dump(b, e->u.in.x);
        sb_add(b, " ");
        dump_list(b, e->u.in.list, e->u.in.n, " ");
        sb_add(b, ")");
        break;
    case SQL_E_IS_NULL:
        sb_add(b, "(IS %sNULL ", e->u.is_null.negated ? "NOT " : "");
        dump(b, e->u.is_null.x);
        sb_add(b, ")");
        break;
    }
}

static void assert_dump(const struct sql_expr *e, const char *want)
{
    struct sb b = {.n = 0};
    assert_non_null(e);
    dump(&b, e);
    if (strcmp(b.buf, want) != 0) {
        print_error("tree %s, expected %s\n", b.buf, want);
        fail();
    }
}

static struct sql_stmt *parse_n(const char *sql, size_t len)
{
    struct sql_stmt *st = NULL;
    struct sql_error err;
    if (sql_parse(sql, len, &st, &err) != 0) {
        print_error("sql_parse(\"%.*s\") refused: %d %s %s\n", (int)len, sql, err.code,
                    err.sqlstate, err.msg);
        fail();
    }
    assert_non_null(st);
    assert_int_equal(err.code, 0);
    return st;
}

static struct sql_stmt *parse(const char *sql)
{
    return parse_n(sql, strlen(sql));
}

static struct sql_stmt *parse_kind(const char *sql, enum sql_stmt_kind kind)
{
    struct sql_stmt *st = parse(sql);
    if (st->kind != kind) {
        print_error("\"%s\" parsed as %s, expected %s\n", sql, sql_stmt_kind_name(st->kind),
                    sql_stmt_kind_name(kind));
        fail();
    }
    return st;
}

static void expect_error(const char *sql, int code, const char *state, const char *msg)
{
    struct sql_stmt *st = (struct sql_stmt *)&st;
    struct sql_error err;
    if (sql_parse(sql, strlen(sql), &st, &err) == 0) {
        print_error("sql_parse(\"%s\") accepted it as %s\n", sql, sql_stmt_kind_name(st->kind));
        sql_stmt_free(st);
        fail();
    }
    assert_null(st);
    if (err.code != code || strcmp(err.sqlstate, state) != 0 || strcmp(err.msg, msg) != 0) {
        print_error("sql_parse(\"%s\"):\n got  %d (%s) %s\n want %d (%s) %s\n", sql, err.code,
                    err.sqlstate, err.msg, code, state, msg);
        fail();
    }
}

#define SYNTAX "You have an error in your SQL syntax; check the manual that corresponds to " \
               "your MySQL server version for the right syntax to use near "

static void expect_syntax(const char *sql, const char *near, int line)
{
    char msg[600];
    snprintf(msg, sizeof msg, SYNTAX "'%s' at line %d", near, line);
    expect_error(sql, 1064, "42000", msg);
}

static void expect_unsupported(const char *sql, const char *what)
{
    char msg[300];
    snprintf(msg, sizeof msg, "This version of TiDB doesn't yet support '%s'", what);
    expect_error(sql, 1235, "42000", msg);
}

/* "SELECT <expr>": the one item's tree. */
static void expect_expr(const char *expr, const char *want)
{
    char sql[1024];
    snprintf(sql, sizeof sql, "SELECT %s", expr);
    struct sql_stmt *st = parse_kind(sql, SQL_SELECT);
    assert_int_equal(st->u.select.n_items, 1);
    assert_dump(st->u.select.items[0].expr, want);
    sql_stmt_free(st);
}

static void expect_where(const struct sql_stmt *st, const char *want)
{
    const struct sql_expr *w = st->kind == SQL_SELECT   ? st->u.select.where
                               : st->kind == SQL_UPDATE ? st->u.update.where
                                                        : st->u.del.where;
    assert_dump(w, want);
}

/* ---- sysbench 1.0.20 ------------------------------------------------------------------------- */

static const char SB_CREATE[] =
    "CREATE TABLE sbtest1(id INTEGER NOT NULL AUTO_INCREMENT, k INTEGER DEFAULT '0' NOT NULL, "
    "c CHAR(120) DEFAULT '' NOT NULL, pad CHAR(60) DEFAULT '' NOT NULL, PRIMARY KEY (id)) "
    "/*! ENGINE = innodb */";

/* oltp_common.lua's layout: one column a line, the engine comment, an empty extra option. */
static const char SB_CREATE_LUA[] = "CREATE TABLE sbtest1(\n"
                                    "  id INTEGER NOT NULL AUTO_INCREMENT,\n"
                                    "  k INTEGER DEFAULT '0' NOT NULL,\n"
                                    "  c CHAR(120) DEFAULT '' NOT NULL,\n"
                                    "  pad CHAR(60) DEFAULT '' NOT NULL,\n"
                                    "  PRIMARY KEY (id)\n"
                                    ") /*! ENGINE = innodb */ ";

static const char SB_INSERT_BULK[] =
    "INSERT INTO sbtest1(k, c, pad) VALUES(5014, "
    "'68487932199-96439406143-93774651418-41631865787-96406072701-20604855487-25459966574-"
    "28203206787-41238978918-19503783441', "
    "'22195207048-70116052123-74140395089-76317954521-98694025897'),"
    "(4989, '13241531885-45658403807-79170748828-69419634012-13605813761-77983377181-"
    "01582588137-21344716829-87370944992-02457486289', "
    "'28733802923-10548894641-11867531929-71265603657-36546888392'),"
    "(5014, '51185622598-89397522786-28007882305-52050087550-68686337807-48942386476-"
    "96555734557-05264042377-33586177817-31986479495', "
    "'00592560354-80393027097-78244247549-39135306455-88936868384')";

static const char SB_INSERT_ONE[] =
    "INSERT INTO sbtest1 (id, k, c, pad) VALUES (0, 5014, "
    "'54627364283-38392003838-65727372713-54281993723-55398734939-15429036651-93932553573-"
    "11948036386-58367946424-67837278451', "
    "'41734766478-38374930376-50367564293-56383653546-85237628491')";

static void check_sbtest1(const struct sql_create_table *ct)
{
    assert_null(ct->table.db);
    assert_string_equal(ct->table.name, "sbtest1");
    assert_false(ct->if_not_exists);
    assert_int_equal(ct->n_cols, 4);
    static const struct {
        const char *name;
        enum sql_col_type type;
        int64_t length;
        bool ai, pk;
        const char *def;
    } want[] = {
        {"id", SQL_TYPE_INT, -1, true, true, NULL},
        {"k", SQL_TYPE_INT, -1, false, false, "0"},
        {"c", SQL_TYPE_CHAR, 120, false, false, ""},
        {"pad", SQL_TYPE_CHAR, 60, false, false, ""},
    };
    for (size_t i = 0; i < 4; i++) {
        const struct sql_column_def *c = &ct->cols[i];
        assert_string_equal(c->name, want[i].name);
        assert_int_equal(c->type, want[i].type);
        assert_int_equal(c->length, want[i].length);
        assert_true(c->not_null);
        assert_int_equal(c->auto_increment, want[i].ai);
        assert_int_equal(c->primary_key, want[i].pk);
        assert_false(c->is_unsigned);
        assert_false(c->unique);
        if (!want[i].def) {
            assert_null(c->default_value);
            continue;
        }
        assert_int_equal(c->default_value->kind, SQL_E_STRING);
        assert_string_equal(c->default_value->u.str.s, want[i].def);
    }
    assert_int_equal(ct->n_pk_cols, 1);
    assert_string_equal(ct->pk_cols[0], "id");
    assert_int_equal(ct->n_indexes, 0);
    assert_string_equal(ct->engine, "innodb");
    assert_int_equal(ct->auto_increment, 0);
}

static void test_sysbench_create(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind(SB_CREATE, SQL_CREATE_TABLE);
    check_sbtest1(&st->u.create_table);
    sql_stmt_free(st);
    st = parse_kind(SB_CREATE_LUA, SQL_CREATE_TABLE);
    check_sbtest1(&st->u.create_table);
    sql_stmt_free(st);

    /* --secondary: the id is a plain key; --auto_inc=off: no AUTO_INCREMENT */
    st = parse_kind("CREATE TABLE sbtest2(\n  id INTEGER NOT NULL AUTO_INCREMENT,\n"
                    "  k INTEGER DEFAULT '0' NOT NULL,\n  c CHAR(120) DEFAULT '' NOT NULL,\n"
                    "  pad CHAR(60) DEFAULT '' NOT NULL,\n  KEY xid (id)\n"
                    ") /*! ENGINE = innodb */ ",
                    SQL_CREATE_TABLE);
    assert_int_equal(st->u.create_table.n_pk_cols, 0);
    assert_false(st->u.create_table.cols[0].primary_key);
    assert_true(st->u.create_table.cols[0].auto_increment);
    assert_int_equal(st->u.create_table.n_indexes, 1);
    assert_string_equal(st->u.create_table.indexes[0].name, "xid");
    assert_string_equal(st->u.create_table.indexes[0].cols[0], "id");
    sql_stmt_free(st);
    st = parse_kind("CREATE TABLE sbtest1(\n  id INTEGER NOT NULL,\n  k INTEGER DEFAULT '0' NOT "
                    "NULL,\n  c CHAR(120) DEFAULT '' NOT NULL,\n  pad CHAR(60) DEFAULT '' NOT "
                    "NULL,\n  PRIMARY KEY (id)\n) /*! ENGINE = innodb */ ",
                    SQL_CREATE_TABLE);
    assert_false(st->u.create_table.cols[0].auto_increment);
    assert_true(st->u.create_table.cols[0].primary_key);
    sql_stmt_free(st);

    st = parse_kind("CREATE INDEX k_1 ON sbtest1(k)", SQL_CREATE_INDEX);
    const struct sql_create_index *ci = &st->u.create_index;
    assert_string_equal(ci->name, "k_1");
    assert_false(ci->unique);
    assert_null(ci->table.db);
    assert_string_equal(ci->table.name, "sbtest1");
    assert_int_equal(ci->n_cols, 1);
    assert_string_equal(ci->cols[0], "k");
    sql_stmt_free(st);

    st = parse_kind("DROP TABLE IF EXISTS sbtest1", SQL_DROP_TABLE);
    assert_true(st->u.drop_table.if_exists);
    assert_int_equal(st->u.drop_table.n_tables, 1);
    assert_string_equal(st->u.drop_table.tables[0].name, "sbtest1");
    sql_stmt_free(st);
}

static void test_sysbench_insert(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind(SB_INSERT_BULK, SQL_INSERT);
    const struct sql_insert *ins = &st->u.insert;
    assert_string_equal(ins->table.name, "sbtest1");
    assert_true(ins->has_cols);
    assert_int_equal(ins->n_cols, 3);
    assert_string_equal(ins->cols[0], "k");
    assert_string_equal(ins->cols[1], "c");
    assert_string_equal(ins->cols[2], "pad");
    assert_int_equal(ins->n_rows, 3);
    for (size_t r = 0; r < 3; r++)
        assert_int_equal(ins->rows[r].n_vals, 3);
    assert_dump(ins->rows[0].vals[0], "5014");
    assert_dump(ins->rows[1].vals[0], "4989");
    assert_dump(ins->rows[2].vals[2], "'00592560354-80393027097-78244247549-39135306455-"
                                      "88936868384'");
    assert_int_equal(ins->rows[0].vals[1]->u.str.len, 119);
    sql_stmt_free(st);

    /* --auto_inc=off: the ids are given */
    st = parse_kind("INSERT INTO sbtest1(id, k, c, pad) VALUES(1, 4993, '1-2', '3-4'),(2, 5020, "
                    "'5-6', '7-8')",
                    SQL_INSERT);
    assert_int_equal(st->u.insert.n_cols, 4);
    assert_int_equal(st->u.insert.n_rows, 2);
    assert_dump(st->u.insert.rows[1].vals[0], "2");
    sql_stmt_free(st);

    st = parse_kind(SB_INSERT_ONE, SQL_INSERT);
    ins = &st->u.insert;
    assert_int_equal(ins->n_cols, 4);
    assert_string_equal(ins->cols[0], "id");
    assert_int_equal(ins->n_rows, 1);
    assert_int_equal(ins->rows[0].n_vals, 4);
    assert_dump(ins->rows[0].vals[0], "0");
    assert_dump(ins->rows[0].vals[1], "5014");
    assert_int_equal(ins->rows[0].vals[2]->kind, SQL_E_STRING);
    sql_stmt_free(st);
}

static void test_sysbench_point_select(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind("SELECT c FROM sbtest1 WHERE id=5014", SQL_SELECT);
    const struct sql_select *s = &st->u.select;
    assert_int_equal(s->n_items, 1);
    assert_dump(s->items[0].expr, "c");
    assert_string_equal(s->items[0].name, "c");
    assert_null(s->items[0].alias);
    assert_true(s->has_from);
    assert_null(s->from.db);
    assert_string_equal(s->from.name, "sbtest1");
    assert_null(s->from.alias);
    expect_where(st, "(= id 5014)");
    assert_int_equal(s->n_order_by, 0);
    assert_false(s->limit.present);
    assert_false(s->for_update);
    sql_stmt_free(st);
}

/* ---- the mariadb client ---------------------------------------------------------------------- */

static void expect_items(const char *sql, const char *const *trees, const char *const *names)
{
    struct sql_stmt *st = parse_kind(sql, SQL_SELECT);
    size_t n = 0;
    while (trees[n])
        n++;
    assert_int_equal(st->u.select.n_items, n);
    for (size_t i = 0; i < n; i++) {
        assert_dump(st->u.select.items[i].expr, trees[i]);
        assert_string_equal(st->u.select.items[i].name, names[i]);
    }
    assert_false(st->u.select.has_from);
    sql_stmt_free(st);
}

static void test_client_selects(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind("select @@version_comment limit 1", SQL_SELECT);
    assert_dump(st->u.select.items[0].expr, "@@version_comment");
    assert_int_equal(st->u.select.items[0].expr->u.var.scope, SQL_SCOPE_DEFAULT);
    assert_string_equal(st->u.select.items[0].name, "@@version_comment");
    assert_true(st->u.select.limit.present);
    assert_int_equal(st->u.select.limit.count, 1);
    assert_int_equal(st->u.select.limit.offset, 0);
    sql_stmt_free(st);

    expect_items("SELECT DATABASE()", (const char *[]){"DATABASE()", NULL},
                 (const char *[]){"DATABASE()"});
    expect_items("SELECT @@max_allowed_packet", (const char *[]){"@@max_allowed_packet", NULL},
                 (const char *[]){"@@max_allowed_packet"});
    expect_items("SELECT 1", (const char *[]){"1", NULL}, (const char *[]){"1"});
    expect_items("SELECT 1+1, 'a'", (const char *[]){"(+ 1 1)", "'a'", NULL},
                 (const char *[]){"1+1", "a"});
    expect_items("SELECT VERSION(), CURRENT_USER(), USER(), CONNECTION_ID()",
                 (const char *[]){"VERSION()", "CURRENT_USER()", "USER()", "CONNECTION_ID()",
                                  NULL},
                 (const char *[]){"VERSION()", "CURRENT_USER()", "USER()", "CONNECTION_ID()"});
    /* headers keep the text as typed; function names are stored upper-case */
    expect_items("select version( ), current_user, @@VERSION, 1 + 2 AS three, NULL, -5",
                 (const char *[]){"VERSION()", "CURRENT_USER()", "@@version", "(+ 1 2)", "NULL",
                                  "-5", NULL},
                 (const char *[]){"version( )", "current_user", "@@VERSION", "three", "NULL",
                                  "-5"});
}

static void test_client_session(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind("show databases", SQL_SHOW_DATABASES);
    assert_null(st->u.show.like);
    assert_null(st->u.show.where);
    sql_stmt_free(st);
    st = parse_kind("show tables", SQL_SHOW_TABLES);
    assert_null(st->u.show.db);
    sql_stmt_free(st);

    st = parse_kind("SET NAMES utf8mb4", SQL_SET);
    assert_int_equal(st->u.set.n_items, 1);
    assert_int_equal(st->u.set.items[0].kind, SQL_SET_NAMES);
    assert_string_equal(st->u.set.items[0].charset, "utf8mb4");
    assert_null(st->u.set.items[0].collate);
    sql_stmt_free(st);

    st = parse_kind("SET autocommit=1", SQL_SET);
    assert_int_equal(st->u.set.n_items, 1);
    assert_int_equal(st->u.set.items[0].kind, SQL_SET_SYSVAR);
    assert_int_equal(st->u.set.items[0].scope, SQL_SCOPE_DEFAULT);
    assert_string_equal(st->u.set.items[0].name, "autocommit");
    assert_dump(st->u.set.items[0].value, "1");
    sql_stmt_free(st);
}

/* ---- users ----------------------------------------------------------------------------------- */

static void expect_user(const struct sql_user_spec *u, const char *user, const char *host,
                        const char *password)
{
    assert_string_equal(u->user, user);
    assert_string_equal(u->host, host);
    if (password)
        assert_string_equal(u->password, password);
    else
        assert_null(u->password);
}

static void test_create_user(void **state)
{
    (void)state;
    struct sql_stmt *st =
        parse_kind("CREATE USER 'u'@'%' IDENTIFIED BY 'p' REQUIRE NONE", SQL_CREATE_USER);
    const struct sql_user *u = &st->u.user;
    assert_int_equal(u->n_users, 1);
    expect_user(&u->users[0], "u", "%", "p");
    assert_int_equal(u->require, SQL_REQUIRE_NONE);
    assert_false(u->if_not_exists);
    sql_stmt_free(st);

    st = parse_kind("create user if not exists alice@localhost identified by 's3''cr\\'et' "
                    "require ssl",
                    SQL_CREATE_USER);
    u = &st->u.user;
    assert_true(u->if_not_exists);
    expect_user(&u->users[0], "alice", "localhost", "s3'cr'et");
    assert_int_equal(u->require, SQL_REQUIRE_SSL);
    sql_stmt_free(st);

    st = parse_kind("CREATE USER 'bob' REQUIRE X509", SQL_CREATE_USER);
    expect_user(&st->u.user.users[0], "bob", "%", NULL);
    assert_int_equal(st->u.user.require, SQL_REQUIRE_X509);
    assert_null(st->u.user.subject);
    sql_stmt_free(st);

    st = parse_kind("CREATE USER `c`@`10.0.%`, \"d\"@\"h\" IDENTIFIED BY 'x', e@127.0.0.1",
                    SQL_CREATE_USER);
    u = &st->u.user;
    assert_int_equal(u->n_users, 3);
    expect_user(&u->users[0], "c", "10.0.%", NULL);
    expect_user(&u->users[1], "d", "h", "x");
    expect_user(&u->users[2], "e", "127.0.0.1", NULL);
    assert_int_equal(u->require, SQL_REQUIRE_UNSET);
    sql_stmt_free(st);

    st = parse_kind("CREATE USER ''@'localhost'", SQL_CREATE_USER);
    expect_user(&st->u.user.users[0], "", "localhost", NULL);
    sql_stmt_free(st);
}

static void test_require_options(void **state)
{
    (void)state;
    static const char *const forms[] = {
        "CREATE USER 'x'@'%' REQUIRE SUBJECT '/CN=client' AND ISSUER '/CN=ca'",
        "CREATE USER 'x'@'%' REQUIRE SUBJECT '/CN=client' ISSUER '/CN=ca'",
        "CREATE USER 'x'@'%' REQUIRE ISSUER '/CN=ca' AND SUBJECT '/CN=client'",
        "CREATE USER 'x'@'%' REQUIRE ISSUER '/CN=ca' SUBJECT '/CN=client'",
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct sql_stmt *st = parse_kind(forms[i], SQL_CREATE_USER);
        assert_int_equal(st->u.user.require, SQL_REQUIRE_SPECIFIED);
        assert_string_equal(st->u.user.subject, "/CN=client");
        assert_string_equal(st->u.user.issuer, "/CN=ca");
        assert_null(st->u.user.cipher);
        sql_stmt_free(st);
    }
    struct sql_stmt *st = parse_kind(
        "CREATE USER 'x'@'%' REQUIRE SUBJECT '/C=US/O=PingCAP/CN=TiDB-Client'", SQL_CREATE_USER);
    assert_int_equal(st->u.user.require, SQL_REQUIRE_SPECIFIED);
    assert_string_equal(st->u.user.subject, "/C=US/O=PingCAP/CN=TiDB-Client");
    assert_null(st->u.user.issuer);
    sql_stmt_free(st);
    st = parse_kind("CREATE USER 'x'@'%' REQUIRE CIPHER 'ECDHE-RSA-AES128-GCM-SHA256' AND "
                    "ISSUER 'i'",
                    SQL_CREATE_USER);
    assert_string_equal(st->u.user.cipher, "ECDHE-RSA-AES128-GCM-SHA256");
    assert_string_equal(st->u.user.issuer, "i");
    sql_stmt_free(st);

    expect_error("CREATE USER 'x'@'%' REQUIRE SUBJECT 'a' AND SUBJECT 'b'", 1225, "HY000",
                 "Option 'SUBJECT' used twice in statement");
    expect_syntax("CREATE USER 'x'@'%' REQUIRE SUBJECT 'a' AND", "", 1);
    expect_syntax("CREATE USER 'x'@'%' REQUIRE", "", 1);
    expect_syntax("CREATE USER 'x'@'%' REQUIRE SSL AND X509", "AND X509", 1);
}

static void test_alter_drop_user(void **state)
{
    (void)state;
    struct sql_stmt *st =
        parse_kind("ALTER USER 'u'@'%' REQUIRE ISSUER 'ca' AND SUBJECT 's'", SQL_ALTER_USER);
    expect_user(&st->u.user.users[0], "u", "%", NULL);
    assert_int_equal(st->u.user.require, SQL_REQUIRE_SPECIFIED);
    assert_string_equal(st->u.user.issuer, "ca");
    assert_string_equal(st->u.user.subject, "s");
    assert_false(st->u.user.if_exists);
    sql_stmt_free(st);

    st = parse_kind("ALTER USER IF EXISTS root IDENTIFIED BY 'new'", SQL_ALTER_USER);
    assert_true(st->u.user.if_exists);
    expect_user(&st->u.user.users[0], "root", "%", "new");
    assert_int_equal(st->u.user.require, SQL_REQUIRE_UNSET);
    sql_stmt_free(st);

    st = parse_kind("ALTER USER u IDENTIFIED WITH Mysql_Native_Password AS "
                    "'*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9'",
                    SQL_ALTER_USER);
    assert_string_equal(st->u.user.users[0].auth_plugin, "mysql_native_password");
    assert_string_equal(st->u.user.users[0].auth_string,
                        "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9");
    assert_null(st->u.user.users[0].password);
    sql_stmt_free(st);

    st = parse_kind("DROP USER IF EXISTS a, 'b'@'localhost'", SQL_DROP_USER);
    assert_true(st->u.user.if_exists);
    assert_int_equal(st->u.user.n_users, 2);
    expect_user(&st->u.user.users[0], "a", "%", NULL);
    expect_user(&st->u.user.users[1], "b", "localhost", NULL);
    sql_stmt_free(st);
    st = parse_kind("DROP USER 'u'@'%'", SQL_DROP_USER);
    assert_false(st->u.user.if_exists);
    sql_stmt_free(st);

    expect_syntax("DROP USER 'u' IDENTIFIED BY 'p'", "IDENTIFIED BY 'p'", 1);
    expect_error("CREATE USER 'abcdefghijabcdefghijabcdefghijabc'", 1470, "HY000",
                 "String 'abcdefghijabcdefghijabcdefghijabc' is too long for user name (should "
                 "be no longer than 32)");
    sql_stmt_free(parse_kind("CREATE USER 'abcdefghijabcdefghijabcdefghijab'", SQL_CREATE_USER));
    expect_unsupported("CREATE USER u WITH MAX_QUERIES_PER_HOUR 1", "user option WITH");
}

/* ---- SHOW, USE, SET, transactions ------------------------------------------------------------ */

static void test_show(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        enum sql_stmt_kind kind;
        enum sql_scope scope;
        const char *like;
    } cases[] = {
        {"SHOW STATUS LIKE 'Ssl%'", SQL_SHOW_STATUS, SQL_SCOPE_DEFAULT, "Ssl%"},
        {"show session status like 'Ssl_cipher'", SQL_SHOW_STATUS, SQL_SCOPE_SESSION,
         "Ssl_cipher"},
        {"SHOW GLOBAL STATUS", SQL_SHOW_STATUS, SQL_SCOPE_GLOBAL, NULL},
        {"SHOW VARIABLES LIKE '%ssl%'", SQL_SHOW_VARIABLES, SQL_SCOPE_DEFAULT, "%ssl%"},
        {"SHOW LOCAL VARIABLES LIKE 'have\\_ssl'", SQL_SHOW_VARIABLES, SQL_SCOPE_SESSION,
         "have\\_ssl"},
        {"SHOW GLOBAL VARIABLES", SQL_SHOW_VARIABLES, SQL_SCOPE_GLOBAL, NULL},
        {"SHOW DATABASES LIKE 'te%'", SQL_SHOW_DATABASES, SQL_SCOPE_DEFAULT, "te%"},
        {"SHOW WARNINGS", SQL_SHOW_WARNINGS, SQL_SCOPE_DEFAULT, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct sql_stmt *st = parse_kind(cases[i].sql, cases[i].kind);
        assert_int_equal(st->u.show.scope, cases[i].scope);
        if (cases[i].like)
            assert_string_equal(st->u.show.like, cases[i].like);
        else
            assert_null(st->u.show.like);
        sql_stmt_free(st);
    }
    struct sql_stmt *st = parse_kind("SHOW VARIABLES WHERE Variable_name = 'version'",
                                     SQL_SHOW_VARIABLES);
    assert_dump(st->u.show.where, "(= Variable_name 'version')");
    sql_stmt_free(st);
    st = parse_kind("SHOW FULL TABLES FROM test LIKE 's%'", SQL_SHOW_TABLES);
    assert_true(st->u.show.full);
    assert_string_equal(st->u.show.db, "test");
    assert_string_equal(st->u.show.like, "s%");
    sql_stmt_free(st);
}

static void expect_table(const char *sql, enum sql_stmt_kind kind, const char *db,
                         const char *name)
{
    struct sql_stmt *st = parse_kind(sql, kind);
    if (db)
        assert_string_equal(st->u.show.table.db, db);
    else
        assert_null(st->u.show.table.db);
    assert_string_equal(st->u.show.table.name, name);
    sql_stmt_free(st);
}

static void test_show_table(void **state)
{
    (void)state;
    expect_table("SHOW CREATE TABLE sbtest1", SQL_SHOW_CREATE_TABLE, NULL, "sbtest1");
    expect_table("show create table `db`.`t`", SQL_SHOW_CREATE_TABLE, "db", "t");
    expect_table("SHOW COLUMNS FROM t", SQL_SHOW_COLUMNS, NULL, "t");
    expect_table("SHOW FULL FIELDS IN t IN d", SQL_SHOW_COLUMNS, "d", "t");
    expect_table("SHOW COLUMNS FROM d.t", SQL_SHOW_COLUMNS, "d", "t");
    expect_table("DESC t", SQL_SHOW_COLUMNS, NULL, "t");
    expect_table("DESCRIBE d.t", SQL_SHOW_COLUMNS, "d", "t");
    expect_table("EXPLAIN t", SQL_SHOW_COLUMNS, NULL, "t");
    expect_unsupported("EXPLAIN SELECT 1", "EXPLAIN");
    expect_unsupported("SHOW GRANTS", "SHOW GRANTS");
    expect_unsupported("SHOW FULL PROCESSLIST", "SHOW FULL PROCESSLIST");
    expect_unsupported("SHOW CREATE USER root", "SHOW CREATE USER");
    expect_syntax("SHOW GLOBAL TABLES", "TABLES", 1);
}

static void test_use_and_transactions(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind("USE sbtest", SQL_USE);
    assert_string_equal(st->u.database.name, "sbtest");
    sql_stmt_free(st);
    st = parse_kind("use `my db`", SQL_USE);
    assert_string_equal(st->u.database.name, "my db");
    sql_stmt_free(st);
    static const struct {
        const char *sql;
        enum sql_stmt_kind kind;
    } cases[] = {
        {"BEGIN", SQL_BEGIN}, {"begin work", SQL_BEGIN}, {"START TRANSACTION", SQL_BEGIN},
        {"START TRANSACTION READ ONLY", SQL_BEGIN},
        {"start transaction with consistent snapshot, read write", SQL_BEGIN},
        {"COMMIT", SQL_COMMIT}, {"COMMIT WORK", SQL_COMMIT}, {"ROLLBACK", SQL_ROLLBACK},
        {"rollback work", SQL_ROLLBACK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        sql_stmt_free(parse_kind(cases[i].sql, cases[i].kind));
    expect_unsupported("ROLLBACK TO SAVEPOINT a", "ROLLBACK TO SAVEPOINT");
    expect_unsupported("START SLAVE", "START SLAVE");
    expect_syntax("USE", "", 1);
    expect_syntax("BEGIN TRANSACTION", "TRANSACTION", 1);
}

static void expect_set_item(const struct sql_set_item *it, enum sql_set_kind kind,
                            enum sql_scope scope, const char *name, const char *value)
{
    assert_int_equal(it->kind, kind);
    assert_int_equal(it->scope, scope);
    assert_string_equal(it->name, name);
    assert_dump(it->value, value);
}

static void test_set(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind(
        "SET @@session.autocommit = 0, @@GLOBAL.max_connections=10, @@sql_mode='', x := 1, "
        "GLOBAL a = ON, b = OFF, SESSION c = DEFAULT, @U = 'v', @'q' := 2 + 2, "
        "LOCAL d = NULL",
        SQL_SET);
    const struct sql_set *s = &st->u.set;
    assert_int_equal(s->n_items, 10);
    expect_set_item(&s->items[0], SQL_SET_SYSVAR, SQL_SCOPE_SESSION, "autocommit", "0");
    expect_set_item(&s->items[1], SQL_SET_SYSVAR, SQL_SCOPE_GLOBAL, "max_connections", "10");
    expect_set_item(&s->items[2], SQL_SET_SYSVAR, SQL_SCOPE_DEFAULT, "sql_mode", "''");
    expect_set_item(&s->items[3], SQL_SET_SYSVAR, SQL_SCOPE_DEFAULT, "x", "1");
    expect_set_item(&s->items[4], SQL_SET_SYSVAR, SQL_SCOPE_GLOBAL, "a", "ON");
    /* a scope word carries over to later assignments without one */
    expect_set_item(&s->items[5], SQL_SET_SYSVAR, SQL_SCOPE_GLOBAL, "b", "OFF");
    expect_set_item(&s->items[6], SQL_SET_SYSVAR, SQL_SCOPE_SESSION, "c", "DEFAULT");
    expect_set_item(&s->items[7], SQL_SET_USERVAR, SQL_SCOPE_DEFAULT, "u", "'v'");
    expect_set_item(&s->items[8], SQL_SET_USERVAR, SQL_SCOPE_DEFAULT, "q", "(+ 2 2)");
    expect_set_item(&s->items[9], SQL_SET_SYSVAR, SQL_SCOPE_SESSION, "d", "NULL");
    sql_stmt_free(st);

    st = parse_kind("SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci', CHARACTER SET utf8, "
                    "CHARSET DEFAULT, NAMES DEFAULT",
                    SQL_SET);
    s = &st->u.set;
    assert_int_equal(s->n_items, 4);
    assert_int_equal(s->items[0].kind, SQL_SET_NAMES);
    assert_string_equal(s->items[0].charset, "utf8mb4");
    assert_string_equal(s->items[0].collate, "utf8mb4_general_ci");
    assert_int_equal(s->items[1].kind, SQL_SET_CHARSET);
    assert_string_equal(s->items[1].charset, "utf8");
    assert_int_equal(s->items[2].kind, SQL_SET_CHARSET);
    assert_null(s->items[2].charset);
    assert_int_equal(s->items[3].kind, SQL_SET_NAMES);
    assert_null(s->items[3].charset);
    sql_stmt_free(st);

    expect_unsupported("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "SET TRANSACTION");
    expect_unsupported("SET SESSION TRANSACTION READ ONLY", "SET TRANSACTION");
    expect_unsupported("SET PASSWORD = 'x'", "SET PASSWORD");
    expect_syntax("SET autocommit", "", 1);
    expect_syntax("SET = 1", "= 1", 1);
}

/* ---- SELECT, UPDATE, DELETE, INSERT forms ---------------------------------------------------- */

static void test_select_clauses(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind(
        "SELECT *, t.c AS x, `k` 'y', pad z FROM sbtest.sbtest1 AS t WHERE id BETWEEN 10 AND "
        "20 ORDER BY k DESC, id LIMIT 5 OFFSET 10 FOR UPDATE",
        SQL_SELECT);
    const struct sql_select *s = &st->u.select;
    assert_int_equal(s->n_items, 4);
    assert_null(s->items[0].expr);
    assert_null(s->items[0].star_table);
    assert_dump(s->items[1].expr, "t.c");
    assert_string_equal(s->items[1].alias, "x");
    assert_string_equal(s->items[1].name, "x");
    assert_string_equal(s->items[2].name, "y");
    assert_string_equal(s->items[3].name, "z");
    assert_string_equal(s->from.db, "sbtest");
    assert_string_equal(s->from.name, "sbtest1");
    assert_string_equal(s->from.alias, "t");
    expect_where(st, "(BETWEEN id 10 20)");
    assert_int_equal(s->n_order_by, 2);
    assert_dump(s->order_by[0].expr, "k");
    assert_true(s->order_by[0].desc);
    assert_dump(s->order_by[1].expr, "id");
    assert_false(s->order_by[1].desc);
    assert_true(s->limit.present);
    assert_int_equal(s->limit.count, 5);
    assert_int_equal(s->limit.offset, 10);
    assert_true(s->for_update);
    sql_stmt_free(st);

    st = parse_kind("select t.* from t u where id >= 1 and id < 100 order by id asc limit 3, 7",
                    SQL_SELECT);
    s = &st->u.select;
    assert_null(s->items[0].expr);
    assert_string_equal(s->items[0].star_table, "t");
    assert_string_equal(s->from.alias, "u");
    expect_where(st, "(AND (>= id 1) (< id 100))");
    assert_int_equal(s->limit.offset, 3);
    assert_int_equal(s->limit.count, 7);
    assert_int_equal(s->limit.count, 7);
    sql_stmt_free(st);

    st = parse_kind("SELECT 1 FROM DUAL LIMIT 18446744073709551615", SQL_SELECT);
    assert_false(st->u.select.has_from);
    assert_int_equal(st->u.select.limit.count, UINT64_MAX);
    sql_stmt_free(st);
    st = parse_kind("SELECT COUNT(*) FROM t LOCK IN SHARE MODE", SQL_SELECT);
    assert_dump(st->u.select.items[0].expr, "COUNT(*)");
    assert_string_equal(st->u.select.items[0].name, "COUNT(*)");
    assert_true(st->u.select.for_update);
    sql_stmt_free(st);

    expect_syntax("SELECT c, * FROM t", "* FROM t", 1);
    expect_syntax("SELECT * FROM t LIMIT 18446744073709551616", "18446744073709551616", 1);
    expect_syntax("SELECT * FROM t LIMIT -1", "-1", 1);
    expect_syntax("SELECT * FROM select", "select", 1);
    sql_stmt_free(parse_kind("SELECT * FROM `select`", SQL_SELECT));
    expect_unsupported("SELECT * FROM a, b", "joins");
    expect_unsupported("SELECT * FROM a JOIN b ON a.id = b.id", "joins");
    expect_unsupported("SELECT k, COUNT(*) FROM t GROUP BY k", "GROUP");
    expect_unsupported("SELECT DISTINCT k FROM t", "SELECT DISTINCT");
    expect_unsupported("SELECT 1 UNION SELECT 2", "SELECT ... UNION");
    expect_unsupported("SELECT * FROM t WHERE id IN (SELECT id FROM u)", "subqueries");
    expect_unsupported("SELECT (SELECT 1)", "subqueries");
    expect_unsupported("SELECT * FROM (SELECT 1) x", "derived tables");
}

static void test_update_delete(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind("UPDATE sbtest1 SET k=k+1, c = 'x', t.pad = DEFAULT WHERE "
                                     "id=5014",
                                     SQL_UPDATE);
    const struct sql_update *u = &st->u.update;
    assert_string_equal(u->table.name, "sbtest1");
    assert_int_equal(u->n_sets, 3);
    assert_string_equal(u->sets[0].col, "k");
    assert_null(u->sets[0].table);
    assert_dump(u->sets[0].value, "(+ k 1)");
    assert_string_equal(u->sets[1].col, "c");
    assert_dump(u->sets[1].value, "'x'");
    assert_string_equal(u->sets[2].table, "t");
    assert_string_equal(u->sets[2].col, "pad");
    assert_dump(u->sets[2].value, "DEFAULT");
    expect_where(st, "(= id 5014)");
    assert_false(u->limit.present);
    sql_stmt_free(st);

    st = parse_kind("update d.t set a = -9223372036854775808 order by id desc limit 2",
                    SQL_UPDATE);
    assert_string_equal(st->u.update.table.db, "d");
    assert_dump(st->u.update.sets[0].value, "-9223372036854775808");
    assert_null(st->u.update.where);
    assert_int_equal(st->u.update.n_order_by, 1);
    assert_int_equal(st->u.update.limit.count, 2);
    sql_stmt_free(st);

    st = parse_kind("DELETE FROM sbtest1 WHERE id=5014", SQL_DELETE);
    assert_string_equal(st->u.del.table.name, "sbtest1");
    expect_where(st, "(= id 5014)");
    sql_stmt_free(st);
    st = parse_kind("delete from d.t where id in (1, 2, 3) limit 10", SQL_DELETE);
    assert_string_equal(st->u.del.table.db, "d");
    expect_where(st, "(IN id 1 2 3)");
    assert_int_equal(st->u.del.limit.count, 10);
    sql_stmt_free(st);

    expect_syntax("UPDATE t SET a = DEFAULT + 1", "+ 1", 1);
    expect_syntax("UPDATE t WHERE id = 1", "WHERE id = 1", 1);
    expect_syntax("DELETE FROM t LIMIT 1, 2", ", 2", 1);
    expect_unsupported("DELETE t FROM t JOIN u", "multi-table DELETE");
    expect_unsupported("UPDATE a, b SET a.x = b.x", "joins");
}

static void test_insert_forms(void **state)
{
    (void)state;
    struct sql_stmt *st =
        parse_kind("insert d.t value (1, DEFAULT, NULL, -2.5, 'a' \"b\"), (DEFAULT(x), 2, "
                   "3, 4, 5)",
                   SQL_INSERT);
    const struct sql_insert *ins = &st->u.insert;
    assert_string_equal(ins->table.db, "d");
    assert_string_equal(ins->table.name, "t");
    assert_false(ins->has_cols);
    assert_int_equal(ins->n_cols, 0);
    assert_int_equal(ins->n_rows, 2);
    assert_dump(ins->rows[0].vals[1], "DEFAULT");
    assert_dump(ins->rows[0].vals[2], "NULL");
    assert_dump(ins->rows[0].vals[3], "dec:-2.5");
    assert_dump(ins->rows[0].vals[4], "'ab'");
    assert_dump(ins->rows[1].vals[0], "DEFAULT(x)");
    sql_stmt_free(st);

    st = parse_kind("INSERT INTO t () VALUES ()", SQL_INSERT);
    assert_true(st->u.insert.has_cols);
    assert_int_equal(st->u.insert.n_cols, 0);
    assert_int_equal(st->u.insert.rows[0].n_vals, 0);
    sql_stmt_free(st);

    expect_error("INSERT INTO t (a, b) VALUES (1, 2), (3)", 1136, "21S01",
                 "Column count doesn't match value count at row 2");
    sql_stmt_free(parse("INSERT INTO t VALUES (1, 2), (3)"));  /* the executor's check */
    expect_unsupported("INSERT INTO t SELECT * FROM u", "INSERT ... SELECT");
    expect_unsupported("INSERT INTO t SET a = 1", "INSERT ... SET");
    expect_unsupported("INSERT IGNORE INTO t VALUES (1)", "INSERT IGNORE");
    expect_unsupported("INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 2",
                       "INSERT ... ON DUPLICATE KEY UPDATE");
    expect_syntax("INSERT INTO t VALUES", "", 1);
    expect_syntax("INSERT INTO t VALUES (1),", "", 1);
    expect_syntax("INSERT INTO t (a,) VALUES (1)", ") VALUES (1)", 1);
}

/* ---- expressions ----------------------------------------------------------------------------- */

static void test_literals(void **state)
{
    (void)state;
    expect_expr("0", "0");
    expect_expr("9223372036854775807", "9223372036854775807");
    expect_expr("-9223372036854775808", "-9223372036854775808");
    expect_expr("- 9223372036854775808", "-9223372036854775808");
    expect_expr("9223372036854775808", "dec:9223372036854775808");
    expect_expr("-9223372036854775809", "dec:-9223372036854775809");
    expect_expr("123456789012345678901234567890", "dec:123456789012345678901234567890");
    expect_expr("1.5", "dec:1.5");
    expect_expr(".5", "dec:.5");
    expect_expr("1e3", "dec:1e3");
    expect_expr("2.5E-3", "dec:2.5E-3");
    expect_expr("TRUE", "1");
    expect_expr("false", "0");
    expect_expr("null", "NULL");
    expect_expr("'it''s'", "'it's'");
    expect_expr("\"say \"\"hi\"\"\"", "'say \"hi\"'");
    expect_expr("'a\\nb\\tc\\\\d\\'e\\\"f'", "'a\\nb\tc\\d'e\"f'");
    expect_expr("'a\\%b\\_c\\qd'", "'a\\%b\\_cqd'");
    expect_expr("'x' 'y' \"z\"", "'xyz'");
    expect_expr("''", "''");

    struct sql_stmt *st = parse("SELECT 'a\\0b'");
    const struct sql_expr *e = st->u.select.items[0].expr;
    assert_int_equal(e->u.str.len, 3);
    assert_memory_equal(e->u.str.s, "a\0b", 4);
    sql_stmt_free(st);
    st = parse("SELECT '\\Z\\b\\r'");
    assert_string_equal(st->u.select.items[0].expr->u.str.s, "\032\b\r");
    sql_stmt_free(st);
    expect_unsupported("SELECT 0x41", "hexadecimal and bit literals");
    expect_unsupported("SELECT x'41'", "hexadecimal and bit literals");
    expect_unsupported("SELECT B'0101'", "hexadecimal and bit literals");
    expect_syntax("SELECT X'4", "X'4", 1);
    expect_items("SELECT _utf8mb4'abc', N'n', x 'alias', 0x", (const char *[]){"'abc'", "'n'",
                 "x", "0x", NULL}, (const char *[]){"abc", "n", "alias", "0x"});
}

static void test_names_and_variables(void **state)
{
    (void)state;
    expect_expr("`weird``name`", "weird`name");
    expect_expr("t.c", "t.c");
    expect_expr("`d`.`t`.`c`", "d.t.c");
    expect_expr("t.select", "t.select");
    expect_expr("_x$1", "_x$1");
    expect_expr("1abc", "1abc");
    expect_expr("@@GLOBAL.Max_Connections", "@@global.max_connections");
    expect_expr("@@session.autocommit", "@@session.autocommit");
    expect_expr("@@local.autocommit", "@@session.autocommit");
    expect_expr("@MyVar", "@myvar");
    expect_expr("@'quoted var'", "@quoted var");
    expect_expr("@`bq`", "@bq");
    expect_expr("DATABASE()", "DATABASE()");
    expect_expr("schema()", "SCHEMA()");
    expect_expr("concat('a', c, 1)", "CONCAT('a', c, 1)");
    expect_expr("IF(a, LEFT(b, 1), 'x')", "IF(a, LEFT(b, 1), 'x')");
    expect_syntax("SELECT from", "from", 1);
    expect_syntax("SELECT ``", "``", 1);
    expect_syntax("SELECT 1 + t.*", "*", 1);
    expect_syntax("SELECT @", "@", 1);

    char sql[200];
    snprintf(sql, sizeof sql, "SELECT %.65s", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
                                             "abcdefghijabcdefghij");
    expect_error(sql, 1059, "42000",
                 "Identifier name 'abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghi"
                 "jabcde' is too long");
    sql[strlen(sql) - 1] = '\0';
    sql_stmt_free(parse(sql));
}

static void test_operators(void **state)
{
    (void)state;
    expect_expr("1 + 2 * 3", "(+ 1 (* 2 3))");
    expect_expr("(1 + 2) * 3", "(* (+ 1 2) 3)");
    expect_expr("10 - 4 - 3", "(- (- 10 4) 3)");
    expect_expr("8 / 2 DIV 2 % 3 MOD 2", "(% (% (DIV (/ 8 2) 2) 3) 2)");
    expect_expr("-a * b", "(* (- a) b)");
    expect_expr("- -5", "(- -5)");
    expect_expr("1--1", "(- 1 -1)");
    expect_expr("+a", "a");
    expect_expr("!a = b", "(= (NOT a) b)");
    expect_expr("NOT a = b", "(NOT (= a b))");
    expect_expr("a = 1 OR b = 2 AND c = 3", "(OR (= a 1) (AND (= b 2) (= c 3)))");
    expect_expr("a || b && c", "(OR a (AND b c))");
    expect_expr("a <> b", "(<> a b)");
    expect_expr("a != b", "(<> a b)");
    expect_expr("a <=> NULL", "(<=> a NULL)");
    expect_expr("a < b", "(< a b)");
    expect_expr("a <= b", "(<= a b)");
    expect_expr("a > b", "(> a b)");
    expect_expr("a >= b", "(>= a b)");
    expect_expr("a = b = c", "(= (= a b) c)");
    expect_expr("a + 1 = b * 2", "(= (+ a 1) (* b 2))");
    expect_expr("id BETWEEN 1 AND 10 AND k = 2", "(AND (BETWEEN id 1 10) (= k 2))");
    expect_expr("id NOT BETWEEN 1 + 1 AND 10", "(NOT BETWEEN id (+ 1 1) 10)");
    expect_expr("id IN (1, 2, 'x')", "(IN id 1 2 'x')");
    expect_expr("id NOT IN (1)", "(NOT IN id 1)");
    expect_expr("c IS NULL", "(IS NULL c)");
    expect_expr("c IS NOT NULL AND d IS NULL", "(AND (IS NOT NULL c) (IS NULL d))");
    expect_expr("a = b IS NULL", "(IS NULL (= a b))");
    expect_expr("c LIKE 'a%'", "(LIKE c 'a%')");
    expect_expr("c NOT LIKE 'a%'", "(NOT (LIKE c 'a%'))");
    expect_expr("NOT NOT a", "(NOT (NOT a))");
    expect_syntax("SELECT 1 +", "", 1);
    expect_syntax("SELECT (1", "", 1);
    expect_syntax("SELECT 1)", ")", 1);
    expect_syntax("SELECT a IS 1", "1", 1);
    expect_syntax("SELECT a BETWEEN 1", "", 1);
    expect_syntax("SELECT a IN ()", ")", 1);
    expect_syntax("SELECT a XOR b", "XOR b", 1);
    expect_syntax("SELECT ~a", "~a", 1);
    expect_unsupported("SELECT CASE WHEN a THEN 1 END", "CASE");
    expect_unsupported("SELECT a REGEXP 'x'", "REGEXP");
}

/* ---- lexing: comments, case, blanks ---------------------------------------------------------- */

static void test_comments(void **state)
{
    (void)state;
    static const char *const same[] = {
        "SELECT c FROM t WHERE id = 1",
        "select C from T where ID = 1 -- trailing comment",
        "SeLeCt c FrOm t WhErE id = 1 # hash comment",
        "SELECT /* inline */ c FROM t /* multi\nline */ WHERE id = 1",
        "SELECT /*+ MAX_EXECUTION_TIME(1000) */ c FROM t WHERE id = 1",
        "/*!40101 SELECT c FROM t WHERE id = 1 */",
        "SELECT c /*! FROM t */ WHERE id = 1",
        "SELECT c /*!50000 FROM t*/ WHERE /*M!100100 id = 1 */",
        "  \n\tSELECT c FROM t WHERE id = 1 ;  \n",
        "SELECT c FROM t WHERE id = 1;;;",
        "SELECT c FROM t WHERE id = 1 --",
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        struct sql_stmt *st = parse_kind(same[i], SQL_SELECT);
        assert_string_equal(st->u.select.from.name, i == 1 ? "T" : "t");
        assert_true(st->u.select.where->u.binary.op == SQL_OP_EQ);
        assert_int_equal(st->u.select.where->u.binary.r->u.i, 1);
        sql_stmt_free(st);
    }
    expect_expr("1 --1", "(- 1 -1)");
    expect_expr("'-- not a comment'", "'-- not a comment'");
    expect_expr("'/* nor this */'", "'/* nor this */'");
    expect_expr("1 /*!+ 2*/", "(+ 1 2)");
    expect_syntax("SELECT 1 /* unterminated", "/* unterminated", 1);
    expect_syntax("SELECT 1 /*! + 2", "", 1);
    expect_syntax("SELECT 1 */", "/", 1);
    /* the text need not be NUL-terminated: only len bytes count */
    struct sql_stmt *st = parse_n("SELECT 1xyz garbage", 8);
    assert_dump(st->u.select.items[0].expr, "1");
    sql_stmt_free(st);
}

/* ---- CREATE TABLE forms and checks ----------------------------------------------------------- */

static void test_create_table_forms(void **state)
{
    (void)state;
    struct sql_stmt *st = parse_kind(
        "CREATE TABLE IF NOT EXISTS d.users (id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, "
        "name VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL COMMENT 'n', "
        "age INT(11) NULL DEFAULT -1, bio TEXT, code char UNIQUE, UNIQUE KEY uq (name, age), "
        "INDEX (age), KEY k2 (code) USING BTREE) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
        "AUTO_INCREMENT=100, COMMENT='users'",
        SQL_CREATE_TABLE);
    const struct sql_create_table *ct = &st->u.create_table;
    assert_true(ct->if_not_exists);
    assert_string_equal(ct->table.db, "d");
    assert_string_equal(ct->table.name, "users");
    assert_int_equal(ct->n_cols, 5);
    assert_int_equal(ct->cols[0].type, SQL_TYPE_BIGINT);
    assert_true(ct->cols[0].is_unsigned);
    assert_true(ct->cols[0].primary_key);
    assert_true(ct->cols[0].not_null);
    assert_true(ct->cols[0].auto_increment);
    assert_int_equal(ct->cols[1].type, SQL_TYPE_VARCHAR);
    assert_int_equal(ct->cols[1].length, 255);
    assert_true(ct->cols[1].not_null);
    assert_int_equal(ct->cols[2].type, SQL_TYPE_INT);
    assert_int_equal(ct->cols[2].length, 11);
    assert_false(ct->cols[2].not_null);
    assert_dump(ct->cols[2].default_value, "-1");
    assert_int_equal(ct->cols[3].type, SQL_TYPE_TEXT);
    assert_int_equal(ct->cols[3].length, -1);
    assert_int_equal(ct->cols[4].type, SQL_TYPE_CHAR);
    assert_int_equal(ct->cols[4].length, 1);
    assert_true(ct->cols[4].unique);
    assert_int_equal(ct->n_pk_cols, 1);
    assert_string_equal(ct->pk_cols[0], "id");
    assert_int_equal(ct->n_indexes, 3);
    assert_string_equal(ct->indexes[0].name, "uq");
    assert_true(ct->indexes[0].unique);
    assert_int_equal(ct->indexes[0].n_cols, 2);
    assert_string_equal(ct->indexes[0].cols[1], "age");
    assert_null(ct->indexes[1].name);
    assert_false(ct->indexes[1].unique);
    assert_string_equal(ct->indexes[2].name, "k2");
    assert_string_equal(ct->engine, "InnoDB");
    assert_int_equal(ct->auto_increment, 100);
    sql_stmt_free(st);

    st = parse_kind("create table t (a int, b varchar(10), primary key (b, a))",
                    SQL_CREATE_TABLE);
    ct = &st->u.create_table;
    assert_int_equal(ct->n_pk_cols, 2);
    assert_string_equal(ct->pk_cols[0], "b");
    assert_string_equal(ct->pk_cols[1], "a");
    assert_true(ct->cols[0].primary_key && ct->cols[0].not_null);
    assert_true(ct->cols[1].primary_key && ct->cols[1].not_null);
    assert_null(ct->engine);
    sql_stmt_free(st);

    st = parse_kind("CREATE TABLE t (id INT KEY, v INT DEFAULT NULL)", SQL_CREATE_TABLE);
    assert_true(st->u.create_table.cols[0].primary_key);
    assert_dump(st->u.create_table.cols[1].default_value, "NULL");
    sql_stmt_free(st);

    st = parse_kind("CREATE DATABASE IF NOT EXISTS sbtest DEFAULT CHARACTER SET = utf8mb4",
                    SQL_CREATE_DATABASE);
    assert_string_equal(st->u.database.name, "sbtest");
    assert_true(st->u.database.if_not_exists);
    sql_stmt_free(st);
    st = parse_kind("create schema s", SQL_CREATE_DATABASE);
    assert_false(st->u.database.if_not_exists);
    sql_stmt_free(st);
    st = parse_kind("DROP DATABASE IF EXISTS sbtest", SQL_DROP_DATABASE);
    assert_string_equal(st->u.database.name, "sbtest");
    assert_true(st->u.database.if_exists);
    sql_stmt_free(st);
    st = parse_kind("drop table a, d.b", SQL_DROP_TABLE);
    assert_false(st->u.drop_table.if_exists);
    assert_int_equal(st->u.drop_table.n_tables, 2);
    assert_string_equal(st->u.drop_table.tables[1].db, "d");
    sql_stmt_free(st);
    st = parse_kind("CREATE UNIQUE INDEX u ON d.t (a, b)", SQL_CREATE_INDEX);
    assert_true(st->u.create_index.unique);
    assert_int_equal(st->u.create_index.n_cols, 2);
    sql_stmt_free(st);

    expect_unsupported("CREATE TABLE t (d DATETIME)", "column type DATETIME");
    expect_unsupported("CREATE TABLE t (a INT, FOREIGN KEY (a) REFERENCES u (id))", "FOREIGN");
    expect_unsupported("CREATE TABLE t LIKE u", "CREATE TABLE ... LIKE");
    expect_unsupported("CREATE VIEW v AS SELECT 1", "CREATE VIEW");
    expect_unsupported("DROP INDEX k_1 ON sbtest1", "DROP INDEX");
    expect_unsupported("ALTER TABLE t ADD c INT", "ALTER TABLE");
    expect_syntax("CREATE TABLE t (a VARCHAR)", ")", 1);
    expect_syntax("CREATE TABLE t (a INT) ENGINE", "", 1);
    expect_syntax("CREATE TABLE t (a INT DEFAULT a)", "a)", 1);
    expect_syntax("CREATE TABLE t (a INT,)", ")", 1);
    expect_syntax("CREATE TABLE t ()", ")", 1);
}

static void test_create_table_checks(void **state)
{
    (void)state;
    static const struct {
        const char *bad, *good;
        int code;
        const char *state, *msg;
    } cases[] = {
        {"CREATE TABLE t (a INT, A INT)", "CREATE TABLE t (a INT, b INT)", 1060, "42S21",
         "Duplicate column name 'A'"},
        {"CREATE TABLE t (a INT PRIMARY KEY, b INT PRIMARY KEY)",
         "CREATE TABLE t (a INT PRIMARY KEY, b INT)", 1068, "42000",
         "Multiple primary key defined"},
        {"CREATE TABLE t (a INT PRIMARY KEY, PRIMARY KEY (a))",
         "CREATE TABLE t (a INT, PRIMARY KEY (a))", 1068, "42000",
         "Multiple primary key defined"},
        {"CREATE TABLE t (a INT, PRIMARY KEY (b))", "CREATE TABLE t (a INT, PRIMARY KEY (A))",
         1072, "42000", "Key column 'b' doesn't exist in table"},
        {"CREATE TABLE t (a INT, KEY k (a, c))", "CREATE TABLE t (a INT, c INT, KEY k (a, c))",
         1072, "42000", "Key column 'c' doesn't exist in table"},
        {"CREATE TABLE t (a INT AUTO_INCREMENT)", "CREATE TABLE t (a INT AUTO_INCREMENT, KEY (a))",
         1075, "42000",
         "Incorrect table definition; there can be only one auto column and it must be defined "
         "as a key"},
        {"CREATE TABLE t (a INT AUTO_INCREMENT KEY, b INT AUTO_INCREMENT UNIQUE)",
         "CREATE TABLE t (a INT AUTO_INCREMENT KEY, b INT UNIQUE)", 1075, "42000",
         "Incorrect table definition; there can be only one auto column and it must be defined "
         "as a key"},
        {"CREATE TABLE t (a INT, b INT AUTO_INCREMENT, PRIMARY KEY (a, b))",
         "CREATE TABLE t (a INT, b INT AUTO_INCREMENT, PRIMARY KEY (b, a))", 1075, "42000",
         "Incorrect table definition; there can be only one auto column and it must be defined "
         "as a key"},
        {"CREATE TABLE t (c CHAR(5) AUTO_INCREMENT PRIMARY KEY)",
         "CREATE TABLE t (c BIGINT AUTO_INCREMENT PRIMARY KEY)", 1063, "42000",
         "Incorrect column specifier for column 'c'"},
        {"CREATE TABLE t (a INT NOT NULL DEFAULT NULL)",
         "CREATE TABLE t (a INT NOT NULL DEFAULT 0)", 1067, "42000",
         "Invalid default value for 'a'"},
        {"CREATE TABLE t (a INT AUTO_INCREMENT DEFAULT 1 KEY)",
         "CREATE TABLE t (a INT AUTO_INCREMENT KEY)", 1067, "42000",
         "Invalid default value for 'a'"},
        {"CREATE TABLE t (b TEXT DEFAULT 'x')", "CREATE TABLE t (b TEXT DEFAULT NULL)", 1101,
         "42000", "BLOB, TEXT, GEOMETRY or JSON column 'b' can't have a default value"},
        {"CREATE TABLE t (a INT NULL, PRIMARY KEY (a))", "CREATE TABLE t (a INT, PRIMARY KEY (a))",
         1171, "42000",
         "All parts of a PRIMARY KEY must be NOT NULL; if you need NULL in a key, use UNIQUE "
         "instead"},
        {"CREATE TABLE t (c CHAR(256))", "CREATE TABLE t (c CHAR(255))", 1074, "42000",
         "Column length too big for column 'c' (max = 255); use BLOB or TEXT instead"},
        {"CREATE TABLE t (v VARCHAR(16384))", "CREATE TABLE t (v VARCHAR(16383))", 1074, "42000",
         "Column length too big for column 'v' (max = 16383); use BLOB or TEXT instead"},
        {"CREATE TABLE t (i INT(256))", "CREATE TABLE t (i INT(255))", 1439, "42000",
         "Display width out of range for column 'i' (max = 255)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_error(cases[i].bad, cases[i].code, cases[i].state, cases[i].msg);
        sql_stmt_free(parse_kind(cases[i].good, SQL_CREATE_TABLE));
    }
}

/* ---- errors ---------------------------------------------------------------------------------- */

static void test_syntax_error_format(void **state)
{
    (void)state;
    expect_error("SELECT FROM t", 1064, "42000",
                 "You have an error in your SQL syntax; check the manual that corresponds to "
                 "your MySQL server version for the right syntax to use near 'FROM t' at line 1");
    expect_syntax("SELEC 1", "SELEC 1", 1);
    expect_syntax("SELECT 1 2", "2", 1);
    expect_syntax("SELECT *\nFROM t\nWHERE id = = 3", "= 3", 3);
    expect_syntax("SELECT 'abc", "'abc", 1);
    expect_syntax("SELECT `abc", "`abc", 1);
    expect_syntax("SELECT 1; SELECT 2", "SELECT 2", 1);
    expect_syntax("SELECT 1 +;", "", 1);
    expect_syntax("SELECT c FROM t WHERE", "", 1);
    /* at most 80 bytes of the rest of the statement */
    expect_syntax("SELECT * FROM t WHERE id = 1 1 1234567890123456789012345678901234567890"
                  "12345678901234567890123456789012345678901234567890",
                  "1 1234567890123456789012345678901234567890123456789012345678901234567890123456"
                  "78",
                  1);
    /* not cutting a UTF-8 character in two: the near text starts "= ", then digits, then
     * "éé" (2 bytes each). With 75 digits byte 80 would fall inside the second é, so 79
     * bytes are shown; with 76 digits exactly 80. */
    char sql[300], near[100];
    for (int digits = 75; digits <= 76; digits++) {
        int n = snprintf(near, sizeof near, "= ");
        for (int i = 0; i < digits; i++)
            near[n++] = (char)('0' + i % 10);
        snprintf(near + n, sizeof near - (size_t)n, "\xc3\xa9");
        snprintf(sql, sizeof sql, "SELECT * FROM t WHERE id = %s\xc3\xa9", near);
        assert_int_equal(strlen(near), (size_t)(digits == 75 ? 79 : 80));
        expect_syntax(sql, near, 1);
    }
    /* a NUL byte ends the quoted text */
    struct sql_stmt *st = NULL;
    struct sql_error err;
    assert_int_equal(sql_parse("SELECT 1 \0 x", 12, &st, &err), -1);
    assert_null(st);
    assert_string_equal(err.msg, SYNTAX "'' at line 1");
}

static void test_empty_and_unsupported(void **state)
{
    (void)state;
    static const char *const empty[] = {"", "   ", ";", " ; ;\n", "/* only a comment */",
                                        "-- dash", "# hash"};
    for (size_t i = 0; i < sizeof empty / sizeof empty[0]; i++)
        expect_error(empty[i], 1065, "42000", "Query was empty");
    struct sql_stmt *st = (struct sql_stmt *)&st;
    struct sql_error err;
    assert_int_equal(sql_parse(NULL, 0, &st, &err), -1);
    assert_null(st);
    assert_int_equal(err.code, 1065);

    expect_unsupported("GRANT ALL ON *.* TO u", "GRANT");
    expect_unsupported("revoke all on *.* from u", "REVOKE");
    expect_unsupported("REPLACE INTO t VALUES (1)", "REPLACE");
    expect_unsupported("TRUNCATE TABLE t", "TRUNCATE");
    expect_unsupported("LOCK TABLES t READ", "LOCK");
    expect_unsupported("FLUSH PRIVILEGES", "FLUSH");
    expect_syntax("FOO BAR", "FOO BAR", 1);
    expect_syntax("(SELECT 1)", "(SELECT 1)", 1);
    expect_syntax("42", "42", 1);
}

static void test_limits(void **state)
{
    (void)state;
    char sql[4096];
    /* 64 levels: the select item's expression and 63 parentheses; 64 parentheses fail at
     * the innermost one */
    for (int parens = SQL_MAX_NESTING - 1; parens <= SQL_MAX_NESTING; parens++) {
        int n = snprintf(sql, sizeof sql, "SELECT ");
        for (int i = 0; i < parens; i++)
            sql[n++] = '(';
        sql[n++] = '1';
        for (int i = 0; i < parens; i++)
            sql[n++] = ')';
        sql[n] = '\0';
        if (parens < SQL_MAX_NESTING) {
            struct sql_stmt *st = parse(sql);
            assert_dump(st->u.select.items[0].expr, "1");
            sql_stmt_free(st);
            continue;
        }
        char want[300];
        snprintf(want, sizeof want,
                 "Expression too deeply nested (more than 64 levels) near '%.80s' at line 1",
                 strchr(sql, '1'));
        expect_error(sql, 1064, "42000", want);
    }
    struct sql_stmt *st;
    int n;
    /* chains of unary operators count too */
    n = snprintf(sql, sizeof sql, "SELECT ");
    for (int i = 0; i < SQL_MAX_NESTING; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "NOT ");
    snprintf(sql + n, sizeof sql - (size_t)n, "1");
    expect_error(sql, 1064, "42000",
                 "Expression too deeply nested (more than 64 levels) near '1' at line 1");
    memmove(sql + 7, sql + 11, strlen(sql + 11) + 1);
    sql_stmt_free(parse(sql));

    /* a left-deep chain: SQL_MAX_EXPR_HEIGHT nodes tall at most */
    n = snprintf(sql, sizeof sql, "SELECT 1");
    for (int i = 1; i < SQL_MAX_EXPR_HEIGHT / 2; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "+1");
    st = parse(sql);
    assert_int_equal(st->u.select.items[0].expr->height, SQL_MAX_EXPR_HEIGHT / 2);
    sql_stmt_free(st);
    n = snprintf(sql, sizeof sql, "SELECT 1");
    for (int i = 1; i < SQL_MAX_EXPR_HEIGHT; i++)
        n += snprintf(sql + n, sizeof sql - (size_t)n, "+1");
    st = parse(sql);
    assert_int_equal(st->u.select.items[0].expr->height, SQL_MAX_EXPR_HEIGHT);
    sql_stmt_free(st);
    snprintf(sql + n, sizeof sql - (size_t)n, "+2+3");
    expect_error(sql, 1064, "42000",
                 "Expression too deeply nested (more than 256 levels) near '+3' at line 1");

    /* longer than SQL_MAX_LEN: refused before reading (the pages stay untouched) */
    char *big = calloc(1, (size_t)SQL_MAX_LEN + 1);
    assert_non_null(big);
    st = (struct sql_stmt *)&st;
    struct sql_error err;
    assert_int_equal(sql_parse(big, (size_t)SQL_MAX_LEN + 1, &st, &err), -1);
    assert_null(st);
    assert_int_equal(err.code, 1153);
    assert_string_equal(err.sqlstate, "08S01");
    assert_string_equal(err.msg, "Got a packet bigger than 'max_allowed_packet' bytes");
    free(big);
}

/* A big multi-row INSERT (sysbench prepare sends thousands of rows per statement). */
static void test_big_insert(void **state)
{
    (void)state;
    enum { ROWS = 20000 };
    size_t cap = 64 + (size_t)ROWS * 200, n = 0;
    char *sql = malloc(cap);
    assert_non_null(sql);
    n += (size_t)snprintf(sql, cap, "INSERT INTO sbtest1(k, c, pad) VALUES");
    for (int i = 0; i < ROWS; i++)
        n += (size_t)snprintf(sql + n, cap - n, "%s(%d, '%0119d', '%059d')", i ? "," : "", i, i,
                              i);
    struct sql_stmt *st = parse_n(sql, n);
    assert_int_equal(st->u.insert.n_rows, ROWS);
    assert_dump(st->u.insert.rows[ROWS - 1].vals[0], "19999");
    assert_int_equal(st->u.insert.rows[ROWS - 1].vals[1]->u.str.len, 119);
    sql_stmt_free(st);
    free(sql);
}

/* ---- fuzz ------------------------------------------------------------------------------------ */

/* Every statement parsed above and more: the prefix fuzz cuts each at every byte. */
static const char *const CORPUS[] = {
    SB_CREATE, SB_CREATE_LUA, SB_INSERT_BULK, SB_INSERT_ONE,
    "CREATE INDEX k_1 ON sbtest1(k)", "SELECT c FROM sbtest1 WHERE id=5014",
    "DROP TABLE IF EXISTS sbtest1", "select @@version_comment limit 1", "SELECT DATABASE()",
    "show databases", "show tables", "SET NAMES utf8mb4", "SET autocommit=1",
    "SELECT @@max_allowed_packet", "SELECT 1", "SELECT 1+1, 'a'",
    "SELECT VERSION(), CURRENT_USER(), USER(), CONNECTION_ID()",
    "CREATE USER 'u'@'%' IDENTIFIED BY 'p' REQUIRE SUBJECT '/CN=c' AND ISSUER '/CN=ca'",
    "create user if not exists alice@localhost identified by 's3''cr\\'et' require ssl",
    "ALTER USER u IDENTIFIED WITH mysql_native_password AS '*6BB4837EB74329105EE4568DDA7D'",
    "DROP USER IF EXISTS a, 'b'@'localhost'", "SHOW SESSION STATUS LIKE 'Ssl%'",
    "SHOW FULL FIELDS IN t IN d", "SHOW CREATE TABLE `db`.`t`", "DESC t",
    "SET @@session.autocommit = 0, GLOBAL a = ON, b = OFF, @U = 'v', @'q' := 2 + 2",
    "SET NAMES 'utf8mb4' COLLATE 'utf8mb4_general_ci', CHARACTER SET utf8",
    "SELECT *, t.c AS x, `k` 'y' FROM sbtest.sbtest1 AS t WHERE id BETWEEN 10 AND 20 ORDER BY "
    "k DESC, id LIMIT 5 OFFSET 10 FOR UPDATE",
    "select t.* from t u where id >= 1 and id < 100 order by id asc limit 3, 7",
    "UPDATE sbtest1 SET k=k+1, c = 'x', t.pad = DEFAULT WHERE id=5014",
    "delete from d.t where id not in (1, 2, 3) and c is not null limit 10",
    "insert d.t value (1, DEFAULT, NULL, -2.5, 'a' \"b\"), (DEFAULT(x), 2, 3, 4, 5)",
    "SELECT -9223372036854775808, 1e3, .5, 'a\\0b', @@GLOBAL.x, @`bq`, !a, NOT b LIKE 'x%'",
    "SELECT /*+ hint */ c /*!50000 FROM t*/ WHERE /*M!100100 id = 1 */ -- end",
    "CREATE TABLE IF NOT EXISTS d.users (id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, name "
    "VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL COMMENT 'n', age INT(11) NULL DEFAULT -1, "
    "UNIQUE KEY uq (name, age), INDEX (age)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    "CREATE DATABASE IF NOT EXISTS sbtest DEFAULT CHARACTER SET = utf8mb4", "USE sbtest",
    "START TRANSACTION WITH CONSISTENT SNAPSHOT", "COMMIT WORK", "ROLLBACK",
};

/* Parses text: a tree (freed) or an error with a message, never both or neither. */
static void parse_any(const char *text, size_t len)
{
    struct sql_stmt *st = (struct sql_stmt *)&st;
    struct sql_error err;
    int rc = sql_parse(text, len, &st, &err);
    if (rc == 0) {
        assert_non_null(st);
        assert_int_equal(err.code, 0);
        sql_stmt_free(st);
        return;
    }
    assert_int_equal(rc, -1);
    assert_null(st);
    assert_true(err.code > 0);
    assert_int_equal(strlen(err.sqlstate), 5);
    assert_true(err.msg[0] != '\0');
    assert_non_null(memchr(err.msg, '\0', sizeof err.msg));
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void test_fuzz_prefixes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof CORPUS / sizeof CORPUS[0]; i++) {
        size_t len = strlen(CORPUS[i]);
        /* each corpus statement is valid whole */
        sql_stmt_free(parse_n(CORPUS[i], len));
        for (size_t cut = 0; cut < len; cut++) {
            /* a heap copy of exactly cut bytes, so reading past it is caught by ASan */
            char *copy = malloc(cut ? cut : 1);
            assert_non_null(copy);
            memcpy(copy, CORPUS[i], cut);
            parse_any(copy, cut);
            parse_any(CORPUS[i] + cut, len - cut);  /* and every suffix */
            free(copy);
        }
    }
}

static void test_fuzz_random(void **state)
{
    (void)state;
    static const char *const pieces[] = {
        "SELECT ", "FROM ", "WHERE ", "(", ")", ",", "'", "\"", "`", "\\", "@", "@@", ".", ";",
        "--", "#", "/*", "*/", "/*!", "/*!40101", "-", "+", "*", "=", "<", ">", "!", "NOT ",
        "IN ", "BETWEEN ", "AND ", "IS ", "NULL ", "LIMIT ", "1", "9223372036854775808", "1.5e",
        "0x", "x", "t.", "CREATE ", "TABLE ", "USER ", "REQUIRE ", "INSERT INTO t VALUES ",
        "SET ", "SHOW ", "\n", " ", "\0", "\xc3\xa9", "\xff",
    };
    enum { CASES = 30000, MAX = 160 };
    unsigned char buf[MAX];
    for (int c = 0; c < CASES; c++) {
        size_t n = 0;
        size_t target = rng() % MAX;
        while (n < target) {
            if (rng() % 3 == 0) {
                buf[n++] = (unsigned char)rng();
                continue;
            }
            const char *piece = pieces[rng() % (sizeof pieces / sizeof pieces[0])];
            size_t len = piece[0] ? strlen(piece) : 1;
            if (n + len > MAX)
                break;
            memcpy(buf + n, piece, len);
            n += len;
        }
        char *copy = malloc(n ? n : 1);
        assert_non_null(copy);
        memcpy(copy, buf, n);
        parse_any(copy, n);
        free(copy);
    }
    /* mutations of valid statements: one byte replaced, one byte dropped */
    for (size_t i = 0; i < sizeof CORPUS / sizeof CORPUS[0]; i++) {
        size_t len = strlen(CORPUS[i]);
        for (int k = 0; k < 200; k++) {
            char *copy = malloc(len);
            assert_non_null(copy);
            memcpy(copy, CORPUS[i], len);
            size_t at = rng() % len;
            if (k % 2) {
                copy[at] = (char)rng();
                parse_any(copy, len);
            } else {
                memmove(copy + at, copy + at + 1, len - at - 1);
                parse_any(copy, len - 1);
            }
            free(copy);
        }
    }
}

static void test_fuzz_deep(void **state)
{
    (void)state;
    enum { N = 200000 };
    char *sql = malloc(N + 16);
    assert_non_null(sql);
    static const char *const fills[] = {"(", "-", "!", "NOT ", "a IN (", "1 BETWEEN 1 AND ",
                                        "f(", "1+", "@@", "'", "/*!", "'x' "};
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        size_t n = (size_t)snprintf(sql, 16, "SELECT ");
        size_t len = strlen(fills[f]);
        while (n + len < N) {
            memcpy(sql + n, fills[f], len);
            n += len;
        }
        parse_any(sql, n);
        sql[n] = '1';
        parse_any(sql, n + 1);
    }
    free(sql);
}

static void test_kind_names(void **state)
{
    (void)state;
    assert_string_equal(sql_stmt_kind_name(SQL_SELECT), "SELECT");
    assert_string_equal(sql_stmt_kind_name(SQL_CREATE_TABLE), "CREATE TABLE");
    assert_string_equal(sql_stmt_kind_name(SQL_ROLLBACK), "ROLLBACK");
    assert_string_equal(sql_stmt_kind_name((enum sql_stmt_kind)999), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sysbench_create),
        cmocka_unit_test(test_sysbench_insert),
        cmocka_unit_test(test_sysbench_point_select),
        cmocka_unit_test(test_client_selects),
        cmocka_unit_test(test_client_session),
        cmocka_unit_test(test_create_user),
        cmocka_unit_test(test_require_options),
        cmocka_unit_test(test_alter_drop_user),
        cmocka_unit_test(test_show),
        cmocka_unit_test(test_show_table),
        cmocka_unit_test(test_use_and_transactions),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_select_clauses),
        cmocka_unit_test(test_update_delete),
        cmocka_unit_test(test_insert_forms),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_names_and_variables),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_comments),
        cmocka_unit_test(test_create_table_forms),
        cmocka_unit_test(test_create_table_checks),
        cmocka_unit_test(test_syntax_error_format),
        cmocka_unit_test(test_empty_and_unsupported),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_big_insert),
        cmocka_unit_test(test_fuzz_prefixes),
        cmocka_unit_test(test_fuzz_random),
        cmocka_unit_test(test_fuzz_deep),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
