/* sql_parse.h — lexer and recursive-descent parser for tidb-server's SQL subset (the
 * statements a mariadb/mysql client session and sysbench's oltp_point_select/oltp_insert
 * send; docs/tidb.md, "The SQL subset"), from one statement's text into a tree.
 *
 * Contract:
 * - sql_parse(sql, len, &stmt, &err) reads exactly len bytes (no NUL needed; NUL bytes are
 *   just bad characters). As MySQL does, leading whitespace and trailing whitespace and ';'
 *   are dropped first; one more ';' followed by another statement is a syntax error (no
 *   multi-statements). Returns 0 with *out a tree the caller frees with sql_stmt_free, or
 *   -1 with *out NULL and err filled, ready for an ERR packet:
 *     1064 42000  syntax: "You have an error in your SQL syntax; check the manual that
 *                 corresponds to your MySQL server version for the right syntax to use near
 *                 '<the statement from the bad token on, at most 80 bytes>' at line N"
 *                 (N counts lines from 1; at the end of the text the quotes are empty).
 *                 Nesting past SQL_MAX_NESTING levels (parentheses, function calls, NOT and
 *                 unary-minus chains) or an expression taller than SQL_MAX_EXPR_HEIGHT gives
 *                 "Expression too deeply nested (more than N levels) near '...' at line N".
 *     1065 42000  "Query was empty" (only blanks, comments and ';').
 *     1235 42000  "This version of TiDB doesn't yet support 'WHAT'": a statement MySQL has
 *                 but the subset does not (GRANT, REPLACE, ALTER TABLE, TRUNCATE, SHOW
 *                 GRANTS, DROP INDEX, SET TRANSACTION, EXPLAIN SELECT, ...) or a known clause
 *                 outside it (joins, GROUP BY, HAVING, UNION, DISTINCT, subqueries, CASE,
 *                 0x1F / x'1F' / b'01' literals, INSERT ... SELECT / ON DUPLICATE KEY, column types
 *                 other than INT/INTEGER/BIGINT/CHAR/VARCHAR/TEXT). Text that is no statement
 *                 at all is a syntax error.
 *     1153 08S01  the text is longer than SQL_MAX_LEN.
 *     1037 HY001  out of memory.
 *   and the checks MySQL makes on the statement alone, with MySQL's codes and wording:
 *   1059 identifier longer than 64 characters; 1470 user name over 32 / host over 255
 *   characters; 1225 REQUIRE SUBJECT/ISSUER/CIPHER given twice; 1136 a VALUES row whose
 *   length differs from the column list (only when a list is given). CREATE TABLE: 1060
 *   duplicate column, 1068 more than one primary key, 1072 key column not in the table,
 *   1063 AUTO_INCREMENT on a non-integer column, 1075 more than one AUTO_INCREMENT column
 *   or one that does not start a key, 1067 DEFAULT NULL on a NOT NULL column or any DEFAULT
 *   on an AUTO_INCREMENT one, 1101 DEFAULT on TEXT, 1171 NULL on a primary key column,
 *   1074 CHAR over 255 / VARCHAR over 16383 (utf8mb4), 1439 INT display width over 255,
 *   1117 more than 4096 columns, 1069 more than 64 indexes, 1070 more than 16 key parts.
 *   Checks needing the catalog (unknown table or column, row length without a column list,
 *   value conversions) are the executor's.
 * - Lexing: keywords are case-insensitive; identifiers are bare ([A-Za-z0-9_$] and bytes
 *   >= 0x80, not all digits) or `back``quoted`, qualified as db.table and table.column
 *   (db.table.column too). Reserved words (SELECT, FROM, KEY, ...) name nothing unless
 *   backquoted; after a '.' any word is a name. Strings are '...' or "..." with MySQL's
 *   escapes (\0 \' \" \b \n \r \t \Z \\, '' and "" doubling; \% and \_ keep their backslash
 *   for LIKE; \x is x otherwise); adjacent strings concatenate ('a' 'b' is 'ab'); an
 *   introducer (N'x', _utf8mb4'x') is dropped. Comments:
 *   "-- " (dash dash then a blank or the end), '#', slash-star; optimizer hints (slash-star-plus)
 *   are ignored; MySQL's executable comments slash-star-bang [5-digit version], and MariaDB's
 *   slash-star-M-bang [5 or 6 digits], are part of the statement whatever the version
 *   (sysbench's trailing "ENGINE = innodb" one is a table option).
 * - Memory: a tree and every string in it live in one arena owned by the statement,
 *   released by sql_stmt_free only (never free a node or string yourself; copy what must
 *   outlive the statement). Strings are NUL-terminated unescaped copies independent of the
 *   input; string literals also carry their length (they may hold NUL bytes).
 * - The tree (types below): sql_stmt.kind selects the member of sql_stmt.u. Lists are
 *   (pointer, count) pairs, in statement order; an absent optional part is NULL / 0 / false.
 *   Table references carry db (NULL: the session's database), name and alias (or NULL).
 *   Identifiers keep their case as written; function names are stored upper-case, system
 *   and user variable names lower-case. Every expression tree is at most
 *   SQL_MAX_EXPR_HEIGHT nodes tall, so consumers may walk it recursively.
 *   Expressions (struct sql_expr):
 *     SQL_E_INT      u.i; a literal in int64 range ("-9223372036854775808" included, a
 *                    minus before a number literal is folded into it); TRUE/FALSE are 1/0
 *     SQL_E_DECIMAL  u.str: a number with '.' or exponent, or an integer outside int64, as
 *                    written ("1.5", "1e3", "18446744073709551615", "-0.5")
 *     SQL_E_STRING   u.str: s (NUL-terminated) and len
 *     SQL_E_NULL     NULL
 *     SQL_E_DEFAULT  DEFAULT, only as a whole VALUES item or UPDATE/SET value
 *     SQL_E_STAR     '*' as the only argument of a function (COUNT(*))
 *     SQL_E_COLUMN   u.col: db, table (NULL when unqualified), name
 *     SQL_E_SYSVAR   u.var: @@[GLOBAL.|SESSION.|LOCAL.]name; scope SQL_SCOPE_DEFAULT when
 *                    no prefix is written (LOCAL is SESSION)
 *     SQL_E_USERVAR  u.var: @name, @'name', @`name` (scope unused)
 *     SQL_E_FUNC     u.func: name (upper-case) and args; CURRENT_USER without parentheses
 *                    is CURRENT_USER()
 *     SQL_E_UNARY    u.unary: SQL_OP_NEG (-x, when x is no number literal), SQL_OP_NOT
 *                    (NOT x, !x); unary plus is dropped
 *     SQL_E_BINARY   u.binary: l op r; ops = <=> <> (and !=) < <= > >= AND (&&) OR (||)
 *                    + - * / DIV % (MOD) LIKE; NOT LIKE is NOT over LIKE. MySQL's precedence
 *                    and left associativity: OR < AND < NOT < comparisons, IS, LIKE, IN,
 *                    BETWEEN < + - < * / DIV % MOD < unary - !
 *     SQL_E_BETWEEN  u.between: x [NOT] BETWEEN lo AND hi (negated)
 *     SQL_E_IN       u.in: x [NOT] IN (list) (negated)
 *     SQL_E_IS_NULL  u.is_null: x IS [NOT] NULL (negated)
 *   Statements (sql_stmt.kind: member of u):
 *     SQL_SELECT: select    items ('*' and t.* have expr NULL and star_table NULL / "t";
 *                 name is the header MySQL shows: the alias, else a column's name, else a
 *                 string literal's value, else the expression's text as written, at most
 *                 256 bytes), from (has_from false without FROM or with FROM DUAL), where,
 *                 order_by, limit (LIMIT n | LIMIT off, n | LIMIT n OFFSET off), for_update
 *                 (FOR UPDATE / LOCK IN SHARE MODE: accepted, no locking implied).
 *     SQL_INSERT: insert    INSERT [INTO] t [(cols)] VALUES|VALUE (...), ...; has_cols
 *                 tells "()" from no list; a row of no values means all defaults.
 *     SQL_UPDATE: update    UPDATE t [alias] SET col = expr|DEFAULT, ... [WHERE] [ORDER BY]
 *                 [LIMIT n].
 *     SQL_DELETE: del       DELETE FROM t [WHERE] [ORDER BY] [LIMIT n].
 *     SQL_CREATE_TABLE: create_table   columns with type, length, flags and DEFAULT literal;
 *                 pk_cols is the primary key in key order whether declared on a column or
 *                 as PRIMARY KEY (...); such columns have primary_key and not_null set.
 *                 indexes holds KEY/INDEX/UNIQUE definitions (name NULL when unnamed) and
 *                 column-level UNIQUE sets unique on the column only. Table options:
 *                 engine, auto_increment (0 when absent), the rest (CHARSET, COLLATE,
 *                 COMMENT, ROW_FORMAT, ...) accepted and dropped.
 *     SQL_CREATE_INDEX: create_index   CREATE [UNIQUE] INDEX name ON t (cols).
 *     SQL_DROP_TABLE: drop_table       DROP TABLE [IF EXISTS] t, ...
 *     SQL_CREATE_DATABASE, SQL_DROP_DATABASE, SQL_USE: database  (DATABASE or SCHEMA; options
 *                 accepted and dropped).
 *     SQL_CREATE_USER, SQL_ALTER_USER, SQL_DROP_USER: user   user specs ('u'@'h', u@h, 'u'
 *                 whose host is "%") each with IDENTIFIED BY 'p' (password),
 *                 IDENTIFIED BY PASSWORD 'hash' or IDENTIFIED WITH plugin [BY 'p' | AS 'hash']
 *                 (auth_plugin lower-case, auth_string); REQUIRE NONE | SSL | X509 |
 *                 SUBJECT/ISSUER/CIPHER '...' in any order, AND optional.
 *     SQL_SHOW_DATABASES, SQL_SHOW_TABLES ([FULL] TABLES [FROM db]), SQL_SHOW_STATUS,
 *     SQL_SHOW_VARIABLES ([GLOBAL|SESSION|LOCAL]), SQL_SHOW_CREATE_TABLE, SQL_SHOW_COLUMNS
 *                 ([FULL] COLUMNS|FIELDS FROM t [FROM db], DESC t, DESCRIBE t, EXPLAIN t),
 *                 SQL_SHOW_WARNINGS: show   with like (LIKE 'pattern') or where.
 *     SQL_SET: set          items of kind SQL_SET_SYSVAR (x = v, @@[scope.]x = v, GLOBAL x = v;
 *                 a scope word carries over to later items without one, as in MySQL),
 *                 SQL_SET_USERVAR (@x = v or :=), SQL_SET_NAMES (NAMES cs|DEFAULT
 *                 [COLLATE c]) and SQL_SET_CHARSET (CHARACTER SET / CHARSET cs|DEFAULT);
 *                 charset NULL for DEFAULT. A bare word as a value (ON, OFF, utf8) is an
 *                 SQL_E_COLUMN of that name; DEFAULT is SQL_E_DEFAULT.
 *     SQL_BEGIN (BEGIN [WORK], START TRANSACTION [READ ONLY|READ WRITE|WITH CONSISTENT
 *                 SNAPSHOT]), SQL_COMMIT, SQL_ROLLBACK ([WORK]): no member.
 */
#ifndef TISIM_SQL_PARSE_H
#define TISIM_SQL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SQL_MAX_LEN (64u << 20)    /* longest statement text accepted: 64 MiB */
#define SQL_MAX_NESTING 64         /* parentheses, calls, NOT / unary chains */
#define SQL_MAX_EXPR_HEIGHT 256    /* nodes on the longest root-to-leaf path */
#define SQL_MAX_IDENT_CHARS 64     /* table, column, index, database names */

#define SQL_ER_PARSE_ERROR 1064
#define SQL_ER_EMPTY_QUERY 1065
#define SQL_ER_NOT_SUPPORTED_YET 1235

struct sql_error {
    int code;          /* MySQL error number; 0 after success */
    char sqlstate[6];  /* 5 characters and NUL */
    char msg[512];
};

enum sql_scope { SQL_SCOPE_DEFAULT, SQL_SCOPE_SESSION, SQL_SCOPE_GLOBAL };

enum sql_expr_kind {
    SQL_E_INT, SQL_E_DECIMAL, SQL_E_STRING, SQL_E_NULL, SQL_E_DEFAULT, SQL_E_STAR,
    SQL_E_COLUMN, SQL_E_SYSVAR, SQL_E_USERVAR, SQL_E_FUNC,
    SQL_E_UNARY, SQL_E_BINARY, SQL_E_BETWEEN, SQL_E_IN, SQL_E_IS_NULL,
};

enum sql_op {
    SQL_OP_NEG, SQL_OP_NOT,
    SQL_OP_EQ, SQL_OP_NSEQ, SQL_OP_NE, SQL_OP_LT, SQL_OP_LE, SQL_OP_GT, SQL_OP_GE,
    SQL_OP_AND, SQL_OP_OR,
    SQL_OP_ADD, SQL_OP_SUB, SQL_OP_MUL, SQL_OP_DIV, SQL_OP_INTDIV, SQL_OP_MOD,
    SQL_OP_LIKE,
};

struct sql_expr {
    enum sql_expr_kind kind;
    int height;  /* 1 for a leaf */
    union {
        int64_t i;                                                 /* INT */
        struct { char *s; size_t len; } str;                       /* STRING, DECIMAL */
        struct { char *db, *table, *name; } col;                   /* COLUMN */
        struct { enum sql_scope scope; char *name; } var;          /* SYSVAR, USERVAR */
        struct { char *name; struct sql_expr **args; size_t n_args; } func;
        struct { enum sql_op op; struct sql_expr *arg; } unary;
        struct { enum sql_op op; struct sql_expr *l, *r; } binary;
        struct { struct sql_expr *x, *lo, *hi; bool negated; } between;
        struct { struct sql_expr *x; struct sql_expr **list; size_t n; bool negated; } in;
        struct { struct sql_expr *x; bool negated; } is_null;
    } u;
};

struct sql_table_ref {
    char *db;     /* NULL: the session's current database */
    char *name;
    char *alias;  /* NULL when none */
};

struct sql_select_item {
    struct sql_expr *expr;  /* NULL for * and t.* */
    char *star_table;       /* "t" for t.*, NULL otherwise */
    char *alias;            /* AS alias, NULL when none */
    char *name;             /* the result column's header (NULL for stars) */
};

struct sql_order_item {
    struct sql_expr *expr;
    bool desc;
};

struct sql_limit {
    bool present;
    uint64_t count;
    uint64_t offset;  /* 0 when not given */
};

struct sql_select {
    struct sql_select_item *items;
    size_t n_items;
    bool has_from;
    struct sql_table_ref from;
    struct sql_expr *where;
    struct sql_order_item *order_by;
    size_t n_order_by;
    struct sql_limit limit;
    bool for_update;
};

struct sql_row {
    struct sql_expr **vals;  /* SQL_E_DEFAULT for DEFAULT */
    size_t n_vals;
};

struct sql_insert {
    struct sql_table_ref table;
    bool has_cols;
    char **cols;
    size_t n_cols;
    struct sql_row *rows;
    size_t n_rows;  /* at least 1 */
};

struct sql_update_set {
    char *table;  /* t of SET t.col = ..., NULL when unqualified */
    char *col;
    struct sql_expr *value;
};

struct sql_update {
    struct sql_table_ref table;
    struct sql_update_set *sets;
    size_t n_sets;
    struct sql_expr *where;
    struct sql_order_item *order_by;
    size_t n_order_by;
    struct sql_limit limit;  /* offset always 0 */
};

struct sql_delete {
    struct sql_table_ref table;
    struct sql_expr *where;
    struct sql_order_item *order_by;
    size_t n_order_by;
    struct sql_limit limit;  /* offset always 0 */
};

enum sql_col_type { SQL_TYPE_INT, SQL_TYPE_BIGINT, SQL_TYPE_CHAR, SQL_TYPE_VARCHAR, SQL_TYPE_TEXT };

struct sql_column_def {
    char *name;
    enum sql_col_type type;
    int64_t length;         /* CHAR(n) (1 when not given), VARCHAR(n), TEXT(n), INT(width);
                               -1 when not given */
    bool is_unsigned;
    bool not_null;          /* NOT NULL, or part of the primary key */
    bool auto_increment;
    bool primary_key;       /* part of the primary key (column or table constraint) */
    bool unique;            /* column-level UNIQUE [KEY] */
    struct sql_expr *default_value;  /* INT, DECIMAL, STRING or NULL literal; NULL if absent */
};

struct sql_index_def {
    char *name;  /* NULL when unnamed */
    bool unique;
    char **cols;
    size_t n_cols;
};

struct sql_create_table {
    struct sql_table_ref table;
    bool if_not_exists;
    struct sql_column_def *cols;
    size_t n_cols;
    char **pk_cols;          /* primary key columns in key order */
    size_t n_pk_cols;        /* 0: no primary key */
    struct sql_index_def *indexes;
    size_t n_indexes;
    char *engine;            /* ENGINE = x as written, NULL when absent */
    uint64_t auto_increment; /* AUTO_INCREMENT = n table option, 0 when absent */
};

struct sql_create_index {
    char *name;
    bool unique;
    struct sql_table_ref table;
    char **cols;
    size_t n_cols;
};

struct sql_drop_table {
    bool if_exists;
    struct sql_table_ref *tables;
    size_t n_tables;
};

struct sql_database {
    char *name;
    bool if_not_exists;  /* CREATE */
    bool if_exists;      /* DROP */
};

enum sql_tls_require {
    SQL_REQUIRE_UNSET,     /* no REQUIRE clause (ALTER USER keeps the old one) */
    SQL_REQUIRE_NONE,
    SQL_REQUIRE_SSL,
    SQL_REQUIRE_X509,
    SQL_REQUIRE_SPECIFIED, /* SUBJECT / ISSUER / CIPHER: see those fields */
};

struct sql_user_spec {
    char *user;         /* "" for the anonymous user */
    char *host;         /* "%" when not given */
    char *password;     /* IDENTIFIED [WITH p] BY 'cleartext'; NULL when not given */
    char *auth_string;  /* IDENTIFIED BY PASSWORD 'hash' / WITH p AS 'hash'; or NULL */
    char *auth_plugin;  /* IDENTIFIED WITH plugin (lower-case); or NULL */
};

struct sql_user {
    bool if_not_exists;  /* CREATE USER */
    bool if_exists;      /* ALTER USER, DROP USER */
    struct sql_user_spec *users;
    size_t n_users;
    enum sql_tls_require require;
    char *subject;       /* REQUIRE SUBJECT '...', NULL when absent */
    char *issuer;
    char *cipher;
};

struct sql_show {
    enum sql_scope scope;        /* STATUS, VARIABLES: GLOBAL or SESSION (LOCAL), or DEFAULT */
    bool full;                   /* SHOW FULL TABLES / COLUMNS */
    char *db;                    /* SHOW TABLES FROM db; NULL otherwise */
    struct sql_table_ref table;  /* CREATE TABLE, COLUMNS (FROM t FROM db sets table.db) */
    char *like;                  /* LIKE 'pattern', NULL when absent */
    struct sql_expr *where;      /* WHERE expr, NULL when absent */
};

enum sql_set_kind { SQL_SET_SYSVAR, SQL_SET_USERVAR, SQL_SET_NAMES, SQL_SET_CHARSET };

struct sql_set_item {
    enum sql_set_kind kind;
    enum sql_scope scope;    /* SYSVAR */
    char *name;              /* SYSVAR, USERVAR: lower-case name */
    struct sql_expr *value;  /* SYSVAR, USERVAR */
    char *charset;           /* NAMES, CHARSET: as written; NULL for DEFAULT */
    char *collate;           /* NAMES ... COLLATE c; NULL when absent */
};

struct sql_set {
    struct sql_set_item *items;
    size_t n_items;
};

enum sql_stmt_kind {
    SQL_SELECT, SQL_INSERT, SQL_UPDATE, SQL_DELETE,
    SQL_CREATE_TABLE, SQL_CREATE_INDEX, SQL_DROP_TABLE,
    SQL_CREATE_DATABASE, SQL_DROP_DATABASE, SQL_USE,
    SQL_CREATE_USER, SQL_ALTER_USER, SQL_DROP_USER,
    SQL_SHOW_DATABASES, SQL_SHOW_TABLES, SQL_SHOW_STATUS, SQL_SHOW_VARIABLES,
    SQL_SHOW_CREATE_TABLE, SQL_SHOW_COLUMNS, SQL_SHOW_WARNINGS,
    SQL_SET, SQL_BEGIN, SQL_COMMIT, SQL_ROLLBACK,
};

struct sql_arena;

struct sql_stmt {
    enum sql_stmt_kind kind;
    union {
        struct sql_select select;
        struct sql_insert insert;
        struct sql_update update;
        struct sql_delete del;
        struct sql_create_table create_table;
        struct sql_create_index create_index;
        struct sql_drop_table drop_table;
        struct sql_database database;
        struct sql_user user;
        struct sql_show show;
        struct sql_set set;
    } u;
    struct sql_arena *arena;  /* private: owns the tree */
};

int sql_parse(const char *sql, size_t len, struct sql_stmt **out, struct sql_error *err);
void sql_stmt_free(struct sql_stmt *stmt);
/* "SELECT", "CREATE TABLE", ... for logs; "?" for a value outside the enum. */
const char *sql_stmt_kind_name(enum sql_stmt_kind kind);

#endif
