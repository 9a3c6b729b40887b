/* sql_parse.c — see sql_parse.h for the contract.
 *
 * Layout: the arena, errors, the lexer (tokens on demand, three of lookahead), the
 * expression grammar, then one function per statement. Every parse function returns 0 /
 * a node, or -1 / NULL after recording the error in p->err; the first error recorded
 * wins. Nodes live in the statement's arena, so a failed parse just drops the arena.
 */
#include "sql_parse.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ----------------------------------------------------------------------------------- */

struct sql_arena {
    struct sql_arena *next;  /* older chunk */
    size_t cap, used;
    max_align_t data[];
};

#define ARENA_FIRST 2048
#define ARENA_MAX_STEP (1u << 20)

static void arena_free(struct sql_arena *a)
{
    while (a) {
        struct sql_arena *next = a->next;
        free(a);
        a = next;
    }
}

/* ---- tokens and the parser's state ----------------------------------------------------------- */

enum tok_type {
    T_EOF, T_ERROR, T_OTHER, T_WORD, T_QIDENT, T_STRING, T_INT, T_DECIMAL, T_HEX,
    T_USERVAR, T_ATAT, T_AT,
    T_LP, T_RP, T_COMMA, T_SEMI, T_DOT, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PERCENT,
    T_EQ, T_NSEQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_ASSIGN, T_OROR, T_ANDAND, T_BANG,
};

struct tok {
    enum tok_type type;
    size_t start, end;  /* byte offsets into the statement */
};

struct parser {
    const char *s;
    size_t len;
    size_t pos;           /* lexer position */
    bool in_exec;         /* inside an executable comment */
    bool host_next;       /* the token after user@ is a host name */
    struct tok last;      /* last token lexed */
    struct tok la[3];     /* lookahead */
    int n_la;
    size_t prev_end;      /* end of the last token consumed */
    int nesting;
    struct sql_arena *arena;
    size_t next_chunk;
    struct sql_error *err;
};

/* ---- errors ---------------------------------------------------------------------------------- */

__attribute__((format(printf, 4, 5)))
static void set_error(struct parser *p, int code, const char *state, const char *fmt, ...)
{
    if (p->err->code != 0)
        return;
    p->err->code = code;
    snprintf(p->err->sqlstate, sizeof p->err->sqlstate, "%s", state);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(p->err->msg, sizeof p->err->msg, "error %d", code);
}

/* Bytes of s (n available) shown after "near": at most 80, not splitting a UTF-8
 * character, stopping at a NUL byte. */
static int near_len(const char *s, size_t n)
{
    size_t k = n < 80 ? n : 80;
    if (k < n)
        while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
            k--;
    const char *nul = memchr(s, '\0', k);
    return (int)(nul ? (size_t)(nul - s) : k);
}

static int line_of(const struct parser *p, size_t at)
{
    int line = 1;
    for (size_t i = 0; i < at && i < p->len; i++)
        line += p->s[i] == '\n';
    return line;
}

static void error_near(struct parser *p, size_t at, const char *what)
{
    if (at > p->len)
        at = p->len;
    int n = near_len(p->s + at, p->len - at);
    set_error(p, SQL_ER_PARSE_ERROR, "42000", "%s near '%.*s' at line %d", what, n, p->s + at,
              line_of(p, at));
}

static const char SYNTAX_MSG[] = "You have an error in your SQL syntax; check the manual that "
                                 "corresponds to your MySQL server version for the right "
                                 "syntax to use";

static void syntax_error(struct parser *p, size_t at)
{
    error_near(p, at, SYNTAX_MSG);
}

static void too_deep(struct parser *p, size_t at, int limit)
{
    char what[80];
    snprintf(what, sizeof what, "Expression too deeply nested (more than %d levels)", limit);
    error_near(p, at, what);
}

__attribute__((format(printf, 2, 3)))
static int unsupported(struct parser *p, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (n < 0)
        what[0] = '\0';
    set_error(p, SQL_ER_NOT_SUPPORTED_YET, "42000", "This version of TiDB doesn't yet support '%s'",
              what);
    return -1;
}

/* ---- arena allocation ------------------------------------------------------------------------ */

/* size zeroed bytes from the arena, or NULL (out of memory, recorded). */
static void *palloc(struct parser *p, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    size = (size + align - 1) / align * align;
    struct sql_arena *a = p->arena;
    if (!a || a->cap - a->used < size) {
        size_t cap = size > p->next_chunk ? size : p->next_chunk;
        a = malloc(sizeof *a + cap);
        if (!a) {
            set_error(p, 1037, "HY001",
                      "Out of memory; restart server and try again (needed %zu bytes)", cap);
            return NULL;
        }
        a->next = p->arena;
        a->cap = cap;
        a->used = 0;
        p->arena = a;
        if (p->next_chunk < ARENA_MAX_STEP)
            p->next_chunk *= 2;
    }
    void *mem = (unsigned char *)a->data + a->used;
    a->used += size;
    memset(mem, 0, size);
    return mem;
}

/* arr (n used of *cap) with room for one more element of size bytes, or NULL. */
static void *grow(struct parser *p, void *arr, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 4;
    void *bigger = palloc(p, ncap * size);
    if (!bigger)
        return NULL;
    if (n)
        memcpy(bigger, arr, n * size);
    *cap = ncap;
    return bigger;
}

/* Appends a zeroed element to the array arr (count n, capacity cap): its address, or NULL. */
#define PUSH(p, arr, n, cap)                                                                  \
    (((arr) = grow((p), (arr), (n), &(cap), sizeof *(arr))) != NULL ? &(arr)[(n)++] : NULL)

static char *copy_bytes(struct parser *p, const char *src, size_t n)
{
    char *s = palloc(p, n + 1);
    if (s && n)
        memcpy(s, src, n);
    return s;
}

static char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static char *copy_case(struct parser *p, const char *src, size_t n, bool upper)
{
    char *s = copy_bytes(p, src, n);
    for (size_t i = 0; s && i < n; i++)
        s[i] = upper ? ascii_upper(s[i]) : ascii_lower(s[i]);
    return s;
}

static bool same_name(const char *a, const char *b)
{
    for (; *a && ascii_lower(*a) == ascii_lower(*b); a++, b++)
        ;
    return *a == '\0' && *b == '\0';
}

/* ---- lexer ----------------------------------------------------------------------------------- */

static bool is_blank(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

static bool is_ident_char(unsigned char c)
{
    return ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || is_digit(c) || c == '_' || c == '$' ||
           c >= 0x80;
}

static bool is_host_char(unsigned char c)
{
    return is_ident_char(c) || c == '.' || c == '%' || c == '-';
}

static bool is_uservar_char(unsigned char c)
{
    return is_ident_char(c) || c == '.';
}

static unsigned char at(const struct parser *p, size_t i)
{
    return i < p->len ? (unsigned char)p->s[i] : 0;
}

static void skip_line(struct parser *p)
{
    while (p->pos < p->len && p->s[p->pos] != '\n')
        p->pos++;
}

/* Past the opener of an executable comment (slash-star-bang or slash-star-M-bang) and its
 * version digits (5, or 5-6 after M!). */
static void open_exec_comment(struct parser *p, size_t i)
{
    bool mariadb = at(p, i + 2) == 'M';
    i += mariadb ? 4 : 3;
    size_t d = 0;
    while (d < 6 && is_digit(at(p, i + d)))
        d++;
    if (d >= 5)
        i += mariadb ? d : 5;
    p->pos = i;
    p->in_exec = true;
}

/* One comment or closer at p->pos: 1 skipped, 0 none there, -1 unterminated. */
static int skip_comment(struct parser *p)
{
    size_t i = p->pos;
    unsigned char c = at(p, i), c1 = at(p, i + 1);
    if (c == '#' || (c == '-' && c1 == '-' && (i + 2 >= p->len || at(p, i + 2) <= ' '))) {
        skip_line(p);
        return 1;
    }
    if (c == '*' && c1 == '/' && p->in_exec) {
        p->in_exec = false;
        p->pos += 2;
        return 1;
    }
    if (c != '/' || c1 != '*')
        return 0;
    if (at(p, i + 2) == '!' || (at(p, i + 2) == 'M' && at(p, i + 3) == '!')) {
        open_exec_comment(p, i);
        return 1;
    }
    for (size_t j = i + 2; j + 1 < p->len; j++) {
        if (p->s[j] == '*' && p->s[j + 1] == '/') {
            p->pos = j + 2;
            return 1;
        }
    }
    return -1;
}

/* Skips blanks and comments: 0, or -1 at an unterminated comment (p->pos at its start). */
static int skip_blanks(struct parser *p)
{
    for (;;) {
        while (p->pos < p->len && is_blank((unsigned char)p->s[p->pos]))
            p->pos++;
        int r = skip_comment(p);
        if (r <= 0)
            return r;
    }
}

static size_t scan(const struct parser *p, size_t i, bool (*ok)(unsigned char))
{
    while (i < p->len && ok((unsigned char)p->s[i]))
        i++;
    return i;
}

/* Quoted text opening at i (quote q): T_STRING-like type, or T_ERROR when unterminated. */
static enum tok_type lex_quoted(const struct parser *p, size_t i, size_t *end, enum tok_type type)
{
    char q = p->s[i];
    for (size_t j = i + 1; j < p->len;) {
        if (p->s[j] == '\\' && q != '`') {
            j += 2;
        } else if (p->s[j] == q) {
            if (j + 1 < p->len && p->s[j + 1] == q) {
                j += 2;
                continue;
            }
            *end = j + 1;
            return type;
        } else {
            j++;
        }
    }
    *end = p->len;
    return T_ERROR;
}

static size_t exponent_end(const struct parser *p, size_t j)
{
    if ((at(p, j) | 0x20) != 'e')
        return j;
    size_t k = j + 1;
    if (at(p, k) == '+' || at(p, k) == '-')
        k++;
    if (!is_digit(at(p, k)))
        return j;
    return scan(p, k, is_digit);
}

static enum tok_type lex_number(const struct parser *p, size_t i, size_t *end)
{
    size_t j = i;
    if (at(p, i) == '0' && (at(p, i + 1) | 0x20) == 'x' && is_hex(at(p, i + 2))) {
        j = scan(p, i + 2, is_hex);
        *end = is_ident_char(at(p, j)) ? scan(p, i, is_ident_char) : j;
        return is_ident_char(at(p, j)) ? T_WORD : T_HEX;
    }
    bool dec = false;
    j = scan(p, j, is_digit);
    if (at(p, j) == '.') {
        dec = true;
        j = scan(p, j + 1, is_digit);
    }
    size_t e = exponent_end(p, j);
    dec = dec || e != j;
    if (!dec && is_ident_char(at(p, j))) {
        *end = scan(p, i, is_ident_char);
        return T_WORD;
    }
    *end = e;
    return dec ? T_DECIMAL : T_INT;
}

/* '@': @@ (system variable), user@host's '@', or a user variable @name / @'name'. */
static enum tok_type lex_at(struct parser *p, size_t i, size_t *end)
{
    *end = i + 1;
    if (at(p, i + 1) == '@') {
        *end = i + 2;
        return T_ATAT;
    }
    bool after_name = p->last.type == T_WORD || p->last.type == T_QIDENT ||
                      p->last.type == T_STRING;
    if (after_name && p->last.end == i) {
        p->host_next = true;
        return T_AT;
    }
    unsigned char c = at(p, i + 1);
    if (c == '\'' || c == '"' || c == '`')
        return lex_quoted(p, i + 1, end, T_USERVAR);
    if (is_uservar_char(c)) {
        *end = scan(p, i + 1, is_uservar_char);
        return T_USERVAR;
    }
    return T_OTHER;
}

/* A two-character operator when the next byte is second, else the one-character one. */
static enum tok_type pair(const struct parser *p, size_t i, size_t *end, char second,
                          enum tok_type two, enum tok_type one)
{
    if (at(p, i + 1) != (unsigned char)second)
        return one;
    *end = i + 2;
    return two;
}

static enum tok_type lex_punct(const struct parser *p, size_t i, size_t *end)
{
    *end = i + 1;
    switch (at(p, i)) {
    case '(': return T_LP;
    case ')': return T_RP;
    case ',': return T_COMMA;
    case ';': return T_SEMI;
    case '.': return T_DOT;
    case '+': return T_PLUS;
    case '-': return T_MINUS;
    case '*': return T_STAR;
    case '/': return T_SLASH;
    case '%': return T_PERCENT;
    case '=': return T_EQ;
    case '>': return at(p, i + 1) == '>' ? pair(p, i, end, '>', T_OTHER, T_GT)
                                         : pair(p, i, end, '=', T_GE, T_GT);
    case '!': return pair(p, i, end, '=', T_NE, T_BANG);
    case ':': return pair(p, i, end, '=', T_ASSIGN, T_OTHER);
    case '|': return pair(p, i, end, '|', T_OROR, T_OTHER);
    case '&': return pair(p, i, end, '&', T_ANDAND, T_OTHER);
    case '<':
        if (at(p, i + 1) == '=' && at(p, i + 2) == '>') {
            *end = i + 3;
            return T_NSEQ;
        }
        if (at(p, i + 1) == '>')
            return pair(p, i, end, '>', T_NE, T_LT);
        if (at(p, i + 1) == '<')
            return pair(p, i, end, '<', T_OTHER, T_LT);
        return pair(p, i, end, '=', T_LE, T_LT);
    default: return T_OTHER;
    }
}

static enum tok_type lex_token(struct parser *p, size_t i, bool host, size_t *end)
{
    unsigned char c = at(p, i);
    if (host && is_host_char(c)) {
        *end = scan(p, i, is_host_char);
        return T_WORD;
    }
    bool after_name = (p->last.type == T_WORD || p->last.type == T_QIDENT) && p->last.end == i;
    if (is_digit(c) || (c == '.' && is_digit(at(p, i + 1)) && !after_name))
        return lex_number(p, i, end);
    if (((c | 0x20) == 'x' || (c | 0x20) == 'b') && at(p, i + 1) == '\'')
        return lex_quoted(p, i + 1, end, T_HEX) == T_HEX ? T_HEX : T_ERROR;  /* x'4A', b'01' */
    if (is_ident_char(c)) {
        *end = scan(p, i, is_ident_char);
        return T_WORD;
    }
    if (c == '\'' || c == '"')
        return lex_quoted(p, i, end, T_STRING);
    if (c == '`')
        return lex_quoted(p, i, end, T_QIDENT);
    if (c == '@')
        return lex_at(p, i, end);
    return lex_punct(p, i, end);
}

static struct tok lex(struct parser *p)
{
    struct tok t = {T_EOF, p->len, p->len};
    bool host = p->host_next;
    p->host_next = false;
    if (skip_blanks(p) != 0) {
        t.type = T_ERROR;
        t.start = p->pos;
    } else if (p->pos >= p->len) {
        t.type = p->in_exec ? T_ERROR : T_EOF;  /* an executable comment left open */
    } else {
        t.start = p->pos;
        t.type = lex_token(p, t.start, host, &t.end);
    }
    p->pos = t.type == T_ERROR ? p->len : t.end;
    p->in_exec = p->in_exec && t.type != T_ERROR;
    p->last = t;
    return t;
}

/* ---- token access ---------------------------------------------------------------------------- */

static void fill_lookahead(struct parser *p, int k)
{
    while (p->n_la <= k)
        p->la[p->n_la++] = lex(p);
}

static const struct tok *peek_at(struct parser *p, int k)
{
    if (p->n_la <= k)
        fill_lookahead(p, k);
    return &p->la[k];
}

static const struct tok *peek(struct parser *p)
{
    return peek_at(p, 0);
}

static struct tok advance(struct parser *p)
{
    struct tok t = *peek(p);
    memmove(&p->la[0], &p->la[1], (size_t)(p->n_la - 1) * sizeof p->la[0]);
    p->n_la--;
    p->prev_end = t.end;
    return t;
}

static bool tok_is_kw(const struct parser *p, const struct tok *t, const char *kw)
{
    if (t->type != T_WORD || ascii_upper(p->s[t->start]) != kw[0])
        return false;
    size_t n = strlen(kw);
    if (t->end - t->start != n)
        return false;
    for (size_t i = 1; i < n; i++)
        if (ascii_upper(p->s[t->start + i]) != kw[i])
            return false;
    return true;
}

static bool at_kw(struct parser *p, const char *kw)
{
    return tok_is_kw(p, peek(p), kw);
}

static bool at_kw_n(struct parser *p, int k, const char *kw)
{
    return tok_is_kw(p, peek_at(p, k), kw);
}

static bool accept_kw(struct parser *p, const char *kw)
{
    if (!at_kw(p, kw))
        return false;
    advance(p);
    return true;
}

static bool accept(struct parser *p, enum tok_type type)
{
    if (peek(p)->type != type)
        return false;
    advance(p);
    return true;
}

/* A syntax error at the next token: -1. */
static int fail(struct parser *p)
{
    syntax_error(p, peek(p)->start);
    return -1;
}

static void *fail_null(struct parser *p)
{
    fail(p);
    return NULL;
}

static int expect(struct parser *p, enum tok_type type)
{
    return accept(p, type) ? 0 : fail(p);
}

static int expect_kw(struct parser *p, const char *kw)
{
    return accept_kw(p, kw) ? 0 : fail(p);
}

/* The next token, a word, upper-cased for an "unsupported" message (at most 40 bytes). */
static int unsupported_word(struct parser *p, const char *prefix)
{
    const struct tok *t = peek(p);
    char word[41];
    size_t n = t->type == T_WORD ? t->end - t->start : 0;
    n = n < sizeof word - 1 ? n : sizeof word - 1;
    for (size_t i = 0; i < n; i++)
        word[i] = ascii_upper(p->s[t->start + i]);
    word[n] = '\0';
    return unsupported(p, "%s%s%s", prefix, *prefix && n ? " " : "", word);
}

static bool at_any_kw(struct parser *p, int k, const char *const *kws)
{
    for (; *kws; kws++)
        if (at_kw_n(p, k, *kws))
            return true;
    return false;
}

/* Words that name nothing unless backquoted (MySQL's reserved words this subset meets),
 * sorted for bsearch. */
static const char *const RESERVED[] = {
    "ALL", "ALTER", "AND", "AS", "ASC", "BETWEEN", "BIGINT", "BINARY", "BY", "CASE", "CHAR",
    "CHARACTER", "CHECK", "COLLATE", "CONSTRAINT", "CONVERT", "CREATE", "CROSS",
    "CURRENT_USER", "DATABASE", "DATABASES", "DEFAULT", "DELETE", "DESC", "DESCRIBE",
    "DISTINCT", "DISTINCTROW", "DIV", "DROP", "DUAL", "ELSE", "EXISTS", "EXPLAIN", "FALSE",
    "FOR", "FOREIGN", "FROM", "FULLTEXT", "GROUP", "HAVING", "IF", "IGNORE", "IN", "INDEX",
    "INNER", "INSERT", "INT", "INTEGER", "INTERVAL", "INTO", "IS", "JOIN", "KEY", "KEYS",
    "LEFT", "LIKE", "LIMIT", "LOCK", "MOD", "NATURAL", "NOT", "NULL", "ON", "OR", "ORDER",
    "OUTER", "PRIMARY", "REFERENCES", "REGEXP", "REPLACE", "REQUIRE", "RIGHT", "RLIKE",
    "SCHEMA", "SCHEMAS", "SELECT", "SET", "SHOW", "SPATIAL", "STRAIGHT_JOIN", "TABLE",
    "THEN", "TO", "TRUE", "UNION", "UNIQUE", "UNSIGNED", "UPDATE", "USAGE", "USE", "USING",
    "VALUES", "VARCHAR", "WHEN", "WHERE", "WITH", "XOR",
};

/* Reserved words that still name functions when '(' follows. */
static const char *const RESERVED_FUNCS[] = {
    "CHAR", "CONVERT", "CURRENT_USER", "DATABASE", "DEFAULT", "IF", "INSERT", "LEFT", "MOD",
    "REPLACE", "RIGHT", "SCHEMA", "VALUES", NULL,
};

static int cmp_word(const void *key, const void *elem)
{
    return strcmp(key, *(const char *const *)elem);
}

static bool is_reserved(struct parser *p, int k)
{
    const struct tok *t = peek_at(p, k);
    char up[16];
    size_t n = t->end - t->start;
    if (t->type != T_WORD || n >= sizeof up)
        return false;
    for (size_t i = 0; i < n; i++)
        up[i] = ascii_upper(p->s[t->start + i]);
    up[n] = '\0';
    return bsearch(up, RESERVED, sizeof RESERVED / sizeof RESERVED[0], sizeof RESERVED[0],
                   cmp_word) != NULL;
}

/* ---- names and strings ----------------------------------------------------------------------- */

/* `x``y` -> x`y */
static char *unquote_ident(struct parser *p, const struct tok *t)
{
    const char *src = p->s + t->start + 1;
    size_t n = t->end - t->start - 2;
    char *d = palloc(p, n + 1);
    size_t k = 0;
    for (size_t i = 0; d && i < n; i++) {
        d[k++] = src[i];
        if (src[i] == '`')
            i++;
    }
    return d;
}

static char unescape_char(char c)
{
    switch (c) {
    case '0': return '\0';
    case 'b': return '\b';
    case 'n': return '\n';
    case 'r': return '\r';
    case 't': return '\t';
    case 'Z': return '\032';
    default: return c;
    }
}

/* The content of the quoted token t (quote included) unescaped into d; its length. d has
 * room for the raw content. */
static size_t unescape_into(const struct parser *p, const struct tok *t, size_t from, char *d)
{
    const char *src = p->s + from + 1;
    size_t n = t->end - from - 2, k = 0;
    char q = p->s[from];
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\\' && q != '`' && i + 1 < n) {
            i++;
            if (src[i] == '%' || src[i] == '_')
                d[k++] = '\\';
            d[k++] = unescape_char(src[i]);
        } else {
            d[k++] = src[i];
            if (src[i] == q)
                i++;  /* '' doubling */
        }
    }
    return k;
}

/* One or more adjacent string tokens, concatenated (amortized: the buffer doubles). */
static int parse_string(struct parser *p, char **out, size_t *out_len)
{
    if (peek(p)->type != T_STRING)
        return fail(p);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    while (peek(p)->type == T_STRING) {
        struct tok t = advance(p);
        size_t raw = t.end - t.start - 2;
        if (len + raw + 1 > cap) {
            size_t ncap = (len + raw + 1) * 2;
            char *bigger = palloc(p, ncap);
            if (!bigger)
                return -1;
            if (len)
                memcpy(bigger, buf, len);
            buf = bigger;
            cap = ncap;
        }
        len += unescape_into(p, &t, t.start, buf + len);
    }
    buf[len] = '\0';
    *out = buf;
    if (out_len)
        *out_len = len;
    return 0;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* A name token (bare word or backquoted) as a string; any_word lets reserved words in. */
static int parse_name_tok(struct parser *p, char **out, bool any_word, bool check_len)
{
    const struct tok *t = peek(p);
    bool word = t->type == T_WORD && (any_word || !is_reserved(p, 0));
    bool quoted = t->type == T_QIDENT && t->end - t->start > 2;
    if (!word && !quoted)
        return fail(p);
    struct tok tk = advance(p);
    *out = word ? copy_bytes(p, p->s + tk.start, tk.end - tk.start) : unquote_ident(p, &tk);
    if (!*out)
        return -1;
    if (check_len && utf8_chars(*out) > SQL_MAX_IDENT_CHARS) {
        set_error(p, 1059, "42000", "Identifier name '%.100s' is too long", *out);
        return -1;
    }
    return 0;
}

/* A table, column, index or database name. */
static int parse_name(struct parser *p, char **out)
{
    return parse_name_tok(p, out, false, true);
}

static bool at_name(struct parser *p, int k)
{
    const struct tok *t = peek_at(p, k);
    return (t->type == T_WORD && !is_reserved(p, k)) || t->type == T_QIDENT;
}

/* A name or a string (charsets, collations, plugins, user names, hosts). */
static int parse_name_or_text(struct parser *p, char **out)
{
    if (peek(p)->type == T_STRING)
        return parse_string(p, out, NULL);
    return parse_name_tok(p, out, true, false);
}

/* db.name or name [[AS] alias] */
static int parse_table_ref(struct parser *p, struct sql_table_ref *ref, bool alias_ok)
{
    if (parse_name(p, &ref->name) != 0)
        return -1;
    if (accept(p, T_DOT)) {
        ref->db = ref->name;
        if (parse_name_tok(p, &ref->name, true, true) != 0)
            return -1;
    }
    if (!alias_ok)
        return 0;
    if (accept_kw(p, "AS") || at_name(p, 0))
        return parse_name_tok(p, &ref->alias, false, false);
    return 0;
}

/* '(' name, ... ')' ; empty_ok allows "()" */
static int parse_name_list(struct parser *p, char ***names, size_t *n, bool empty_ok)
{
    size_t cap = 0;
    if (expect(p, T_LP) != 0)
        return -1;
    if (empty_ok && accept(p, T_RP))
        return 0;
    do {
        char **slot = PUSH(p, *names, *n, cap);
        if (!slot || parse_name(p, slot) != 0)
            return -1;
    } while (accept(p, T_COMMA));
    return expect(p, T_RP);
}

static int parse_uint(struct parser *p, uint64_t *v)
{
    const struct tok *t = peek(p);
    if (t->type != T_INT)
        return fail(p);
    uint64_t x = 0;
    for (size_t i = t->start; i < t->end; i++) {
        unsigned d = (unsigned)(p->s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return fail(p);
        x = x * 10 + d;
    }
    advance(p);
    *v = x;
    return 0;
}

/* ---- expressions ----------------------------------------------------------------------------- */

static int enter(struct parser *p)
{
    if (++p->nesting <= SQL_MAX_NESTING)
        return 0;
    too_deep(p, peek(p)->start, SQL_MAX_NESTING);
    return -1;
}

static struct sql_expr *new_expr(struct parser *p, enum sql_expr_kind kind)
{
    struct sql_expr *e = palloc(p, sizeof *e);
    if (e) {
        e->kind = kind;
        e->height = 1;
    }
    return e;
}

/* e with its height set from a child's height h (the tallest child), or NULL if too tall. */
static struct sql_expr *with_height(struct parser *p, struct sql_expr *e, int h)
{
    if (!e)
        return NULL;
    if (h + 1 > SQL_MAX_EXPR_HEIGHT) {
        too_deep(p, p->prev_end, SQL_MAX_EXPR_HEIGHT);
        return NULL;
    }
    e->height = h + 1;
    return e;
}

static struct sql_expr *mk_unary(struct parser *p, enum sql_op op, struct sql_expr *arg)
{
    if (!arg)
        return NULL;
    struct sql_expr *e = new_expr(p, SQL_E_UNARY);
    if (e) {
        e->u.unary.op = op;
        e->u.unary.arg = arg;
    }
    return with_height(p, e, arg->height);
}

static struct sql_expr *mk_binary(struct parser *p, enum sql_op op, struct sql_expr *l,
                                  struct sql_expr *r)
{
    if (!l || !r)
        return NULL;
    struct sql_expr *e = new_expr(p, SQL_E_BINARY);
    if (e) {
        e->u.binary.op = op;
        e->u.binary.l = l;
        e->u.binary.r = r;
    }
    return with_height(p, e, l->height > r->height ? l->height : r->height);
}

static struct sql_expr *parse_expr(struct parser *p);
static struct sql_expr *parse_unary(struct parser *p);

/* The token t's text with a '-' first when neg, into u.str. */
static int signed_text(struct parser *p, struct sql_expr *e, const struct tok *t, bool neg)
{
    size_t n = t->end - t->start;
    char *s = palloc(p, n + 2);
    if (!s)
        return -1;
    s[0] = '-';
    memcpy(s + neg, p->s + t->start, n);
    e->u.str.s = s;
    e->u.str.len = n + neg;
    return 0;
}

/* The integer token t, negated or not: INT when it fits in int64, DECIMAL text otherwise. */
static struct sql_expr *int_literal(struct parser *p, const struct tok *t, bool neg)
{
    uint64_t v = 0;
    bool big = false;
    for (size_t i = t->start; i < t->end && !big; i++) {
        unsigned d = (unsigned)(p->s[i] - '0');
        big = v > (UINT64_MAX - d) / 10;
        v = v * 10 + d;
    }
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    struct sql_expr *e = new_expr(p, big || v > limit ? SQL_E_DECIMAL : SQL_E_INT);
    if (!e)
        return NULL;
    if (e->kind == SQL_E_INT) {
        e->u.i = !neg ? (int64_t)v : v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
        return e;
    }
    return signed_text(p, e, t, neg) == 0 ? e : NULL;
}

static struct sql_expr *number_literal(struct parser *p, bool neg)
{
    struct tok t = advance(p);
    if (t.type == T_INT)
        return int_literal(p, &t, neg);
    struct sql_expr *e = new_expr(p, SQL_E_DECIMAL);
    return e && signed_text(p, e, &t, neg) == 0 ? e : NULL;
}

static struct sql_expr *string_literal(struct parser *p)
{
    struct sql_expr *e = new_expr(p, SQL_E_STRING);
    if (!e || parse_string(p, &e->u.str.s, &e->u.str.len) != 0)
        return NULL;
    return e;
}

/* @name, @'name', @`name`: the name, lower-case unless keep_case. */
static char *uservar_name(struct parser *p, const struct tok *t, bool keep_case)
{
    char q = p->s[t->start + 1];
    if (q == '\'' || q == '"' || q == '`') {
        char *d = palloc(p, t->end - t->start);
        if (!d)
            return NULL;
        size_t n = unescape_into(p, t, t->start + 1, d);
        for (size_t i = 0; i < n && !keep_case; i++)
            d[i] = ascii_lower(d[i]);
        return d;
    }
    const char *src = p->s + t->start + 1;
    size_t n = t->end - t->start - 1;
    return keep_case ? copy_bytes(p, src, n) : copy_case(p, src, n, false);
}

static bool scope_word(struct parser *p, int k, enum sql_scope *scope)
{
    if (at_kw_n(p, k, "GLOBAL"))
        *scope = SQL_SCOPE_GLOBAL;
    else if (at_kw_n(p, k, "SESSION") || at_kw_n(p, k, "LOCAL"))
        *scope = SQL_SCOPE_SESSION;
    else
        return false;
    return true;
}

/* After "@@": [GLOBAL. | SESSION. | LOCAL.] name, into scope and a lower-case name. */
static int parse_sysvar_name(struct parser *p, enum sql_scope *scope, char **name)
{
    *scope = SQL_SCOPE_DEFAULT;
    if (peek_at(p, 1)->type == T_DOT && scope_word(p, 0, scope)) {
        advance(p);
        advance(p);
    }
    if (peek(p)->type != T_WORD)
        return fail(p);
    struct tok t = advance(p);
    *name = copy_case(p, p->s + t.start, t.end - t.start, false);
    return *name ? 0 : -1;
}

static struct sql_expr *parse_sysvar(struct parser *p)
{
    advance(p);  /* @@ */
    struct sql_expr *e = new_expr(p, SQL_E_SYSVAR);
    if (!e || parse_sysvar_name(p, &e->u.var.scope, &e->u.var.name) != 0)
        return NULL;
    return e;
}

/* name '(' [args | '*'] ')' */
static struct sql_expr *parse_call(struct parser *p)
{
    struct tok name = advance(p);
    advance(p);  /* ( */
    struct sql_expr *e = new_expr(p, SQL_E_FUNC);
    if (!e || !(e->u.func.name = copy_case(p, p->s + name.start, name.end - name.start, true)))
        return NULL;
    if (at_kw(p, "DISTINCT") || at_kw(p, "SELECT"))
        return unsupported(p, "%s", at_kw(p, "SELECT") ? "subqueries" : "DISTINCT in functions"),
               NULL;
    size_t cap = 0;
    int h = 0;
    if (peek(p)->type == T_STAR && peek_at(p, 1)->type == T_RP) {
        advance(p);
        struct sql_expr **slot = PUSH(p, e->u.func.args, e->u.func.n_args, cap);
        if (!slot || !(*slot = new_expr(p, SQL_E_STAR)))
            return NULL;
        h = 1;
    } else if (peek(p)->type != T_RP) {
        do {
            struct sql_expr **slot = PUSH(p, e->u.func.args, e->u.func.n_args, cap);
            if (!slot || !(*slot = parse_expr(p)))
                return NULL;
            h = (*slot)->height > h ? (*slot)->height : h;
        } while (accept(p, T_COMMA));
    }
    if (expect(p, T_RP) != 0)
        return NULL;
    return h ? with_height(p, e, h) : e;
}

/* name [. name [. name]] */
static struct sql_expr *parse_column(struct parser *p)
{
    char *parts[3] = {NULL, NULL, NULL};
    int n = 0;
    if (parse_name(p, &parts[n++]) != 0)
        return NULL;
    while (n < 3 && peek(p)->type == T_DOT) {
        advance(p);
        if (parse_name_tok(p, &parts[n++], true, true) != 0)
            return NULL;
    }
    struct sql_expr *e = new_expr(p, SQL_E_COLUMN);
    if (!e)
        return NULL;
    e->u.col.name = parts[n - 1];
    e->u.col.table = n >= 2 ? parts[n - 2] : NULL;
    e->u.col.db = n == 3 ? parts[0] : NULL;
    return e;
}

/* N'...' or _charset'...': a string; the introducer changes nothing here. */
static bool at_introducer(struct parser *p)
{
    const struct tok *t = peek(p), *next = peek_at(p, 1);
    if (next->type != T_STRING || next->start != t->end)
        return false;
    return p->s[t->start] == '_' || tok_is_kw(p, t, "N");
}

static struct sql_expr *parse_word(struct parser *p)
{
    if (at_introducer(p)) {
        advance(p);
        return string_literal(p);
    }
    if (accept_kw(p, "NULL"))
        return new_expr(p, SQL_E_NULL);
    if (at_kw(p, "TRUE") || at_kw(p, "FALSE")) {
        struct sql_expr *e = new_expr(p, SQL_E_INT);
        if (e)
            e->u.i = at_kw(p, "TRUE");
        advance(p);
        return e;
    }
    if (at_kw(p, "EXISTS"))
        return unsupported(p, "subqueries"), NULL;
    if (at_kw(p, "CASE") || at_kw(p, "INTERVAL"))
        return unsupported_word(p, ""), NULL;
    if (peek_at(p, 1)->type == T_LP && (!is_reserved(p, 0) || at_any_kw(p, 0, RESERVED_FUNCS)))
        return parse_call(p);
    if (at_kw(p, "CURRENT_USER")) {
        struct sql_expr *e = new_expr(p, SQL_E_FUNC);
        if (!e || !(e->u.func.name = copy_bytes(p, "CURRENT_USER", 12)))
            return NULL;
        advance(p);
        return e;
    }
    return parse_column(p);
}

static struct sql_expr *parse_paren(struct parser *p)
{
    advance(p);  /* ( */
    if (at_kw(p, "SELECT"))
        return unsupported(p, "subqueries"), NULL;
    struct sql_expr *e = parse_expr(p);
    if (!e)
        return NULL;
    if (peek(p)->type == T_COMMA)
        return unsupported(p, "row constructors"), NULL;
    return expect(p, T_RP) == 0 ? e : NULL;
}

static struct sql_expr *parse_primary(struct parser *p)
{
    switch (peek(p)->type) {
    case T_INT:
    case T_DECIMAL:
        return number_literal(p, false);
    case T_STRING:
        return string_literal(p);
    case T_HEX:
        return unsupported(p, "hexadecimal and bit literals"), NULL;
    case T_USERVAR: {
        struct tok t = advance(p);
        struct sql_expr *e = new_expr(p, SQL_E_USERVAR);
        if (e && !(e->u.var.name = uservar_name(p, &t, false)))
            return NULL;
        return e;
    }
    case T_ATAT:
        return parse_sysvar(p);
    case T_LP:
        return parse_paren(p);
    case T_QIDENT:
        return parse_column(p);
    case T_WORD:
        return parse_word(p);
    default:
        return fail_null(p);
    }
}

/* A unary operator's operand, one nesting level deeper. */
static struct sql_expr *nested_unary(struct parser *p)
{
    if (enter(p) != 0)
        return NULL;
    struct sql_expr *e = parse_unary(p);
    p->nesting--;
    return e;
}

static struct sql_expr *parse_unary(struct parser *p)
{
    enum tok_type t = peek(p)->type;
    if (t == T_MINUS) {
        advance(p);
        enum tok_type n = peek(p)->type;
        if (n == T_INT || n == T_DECIMAL)
            return number_literal(p, true);
        return mk_unary(p, SQL_OP_NEG, nested_unary(p));
    }
    if (t == T_PLUS) {
        advance(p);
        return nested_unary(p);
    }
    if (t == T_BANG) {
        advance(p);
        return mk_unary(p, SQL_OP_NOT, nested_unary(p));
    }
    return parse_primary(p);
}

static struct sql_expr *parse_mul(struct parser *p)
{
    struct sql_expr *e = parse_unary(p);
    while (e) {
        enum tok_type t = peek(p)->type;
        enum sql_op op;
        if (t == T_STAR)
            op = SQL_OP_MUL;
        else if (t == T_SLASH)
            op = SQL_OP_DIV;
        else if (t == T_PERCENT || at_kw(p, "MOD"))
            op = SQL_OP_MOD;
        else if (at_kw(p, "DIV"))
            op = SQL_OP_INTDIV;
        else
            break;
        advance(p);
        e = mk_binary(p, op, e, parse_unary(p));
    }
    return e;
}

static struct sql_expr *parse_add(struct parser *p)
{
    struct sql_expr *e = parse_mul(p);
    while (e && (peek(p)->type == T_PLUS || peek(p)->type == T_MINUS)) {
        enum sql_op op = advance(p).type == T_PLUS ? SQL_OP_ADD : SQL_OP_SUB;
        e = mk_binary(p, op, e, parse_mul(p));
    }
    return e;
}

static struct sql_expr *parse_predicate(struct parser *p);

static struct sql_expr *parse_in(struct parser *p, struct sql_expr *x, bool neg)
{
    if (expect(p, T_LP) != 0)
        return NULL;
    if (at_kw(p, "SELECT"))
        return unsupported(p, "subqueries"), NULL;
    struct sql_expr *e = new_expr(p, SQL_E_IN);
    if (!e)
        return NULL;
    e->u.in.x = x;
    e->u.in.negated = neg;
    size_t cap = 0;
    int h = x->height;
    do {
        struct sql_expr **slot = PUSH(p, e->u.in.list, e->u.in.n, cap);
        if (!slot || !(*slot = parse_expr(p)))
            return NULL;
        h = (*slot)->height > h ? (*slot)->height : h;
    } while (accept(p, T_COMMA));
    return expect(p, T_RP) == 0 ? with_height(p, e, h) : NULL;
}

static struct sql_expr *parse_between(struct parser *p, struct sql_expr *x, bool neg)
{
    struct sql_expr *e = new_expr(p, SQL_E_BETWEEN);
    if (!e || !(e->u.between.lo = parse_add(p)) || expect_kw(p, "AND") != 0 || enter(p) != 0)
        return NULL;
    e->u.between.hi = parse_predicate(p);
    p->nesting--;
    if (!e->u.between.hi)
        return NULL;
    e->u.between.x = x;
    e->u.between.negated = neg;
    int h = x->height;
    h = e->u.between.lo->height > h ? e->u.between.lo->height : h;
    h = e->u.between.hi->height > h ? e->u.between.hi->height : h;
    return with_height(p, e, h);
}

/* x [NOT] IN (...) | x [NOT] BETWEEN a AND b | x [NOT] LIKE y | x */
static struct sql_expr *parse_predicate(struct parser *p)
{
    static const char *const after_not[] = {"IN", "BETWEEN", "LIKE", "REGEXP", "RLIKE", NULL};
    struct sql_expr *x = parse_add(p);
    if (!x)
        return NULL;
    bool neg = at_kw(p, "NOT") && at_any_kw(p, 1, after_not);
    if (neg)
        advance(p);
    if (accept_kw(p, "IN"))
        return parse_in(p, x, neg);
    if (accept_kw(p, "BETWEEN"))
        return parse_between(p, x, neg);
    if (accept_kw(p, "LIKE")) {
        struct sql_expr *e = mk_binary(p, SQL_OP_LIKE, x, parse_add(p));
        if (e && at_kw(p, "ESCAPE"))
            return unsupported(p, "LIKE ... ESCAPE"), NULL;
        return neg ? mk_unary(p, SQL_OP_NOT, e) : e;
    }
    if (at_kw(p, "REGEXP") || at_kw(p, "RLIKE") || at_kw(p, "SOUNDS"))
        return unsupported_word(p, ""), NULL;
    return x;
}

static bool comparison(enum tok_type t, enum sql_op *op)
{
    switch (t) {
    case T_EQ: *op = SQL_OP_EQ; return true;
    case T_NSEQ: *op = SQL_OP_NSEQ; return true;
    case T_NE: *op = SQL_OP_NE; return true;
    case T_LT: *op = SQL_OP_LT; return true;
    case T_LE: *op = SQL_OP_LE; return true;
    case T_GT: *op = SQL_OP_GT; return true;
    case T_GE: *op = SQL_OP_GE; return true;
    default: return false;
    }
}

static struct sql_expr *parse_is(struct parser *p, struct sql_expr *x)
{
    bool neg = accept_kw(p, "NOT");
    if (at_kw(p, "TRUE") || at_kw(p, "FALSE") || at_kw(p, "UNKNOWN"))
        return unsupported_word(p, neg ? "IS NOT" : "IS"), NULL;
    if (expect_kw(p, "NULL") != 0)
        return NULL;
    struct sql_expr *e = new_expr(p, SQL_E_IS_NULL);
    if (e) {
        e->u.is_null.x = x;
        e->u.is_null.negated = neg;
    }
    return with_height(p, e, x->height);
}

/* predicate { comparison predicate | IS [NOT] NULL } */
static struct sql_expr *parse_boolpri(struct parser *p)
{
    struct sql_expr *e = parse_predicate(p);
    enum sql_op op;
    while (e) {
        if (accept_kw(p, "IS")) {
            e = parse_is(p, e);
        } else if (comparison(peek(p)->type, &op)) {
            advance(p);
            e = mk_binary(p, op, e, parse_predicate(p));
        } else {
            break;
        }
    }
    return e;
}

static struct sql_expr *parse_not(struct parser *p)
{
    if (!accept_kw(p, "NOT"))
        return parse_boolpri(p);
    if (enter(p) != 0)
        return NULL;
    struct sql_expr *e = parse_not(p);
    p->nesting--;
    return mk_unary(p, SQL_OP_NOT, e);
}

static struct sql_expr *parse_and(struct parser *p)
{
    struct sql_expr *e = parse_not(p);
    while (e && (accept_kw(p, "AND") || accept(p, T_ANDAND)))
        e = mk_binary(p, SQL_OP_AND, e, parse_not(p));
    return e;
}

static struct sql_expr *parse_or(struct parser *p)
{
    struct sql_expr *e = parse_and(p);
    while (e && (accept_kw(p, "OR") || accept(p, T_OROR)))
        e = mk_binary(p, SQL_OP_OR, e, parse_and(p));
    return e;
}

static struct sql_expr *parse_expr(struct parser *p)
{
    if (enter(p) != 0)
        return NULL;
    struct sql_expr *e = parse_or(p);
    p->nesting--;
    return e;
}

/* A VALUES item or SET value: DEFAULT (not DEFAULT(col)) or an expression. */
static struct sql_expr *parse_value(struct parser *p)
{
    if (at_kw(p, "DEFAULT") && peek_at(p, 1)->type != T_LP) {
        advance(p);
        return new_expr(p, SQL_E_DEFAULT);
    }
    return parse_expr(p);
}

/* ---- clauses shared by SELECT, UPDATE, DELETE ------------------------------------------------ */

static int parse_where(struct parser *p, struct sql_expr **where)
{
    if (!accept_kw(p, "WHERE"))
        return 0;
    *where = parse_expr(p);
    return *where ? 0 : -1;
}

static int parse_order_by(struct parser *p, struct sql_order_item **items, size_t *n)
{
    if (!accept_kw(p, "ORDER"))
        return 0;
    if (expect_kw(p, "BY") != 0)
        return -1;
    size_t cap = 0;
    do {
        struct sql_order_item *it = PUSH(p, *items, *n, cap);
        if (!it || !(it->expr = parse_expr(p)))
            return -1;
        it->desc = accept_kw(p, "DESC");
        if (!it->desc)
            accept_kw(p, "ASC");
    } while (accept(p, T_COMMA));
    return 0;
}

/* LIMIT n | LIMIT off, n | LIMIT n OFFSET off (the offset forms only when offset_ok). */
static int parse_limit(struct parser *p, struct sql_limit *l, bool offset_ok)
{
    if (!accept_kw(p, "LIMIT"))
        return 0;
    l->present = true;
    uint64_t first;
    if (parse_uint(p, &first) != 0)
        return -1;
    if (offset_ok && accept(p, T_COMMA)) {
        l->offset = first;
        return parse_uint(p, &l->count);
    }
    l->count = first;
    if (offset_ok && accept_kw(p, "OFFSET"))
        return parse_uint(p, &l->offset);
    return 0;
}

static const char *const JOIN_WORDS[] = {
    "JOIN", "INNER", "LEFT", "RIGHT", "CROSS", "NATURAL", "STRAIGHT_JOIN", "USING", NULL,
};

static int no_join(struct parser *p)
{
    if (peek(p)->type == T_COMMA || at_any_kw(p, 0, JOIN_WORDS))
        return unsupported(p, "joins");
    return 0;
}

/* ---- SELECT ---------------------------------------------------------------------------------- */

/* What MySQL shows as the column's header when there is no alias. */
static char *item_header(struct parser *p, const struct sql_expr *e, size_t start)
{
    if (e->kind == SQL_E_COLUMN)
        return e->u.col.name;
    if (e->kind == SQL_E_STRING)
        return e->u.str.s;
    size_t n = p->prev_end > start ? p->prev_end - start : 0;
    if (n > 256) {
        n = 256;
        while (n > 0 && ((unsigned char)p->s[start + n] & 0xC0) == 0x80)
            n--;
    }
    return copy_bytes(p, p->s + start, n);
}

static int parse_alias(struct parser *p, char **alias)
{
    bool as = accept_kw(p, "AS");
    if (peek(p)->type == T_STRING)
        return parse_string(p, alias, NULL);
    if (as || at_name(p, 0))
        return parse_name_tok(p, alias, false, false);
    return 0;
}

static int parse_select_item(struct parser *p, struct sql_select_item *it, bool first)
{
    if (peek(p)->type == T_STAR) {
        if (!first)
            return fail(p);
        advance(p);
        return 0;
    }
    if (at_name(p, 0) && peek_at(p, 1)->type == T_DOT && peek_at(p, 2)->type == T_STAR) {
        if (parse_name(p, &it->star_table) != 0)
            return -1;
        advance(p);
        advance(p);
        return 0;
    }
    size_t start = peek(p)->start;
    if (!(it->expr = parse_expr(p)) || !(it->name = item_header(p, it->expr, start)))
        return -1;
    if (parse_alias(p, &it->alias) != 0)
        return -1;
    if (it->alias)
        it->name = it->alias;
    return 0;
}

static int parse_from(struct parser *p, struct sql_select *s)
{
    if (accept_kw(p, "DUAL"))
        return 0;
    if (peek(p)->type == T_LP)
        return unsupported(p, "derived tables");
    s->has_from = true;
    if (parse_table_ref(p, &s->from, true) != 0)
        return -1;
    return no_join(p);
}

static int parse_locking(struct parser *p, struct sql_select *s)
{
    if (accept_kw(p, "FOR")) {
        if (!accept_kw(p, "SHARE") && expect_kw(p, "UPDATE") != 0)
            return -1;
    } else if (accept_kw(p, "LOCK")) {
        if (expect_kw(p, "IN") != 0 || expect_kw(p, "SHARE") != 0 || expect_kw(p, "MODE") != 0)
            return -1;
    } else {
        return 0;
    }
    s->for_update = true;
    return 0;
}

static int parse_select(struct parser *p, struct sql_stmt *st)
{
    struct sql_select *s = &st->u.select;
    st->kind = SQL_SELECT;
    accept_kw(p, "ALL");
    if (at_kw(p, "DISTINCT") || at_kw(p, "DISTINCTROW"))
        return unsupported(p, "SELECT DISTINCT");
    size_t cap = 0;
    do {
        struct sql_select_item *it = PUSH(p, s->items, s->n_items, cap);
        if (!it || parse_select_item(p, it, s->n_items == 1) != 0)
            return -1;
    } while (accept(p, T_COMMA));
    if (accept_kw(p, "FROM") && parse_from(p, s) != 0)
        return -1;
    if (parse_where(p, &s->where) != 0)
        return -1;
    if (at_kw(p, "GROUP") || at_kw(p, "HAVING") || at_kw(p, "WINDOW"))
        return unsupported_word(p, "");
    if (parse_order_by(p, &s->order_by, &s->n_order_by) != 0 ||
        parse_limit(p, &s->limit, true) != 0 || parse_locking(p, s) != 0)
        return -1;
    if (at_kw(p, "UNION") || at_kw(p, "INTO"))
        return unsupported_word(p, "SELECT ...");
    return 0;
}

/* ---- INSERT, UPDATE, DELETE ------------------------------------------------------------------ */

static int parse_row(struct parser *p, struct sql_insert *ins, struct sql_row *row)
{
    size_t cap = 0;
    if (expect(p, T_LP) != 0)
        return -1;
    if (peek(p)->type != T_RP) {
        do {
            struct sql_expr **slot = PUSH(p, row->vals, row->n_vals, cap);
            if (!slot || !(*slot = parse_value(p)))
                return -1;
        } while (accept(p, T_COMMA));
    }
    if (expect(p, T_RP) != 0)
        return -1;
    if (ins->has_cols && row->n_vals != ins->n_cols) {
        set_error(p, 1136, "21S01", "Column count doesn't match value count at row %zu",
                  ins->n_rows);
        return -1;
    }
    return 0;
}

static int parse_insert(struct parser *p, struct sql_stmt *st)
{
    static const char *const mods[] = {"IGNORE", "LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", NULL};
    struct sql_insert *ins = &st->u.insert;
    st->kind = SQL_INSERT;
    if (at_any_kw(p, 0, mods))
        return unsupported_word(p, "INSERT");
    accept_kw(p, "INTO");
    if (parse_table_ref(p, &ins->table, false) != 0)
        return -1;
    if (peek(p)->type == T_LP && !at_kw_n(p, 1, "SELECT")) {
        ins->has_cols = true;
        if (parse_name_list(p, &ins->cols, &ins->n_cols, true) != 0)
            return -1;
    }
    if (at_kw(p, "SELECT") || at_kw(p, "SET") || peek(p)->type == T_LP)
        return unsupported(p, "INSERT ... %s", at_kw(p, "SET") ? "SET" : "SELECT");
    if (!accept_kw(p, "VALUES") && expect_kw(p, "VALUE") != 0)
        return -1;
    size_t cap = 0;
    do {
        struct sql_row *row = PUSH(p, ins->rows, ins->n_rows, cap);
        if (!row || parse_row(p, ins, row) != 0)
            return -1;
    } while (accept(p, T_COMMA));
    if (at_kw(p, "ON") || at_kw(p, "AS"))
        return unsupported(p, "INSERT ... ON DUPLICATE KEY UPDATE");
    return 0;
}

static int parse_update_set(struct parser *p, struct sql_update_set *set)
{
    if (parse_name(p, &set->col) != 0)
        return -1;
    if (accept(p, T_DOT)) {
        set->table = set->col;
        if (parse_name_tok(p, &set->col, true, true) != 0)
            return -1;
    }
    if (expect(p, T_EQ) != 0)
        return -1;
    set->value = parse_value(p);
    return set->value ? 0 : -1;
}

static int parse_update(struct parser *p, struct sql_stmt *st)
{
    struct sql_update *u = &st->u.update;
    st->kind = SQL_UPDATE;
    if (at_kw(p, "LOW_PRIORITY") || at_kw(p, "IGNORE"))
        return unsupported_word(p, "UPDATE");
    if (parse_table_ref(p, &u->table, true) != 0 || no_join(p) != 0 || expect_kw(p, "SET") != 0)
        return -1;
    size_t cap = 0;
    do {
        struct sql_update_set *set = PUSH(p, u->sets, u->n_sets, cap);
        if (!set || parse_update_set(p, set) != 0)
            return -1;
    } while (accept(p, T_COMMA));
    if (parse_where(p, &u->where) != 0 || parse_order_by(p, &u->order_by, &u->n_order_by) != 0)
        return -1;
    return parse_limit(p, &u->limit, false);
}

static int parse_delete(struct parser *p, struct sql_stmt *st)
{
    static const char *const mods[] = {"LOW_PRIORITY", "QUICK", "IGNORE", NULL};
    struct sql_delete *d = &st->u.del;
    st->kind = SQL_DELETE;
    if (at_any_kw(p, 0, mods))
        return unsupported_word(p, "DELETE");
    if (!at_kw(p, "FROM") && at_name(p, 0))
        return unsupported(p, "multi-table DELETE");
    if (expect_kw(p, "FROM") != 0 || parse_table_ref(p, &d->table, true) != 0 || no_join(p) != 0)
        return -1;
    if (parse_where(p, &d->where) != 0 || parse_order_by(p, &d->order_by, &d->n_order_by) != 0)
        return -1;
    return parse_limit(p, &d->limit, false);
}

/* ---- CREATE TABLE ---------------------------------------------------------------------------- */

#define MAX_COLUMNS 4096
#define MAX_KEYS 64
#define MAX_KEY_PARTS 16

/* What CREATE TABLE's checks need beyond the tree. */
struct table_ctx {
    struct sql_create_table *ct;
    bool *null_given;         /* per column: NULL written explicitly */
    size_t null_cap;
    size_t col_cap, idx_cap;
    int pk_decls;             /* PRIMARY KEY declarations seen */
};

static int parse_length(struct parser *p, int64_t *len)
{
    uint64_t v;
    if (expect(p, T_LP) != 0 || parse_uint(p, &v) != 0 || expect(p, T_RP) != 0)
        return -1;
    *len = v > INT64_MAX ? INT64_MAX : (int64_t)v;
    return 0;
}

static int check_length(struct parser *p, const struct sql_column_def *c)
{
    static const int64_t max[] = {
        [SQL_TYPE_INT] = 255, [SQL_TYPE_BIGINT] = 255, [SQL_TYPE_CHAR] = 255,
        [SQL_TYPE_VARCHAR] = 16383, [SQL_TYPE_TEXT] = 4294967295,
    };
    if (c->length <= max[c->type])
        return 0;
    if (c->type == SQL_TYPE_INT || c->type == SQL_TYPE_BIGINT)
        set_error(p, 1439, "42000", "Display width out of range for column '%.192s' (max = %lld)",
                  c->name, (long long)max[c->type]);
    else
        set_error(p, 1074, "42000",
                  "Column length too big for column '%.192s' (max = %lld); use BLOB or TEXT "
                  "instead",
                  c->name, (long long)max[c->type]);
    return -1;
}

static const char *const OTHER_TYPES[] = {
    "TINYINT", "SMALLINT", "MEDIUMINT", "DECIMAL", "DEC", "NUMERIC", "FLOAT", "DOUBLE", "REAL",
    "BIT", "BOOL", "BOOLEAN", "SERIAL", "DATE", "DATETIME", "TIMESTAMP", "TIME", "YEAR",
    "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "TINYTEXT",
    "MEDIUMTEXT", "LONGTEXT", "ENUM", "SET", "JSON", "GEOMETRY", "POINT", "CHARACTER",
    "NCHAR", "NVARCHAR", "LONG", "VECTOR", NULL,
};

static int parse_col_type(struct parser *p, struct sql_column_def *c)
{
    c->length = -1;
    if (accept_kw(p, "INT") || accept_kw(p, "INTEGER")) {
        c->type = SQL_TYPE_INT;
    } else if (accept_kw(p, "BIGINT")) {
        c->type = SQL_TYPE_BIGINT;
    } else if (accept_kw(p, "CHAR")) {
        c->type = SQL_TYPE_CHAR;
        c->length = 1;
    } else if (accept_kw(p, "VARCHAR")) {
        c->type = SQL_TYPE_VARCHAR;
        if (peek(p)->type != T_LP)
            return fail(p);
    } else if (accept_kw(p, "TEXT")) {
        c->type = SQL_TYPE_TEXT;
    } else {
        return at_any_kw(p, 0, OTHER_TYPES) ? unsupported_word(p, "column type") : fail(p);
    }
    if (peek(p)->type == T_LP && (parse_length(p, &c->length) != 0 || check_length(p, c) != 0))
        return -1;
    if (c->type == SQL_TYPE_INT || c->type == SQL_TYPE_BIGINT) {
        c->is_unsigned = accept_kw(p, "UNSIGNED");
        if (!c->is_unsigned)
            accept_kw(p, "SIGNED");
        accept_kw(p, "ZEROFILL");
    }
    return 0;
}

/* DEFAULT's literal: [+|-] number, string, NULL, TRUE, FALSE. */
static int parse_default(struct parser *p, struct sql_column_def *c)
{
    size_t at_tok = peek(p)->start;
    struct sql_expr *e = parse_unary(p);
    if (!e)
        return -1;
    if (e->kind != SQL_E_INT && e->kind != SQL_E_DECIMAL && e->kind != SQL_E_STRING &&
        e->kind != SQL_E_NULL) {
        syntax_error(p, at_tok);
        return -1;
    }
    c->default_value = e;
    return 0;
}

/* CHARACTER SET | CHARSET */
static bool accept_charset_kw(struct parser *p)
{
    if (accept_kw(p, "CHARSET"))
        return true;
    if (!at_kw(p, "CHARACTER") || !at_kw_n(p, 1, "SET"))
        return false;
    advance(p);
    advance(p);
    return true;
}

/* CHARACTER SET x | CHARSET x | COLLATE x: true when one was there (*rc: 0 or -1). */
static bool skip_charset(struct parser *p, int *rc)
{
    char *ignored;
    if (accept_charset_kw(p) || accept_kw(p, "COLLATE")) {
        accept(p, T_EQ);
        *rc = parse_name_or_text(p, &ignored);
        return true;
    }
    return false;
}

/* One column attribute: 1 parsed, 0 none there, -1 error. */
static int parse_col_attr(struct parser *p, struct table_ctx *x, struct sql_column_def *c,
                          size_t i)
{
    int rc = 0;
    char *ignored;
    if (accept_kw(p, "NOT")) {
        rc = expect_kw(p, "NULL");
        c->not_null = true;
    } else if (accept_kw(p, "NULL")) {
        x->null_given[i] = true;
    } else if (accept_kw(p, "DEFAULT")) {
        rc = parse_default(p, c);
    } else if (accept_kw(p, "AUTO_INCREMENT")) {
        c->auto_increment = true;
    } else if (accept_kw(p, "PRIMARY") || at_kw(p, "KEY")) {
        rc = expect_kw(p, "KEY");
        c->primary_key = true;
        x->pk_decls++;
    } else if (accept_kw(p, "UNIQUE")) {
        accept_kw(p, "KEY");
        c->unique = true;
    } else if (accept_kw(p, "COMMENT")) {
        rc = parse_string(p, &ignored, NULL);
    } else if (accept_kw(p, "BINARY") || skip_charset(p, &rc)) {
        /* accepted, no effect */
    } else {
        static const char *const other[] = {"REFERENCES", "CHECK", "GENERATED", "AS", "ON",
                                            "CONSTRAINT", "VISIBLE", "INVISIBLE", "STORAGE",
                                            "COLUMN_FORMAT", "SERIAL", "SRID", NULL};
        return at_any_kw(p, 0, other) ? unsupported_word(p, "column attribute") : 0;
    }
    return rc == 0 ? 1 : -1;
}

static int check_column(struct parser *p, const struct table_ctx *x, size_t i)
{
    const struct sql_column_def *c = &x->ct->cols[i];
    bool is_int = c->type == SQL_TYPE_INT || c->type == SQL_TYPE_BIGINT;
    bool null_default = c->default_value && c->default_value->kind == SQL_E_NULL;
    if (c->auto_increment && !is_int) {
        set_error(p, 1063, "42000", "Incorrect column specifier for column '%.192s'", c->name);
        return -1;
    }
    if ((c->not_null && null_default) || (c->auto_increment && c->default_value)) {
        set_error(p, 1067, "42000", "Invalid default value for '%.192s'", c->name);
        return -1;
    }
    if (c->type == SQL_TYPE_TEXT && c->default_value && !null_default) {
        set_error(p, 1101, "42000",
                  "BLOB, TEXT, GEOMETRY or JSON column '%.192s' can't have a default value",
                  c->name);
        return -1;
    }
    return 0;
}

static int parse_column_def(struct parser *p, struct table_ctx *x)
{
    struct sql_create_table *ct = x->ct;
    size_t i = ct->n_cols;
    if (i >= MAX_COLUMNS) {
        set_error(p, 1117, "HY000", "Too many columns");
        return -1;
    }
    struct sql_column_def *c = PUSH(p, ct->cols, ct->n_cols, x->col_cap);
    size_t n_null = i;
    bool *null_slot = PUSH(p, x->null_given, n_null, x->null_cap);
    if (!c || !null_slot || parse_name(p, &c->name) != 0 || parse_col_type(p, c) != 0)
        return -1;
    int r;
    while ((r = parse_col_attr(p, x, c, i)) == 1)
        ;
    return r < 0 ? -1 : check_column(p, x, i);
}

static int parse_key_cols(struct parser *p, char ***cols, size_t *n)
{
    size_t cap = 0;
    if (expect(p, T_LP) != 0)
        return -1;
    do {
        if (*n >= MAX_KEY_PARTS) {
            set_error(p, 1070, "42000", "Too many key parts specified; max %d parts allowed",
                      MAX_KEY_PARTS);
            return -1;
        }
        char **slot = PUSH(p, *cols, *n, cap);
        if (!slot || parse_name(p, slot) != 0)
            return -1;
        if (!accept_kw(p, "ASC"))
            accept_kw(p, "DESC");
    } while (accept(p, T_COMMA));
    return expect(p, T_RP);
}

/* [USING BTREE|HASH] */
static int skip_index_type(struct parser *p)
{
    if (!accept_kw(p, "USING"))
        return 0;
    return accept_kw(p, "BTREE") || accept_kw(p, "HASH") ? 0 : fail(p);
}

/* KEY|INDEX [name] (cols) and UNIQUE [KEY|INDEX] [name] (cols) */
static int parse_index_def(struct parser *p, struct table_ctx *x, bool unique)
{
    struct sql_create_table *ct = x->ct;
    if (ct->n_indexes >= MAX_KEYS) {
        set_error(p, 1069, "42000", "Too many keys specified; max %d keys allowed", MAX_KEYS);
        return -1;
    }
    struct sql_index_def *ix = PUSH(p, ct->indexes, ct->n_indexes, x->idx_cap);
    if (!ix)
        return -1;
    ix->unique = unique;
    if (at_name(p, 0) && parse_name(p, &ix->name) != 0)
        return -1;
    if (skip_index_type(p) != 0 || parse_key_cols(p, &ix->cols, &ix->n_cols) != 0)
        return -1;
    return skip_index_type(p);
}

static int parse_table_constraint(struct parser *p, struct table_ctx *x)
{
    if (accept_kw(p, "CONSTRAINT") && at_name(p, 0)) {
        char *ignored;
        if (parse_name(p, &ignored) != 0)
            return -1;
    }
    if (accept_kw(p, "PRIMARY")) {
        x->pk_decls++;
        if (expect_kw(p, "KEY") != 0 || skip_index_type(p) != 0)
            return -1;
        struct sql_create_table *ct = x->ct;
        ct->n_pk_cols = 0;
        return parse_key_cols(p, &ct->pk_cols, &ct->n_pk_cols);
    }
    if (accept_kw(p, "UNIQUE")) {
        if (!accept_kw(p, "KEY"))
            accept_kw(p, "INDEX");
        return parse_index_def(p, x, true);
    }
    if (accept_kw(p, "KEY") || accept_kw(p, "INDEX"))
        return parse_index_def(p, x, false);
    return unsupported_word(p, "");
}

static const char *const CONSTRAINT_WORDS[] = {
    "PRIMARY", "KEY", "INDEX", "UNIQUE", "CONSTRAINT", "FOREIGN", "FULLTEXT", "SPATIAL",
    "CHECK", NULL,
};

static struct sql_column_def *find_column(struct sql_create_table *ct, const char *name)
{
    for (size_t i = 0; i < ct->n_cols; i++)
        if (same_name(ct->cols[i].name, name))
            return &ct->cols[i];
    return NULL;
}

static int key_column_missing(struct parser *p, const char *name)
{
    set_error(p, 1072, "42000", "Key column '%.192s' doesn't exist in table", name);
    return -1;
}

/* The primary key: one declaration, existing NOT NULL columns, listed in pk_cols. */
static int settle_primary_key(struct parser *p, struct table_ctx *x)
{
    struct sql_create_table *ct = x->ct;
    if (x->pk_decls > 1) {
        set_error(p, 1068, "42000", "Multiple primary key defined");
        return -1;
    }
    for (size_t i = 0; i < ct->n_cols && ct->n_pk_cols == 0; i++) {
        if (ct->cols[i].primary_key) {
            size_t cap = 0;
            char **slot = PUSH(p, ct->pk_cols, ct->n_pk_cols, cap);
            if (!slot)
                return -1;
            *slot = ct->cols[i].name;
        }
    }
    for (size_t k = 0; k < ct->n_pk_cols; k++) {
        struct sql_column_def *c = find_column(ct, ct->pk_cols[k]);
        if (!c)
            return key_column_missing(p, ct->pk_cols[k]);
        if (x->null_given[c - ct->cols]) {
            set_error(p, 1171, "42000",
                      "All parts of a PRIMARY KEY must be NOT NULL; if you need NULL in a key, "
                      "use UNIQUE instead");
            return -1;
        }
        c->primary_key = true;
        c->not_null = true;
    }
    return 0;
}

/* Whether name starts the primary key or an index (what AUTO_INCREMENT needs). */
static bool starts_a_key(const struct sql_create_table *ct, const char *name)
{
    if (ct->n_pk_cols > 0 && same_name(ct->pk_cols[0], name))
        return true;
    for (size_t i = 0; i < ct->n_indexes; i++)
        if (same_name(ct->indexes[i].cols[0], name))
            return true;
    return false;
}

static int check_table(struct parser *p, struct table_ctx *x)
{
    struct sql_create_table *ct = x->ct;
    for (size_t i = 0; i < ct->n_cols; i++) {
        for (size_t j = 0; j < i; j++) {
            if (same_name(ct->cols[i].name, ct->cols[j].name)) {
                set_error(p, 1060, "42S21", "Duplicate column name '%.192s'", ct->cols[i].name);
                return -1;
            }
        }
    }
    if (settle_primary_key(p, x) != 0)
        return -1;
    for (size_t i = 0; i < ct->n_indexes; i++)
        for (size_t k = 0; k < ct->indexes[i].n_cols; k++)
            if (!find_column(ct, ct->indexes[i].cols[k]))
                return key_column_missing(p, ct->indexes[i].cols[k]);
    int autos = 0;
    for (size_t i = 0; i < ct->n_cols; i++) {
        const struct sql_column_def *c = &ct->cols[i];
        if (c->auto_increment && (++autos > 1 || !(c->unique || starts_a_key(ct, c->name)))) {
            set_error(p, 1075, "42000",
                      "Incorrect table definition; there can be only one auto column and it "
                      "must be defined as a key");
            return -1;
        }
    }
    return 0;
}

/* The value of a table or database option: a name, string or number (kept when out). */
static int option_value(struct parser *p, char **out)
{
    accept(p, T_EQ);
    enum tok_type t = peek(p)->type;
    if (t == T_INT || t == T_DECIMAL) {
        struct tok tk = advance(p);
        return out && !(*out = copy_bytes(p, p->s + tk.start, tk.end - tk.start)) ? -1 : 0;
    }
    char *v;
    if (parse_name_or_text(p, &v) != 0)
        return -1;
    if (out)
        *out = v;
    return 0;
}

static const char *const TABLE_OPTIONS[] = {
    "AVG_ROW_LENGTH", "CHECKSUM", "COMMENT", "COMPRESSION", "CONNECTION", "DELAY_KEY_WRITE",
    "ENCRYPTION", "INSERT_METHOD", "KEY_BLOCK_SIZE", "MAX_ROWS", "MIN_ROWS", "PACK_KEYS",
    "ROW_FORMAT", "STATS_AUTO_RECALC", "STATS_PERSISTENT", "STATS_SAMPLE_PAGES", "TABLESPACE",
    NULL,
};

/* Table options (ct) or database options (ct NULL), optionally comma-separated. */
static int parse_options(struct parser *p, struct sql_create_table *ct)
{
    for (bool first = true;; first = false) {
        if (!first)
            accept(p, T_COMMA);
        enum tok_type t = peek(p)->type;
        if (t == T_EOF || t == T_SEMI)
            return 0;
        accept_kw(p, "DEFAULT");
        int rc = 0;
        if (skip_charset(p, &rc)) {
            if (rc != 0)
                return -1;
        } else if (ct && accept_kw(p, "ENGINE")) {
            if (option_value(p, &ct->engine) != 0)
                return -1;
        } else if (ct && accept_kw(p, "AUTO_INCREMENT")) {
            accept(p, T_EQ);
            if (parse_uint(p, &ct->auto_increment) != 0)
                return -1;
        } else if (ct && at_kw(p, "PARTITION")) {
            return unsupported(p, "PARTITION BY");
        } else if ((ct && at_any_kw(p, 0, TABLE_OPTIONS)) || at_kw(p, "ENCRYPTION")) {
            advance(p);
            if (option_value(p, NULL) != 0)
                return -1;
        } else {
            return fail(p);
        }
    }
}

static int parse_if_not_exists(struct parser *p, bool *flag)
{
    if (!accept_kw(p, "IF"))
        return 0;
    *flag = true;
    return expect_kw(p, "NOT") == 0 && expect_kw(p, "EXISTS") == 0 ? 0 : -1;
}

static int parse_if_exists(struct parser *p, bool *flag)
{
    if (!accept_kw(p, "IF"))
        return 0;
    *flag = true;
    return expect_kw(p, "EXISTS");
}

static int parse_create_table(struct parser *p, struct sql_stmt *st)
{
    struct sql_create_table *ct = &st->u.create_table;
    struct table_ctx x = {.ct = ct};
    st->kind = SQL_CREATE_TABLE;
    if (parse_if_not_exists(p, &ct->if_not_exists) != 0 || parse_table_ref(p, &ct->table, false))
        return -1;
    if (at_kw(p, "LIKE") || at_kw(p, "AS") || at_kw(p, "SELECT") ||
        (peek(p)->type == T_LP && (at_kw_n(p, 1, "LIKE") || at_kw_n(p, 1, "SELECT"))))
        return unsupported(p, "CREATE TABLE ... %s", at_kw_n(p, 1, "LIKE") || at_kw(p, "LIKE")
                                                       ? "LIKE" : "SELECT");
    if (expect(p, T_LP) != 0)
        return -1;
    do {
        int rc = at_any_kw(p, 0, CONSTRAINT_WORDS) ? parse_table_constraint(p, &x)
                                                  : parse_column_def(p, &x);
        if (rc != 0)
            return -1;
    } while (accept(p, T_COMMA));
    if (expect(p, T_RP) != 0 || parse_options(p, ct) != 0)
        return -1;
    return check_table(p, &x);
}

static int parse_create_index(struct parser *p, struct sql_stmt *st, bool unique)
{
    struct sql_create_index *ci = &st->u.create_index;
    st->kind = SQL_CREATE_INDEX;
    ci->unique = unique;
    if (parse_name(p, &ci->name) != 0 || skip_index_type(p) != 0 || expect_kw(p, "ON") != 0)
        return -1;
    if (parse_table_ref(p, &ci->table, false) != 0 || parse_key_cols(p, &ci->cols, &ci->n_cols))
        return -1;
    return skip_index_type(p);
}

/* ---- databases ------------------------------------------------------------------------------- */

static int parse_create_database(struct parser *p, struct sql_stmt *st)
{
    struct sql_database *db = &st->u.database;
    st->kind = SQL_CREATE_DATABASE;
    if (parse_if_not_exists(p, &db->if_not_exists) != 0 || parse_name(p, &db->name) != 0)
        return -1;
    return parse_options(p, NULL);
}

static int parse_use(struct parser *p, struct sql_stmt *st)
{
    st->kind = SQL_USE;
    return parse_name(p, &st->u.database.name);
}

/* ---- users ----------------------------------------------------------------------------------- */

static int too_long(struct parser *p, const char *s, const char *what, size_t max)
{
    if (utf8_chars(s) <= max)
        return 0;
    set_error(p, 1470, "HY000", "String '%.70s' is too long for %s (should be no longer than %zu)",
              s, what, max);
    return -1;
}

/* 'u'@'h', u@h, 'u' (host '%'), `u`@`h`, "u"@"h" */
static int parse_user_name(struct parser *p, struct sql_user_spec *u)
{
    if (parse_name_or_text(p, &u->user) != 0)
        return -1;
    if (accept(p, T_AT)) {
        if (parse_name_or_text(p, &u->host) != 0)
            return -1;
    } else if (peek(p)->type == T_USERVAR) {
        struct tok t = advance(p);
        if (!(u->host = uservar_name(p, &t, true)))
            return -1;
    } else if (!(u->host = copy_bytes(p, "%", 1))) {
        return -1;
    }
    if (too_long(p, u->user, "user name", 32) != 0)
        return -1;
    return too_long(p, u->host, "host name", 255);
}

/* IDENTIFIED BY 'p' | BY PASSWORD 'hash' | WITH plugin [BY 'p' | AS 'hash'] */
static int parse_identified(struct parser *p, struct sql_user_spec *u)
{
    if (!accept_kw(p, "IDENTIFIED"))
        return 0;
    if (accept_kw(p, "BY")) {
        if (accept_kw(p, "PASSWORD"))
            return parse_string(p, &u->auth_string, NULL);
        return parse_string(p, &u->password, NULL);
    }
    if (expect_kw(p, "WITH") != 0 || parse_name_or_text(p, &u->auth_plugin) != 0)
        return -1;
    for (char *c = u->auth_plugin; *c; c++)
        *c = ascii_lower(*c);
    if (accept_kw(p, "BY"))
        return parse_string(p, &u->password, NULL);
    if (accept_kw(p, "AS"))
        return parse_string(p, &u->auth_string, NULL);
    return 0;
}

/* SUBJECT '...' | ISSUER '...' | CIPHER '...' into its field, refusing a repeat. */
static int parse_tls_option(struct parser *p, struct sql_user *u)
{
    static const char *const names[] = {"SUBJECT", "ISSUER", "CIPHER"};
    char **fields[] = {&u->subject, &u->issuer, &u->cipher};
    for (int i = 0; i < 3; i++) {
        if (!accept_kw(p, names[i]))
            continue;
        if (*fields[i]) {
            set_error(p, 1225, "HY000", "Option '%s' used twice in statement", names[i]);
            return -1;
        }
        return parse_string(p, fields[i], NULL);
    }
    return fail(p);
}

static int parse_require(struct parser *p, struct sql_user *u)
{
    if (!accept_kw(p, "REQUIRE"))
        return 0;
    if (accept_kw(p, "NONE"))
        u->require = SQL_REQUIRE_NONE;
    else if (accept_kw(p, "SSL"))
        u->require = SQL_REQUIRE_SSL;
    else if (accept_kw(p, "X509"))
        u->require = SQL_REQUIRE_X509;
    if (u->require != SQL_REQUIRE_UNSET)
        return 0;
    u->require = SQL_REQUIRE_SPECIFIED;
    do {
        if (parse_tls_option(p, u) != 0)
            return -1;
    } while (accept_kw(p, "AND") || at_kw(p, "SUBJECT") || at_kw(p, "ISSUER") ||
             at_kw(p, "CIPHER"));
    return 0;
}

/* user [IDENTIFIED ...], ... [REQUIRE ...] (with_auth) or user, ... */
static int parse_users(struct parser *p, struct sql_user *u, bool with_auth)
{
    size_t cap = 0;
    do {
        struct sql_user_spec *spec = PUSH(p, u->users, u->n_users, cap);
        if (!spec || parse_user_name(p, spec) != 0)
            return -1;
        if (with_auth && parse_identified(p, spec) != 0)
            return -1;
    } while (accept(p, T_COMMA));
    if (!with_auth)
        return 0;
    if (parse_require(p, u) != 0)
        return -1;
    static const char *const later[] = {"WITH", "PASSWORD", "ACCOUNT", "COMMENT", "ATTRIBUTE",
                                        "FAILED_LOGIN_ATTEMPTS", "PASSWORD_LOCK_TIME",
                                        "DEFAULT", NULL};
    return at_any_kw(p, 0, later) ? unsupported_word(p, "user option") : 0;
}

static int parse_create_user(struct parser *p, struct sql_stmt *st)
{
    st->kind = SQL_CREATE_USER;
    if (parse_if_not_exists(p, &st->u.user.if_not_exists) != 0)
        return -1;
    return parse_users(p, &st->u.user, true);
}

/* ---- CREATE, DROP, ALTER dispatch ------------------------------------------------------------ */

static int parse_create(struct parser *p, struct sql_stmt *st)
{
    if (accept_kw(p, "TABLE"))
        return parse_create_table(p, st);
    if (at_kw(p, "UNIQUE") && (at_kw_n(p, 1, "INDEX") || at_kw_n(p, 1, "KEY"))) {
        advance(p);
        advance(p);
        return parse_create_index(p, st, true);
    }
    if (accept_kw(p, "INDEX"))
        return parse_create_index(p, st, false);
    if (accept_kw(p, "DATABASE") || accept_kw(p, "SCHEMA"))
        return parse_create_database(p, st);
    if (accept_kw(p, "USER"))
        return parse_create_user(p, st);
    return peek(p)->type == T_WORD ? unsupported_word(p, "CREATE") : fail(p);
}

static int parse_drop_table(struct parser *p, struct sql_stmt *st)
{
    struct sql_drop_table *d = &st->u.drop_table;
    st->kind = SQL_DROP_TABLE;
    if (parse_if_exists(p, &d->if_exists) != 0)
        return -1;
    size_t cap = 0;
    do {
        struct sql_table_ref *t = PUSH(p, d->tables, d->n_tables, cap);
        if (!t || parse_table_ref(p, t, false) != 0)
            return -1;
    } while (accept(p, T_COMMA));
    if (!accept_kw(p, "RESTRICT"))
        accept_kw(p, "CASCADE");
    return 0;
}

static int parse_drop(struct parser *p, struct sql_stmt *st)
{
    if (accept_kw(p, "TABLE"))
        return parse_drop_table(p, st);
    if (accept_kw(p, "DATABASE") || accept_kw(p, "SCHEMA")) {
        st->kind = SQL_DROP_DATABASE;
        if (parse_if_exists(p, &st->u.database.if_exists) != 0)
            return -1;
        return parse_name(p, &st->u.database.name);
    }
    if (accept_kw(p, "USER")) {
        st->kind = SQL_DROP_USER;
        if (parse_if_exists(p, &st->u.user.if_exists) != 0)
            return -1;
        return parse_users(p, &st->u.user, false);
    }
    return peek(p)->type == T_WORD ? unsupported_word(p, "DROP") : fail(p);
}

static int parse_alter(struct parser *p, struct sql_stmt *st)
{
    if (!accept_kw(p, "USER"))
        return peek(p)->type == T_WORD ? unsupported_word(p, "ALTER") : fail(p);
    st->kind = SQL_ALTER_USER;
    if (parse_if_exists(p, &st->u.user.if_exists) != 0)
        return -1;
    return parse_users(p, &st->u.user, true);
}

/* ---- SHOW, DESCRIBE -------------------------------------------------------------------------- */

static int parse_show_filter(struct parser *p, struct sql_show *sh)
{
    if (accept_kw(p, "LIKE"))
        return parse_string(p, &sh->like, NULL);
    return parse_where(p, &sh->where);
}

static bool accept_from_in(struct parser *p)
{
    return accept_kw(p, "FROM") || accept_kw(p, "IN");
}

static int parse_show_columns(struct parser *p, struct sql_stmt *st)
{
    struct sql_show *sh = &st->u.show;
    st->kind = SQL_SHOW_COLUMNS;
    if (!accept_from_in(p))
        return fail(p);
    if (parse_table_ref(p, &sh->table, false) != 0)
        return -1;
    if (accept_from_in(p) && parse_name(p, &sh->table.db) != 0)
        return -1;
    return parse_show_filter(p, sh);
}

static int parse_show_tables(struct parser *p, struct sql_stmt *st)
{
    struct sql_show *sh = &st->u.show;
    st->kind = SQL_SHOW_TABLES;
    if (accept_from_in(p) && parse_name(p, &sh->db) != 0)
        return -1;
    return parse_show_filter(p, sh);
}

static int parse_show(struct parser *p, struct sql_stmt *st)
{
    struct sql_show *sh = &st->u.show;
    bool scoped = scope_word(p, 0, &sh->scope);
    if (scoped)
        advance(p);
    if (at_kw(p, "STATUS") || at_kw(p, "VARIABLES")) {
        st->kind = at_kw(p, "STATUS") ? SQL_SHOW_STATUS : SQL_SHOW_VARIABLES;
        advance(p);
        return parse_show_filter(p, sh);
    }
    if (scoped)
        return fail(p);
    sh->full = accept_kw(p, "FULL");
    if (accept_kw(p, "TABLES"))
        return parse_show_tables(p, st);
    if (accept_kw(p, "COLUMNS") || accept_kw(p, "FIELDS"))
        return parse_show_columns(p, st);
    if (sh->full)
        return peek(p)->type == T_WORD ? unsupported_word(p, "SHOW FULL") : fail(p);
    if (accept_kw(p, "DATABASES") || accept_kw(p, "SCHEMAS")) {
        st->kind = SQL_SHOW_DATABASES;
        return parse_show_filter(p, sh);
    }
    if (at_kw(p, "CREATE") && at_kw_n(p, 1, "TABLE")) {
        advance(p);
        advance(p);
        st->kind = SQL_SHOW_CREATE_TABLE;
        return parse_table_ref(p, &sh->table, false);
    }
    if (accept_kw(p, "WARNINGS")) {
        st->kind = SQL_SHOW_WARNINGS;
        return 0;
    }
    const char *what = accept_kw(p, "CREATE") ? "SHOW CREATE" : "SHOW";
    return peek(p)->type == T_WORD ? unsupported_word(p, what) : fail(p);
}

static int parse_describe(struct parser *p, struct sql_stmt *st)
{
    static const char *const explained[] = {"SELECT", "INSERT", "UPDATE", "DELETE", "REPLACE",
                                            "FORMAT", "ANALYZE", "FOR", "WITH", "TABLE",
                                            "EXTENDED", "PARTITIONS", NULL};
    if (at_any_kw(p, 0, explained) || peek(p)->type == T_LP)
        return unsupported(p, "EXPLAIN");
    st->kind = SQL_SHOW_COLUMNS;
    return parse_table_ref(p, &st->u.show.table, false);
}

/* ---- SET ------------------------------------------------------------------------------------- */

/* A SET value: DEFAULT, a bare word such as ON / OFF / utf8 (as a column name), or an
 * expression. */
static struct sql_expr *parse_set_value(struct parser *p)
{
    enum tok_type after = peek_at(p, 1)->type;
    bool alone = after == T_COMMA || after == T_EOF || after == T_SEMI;
    bool literal = at_kw(p, "NULL") || at_kw(p, "TRUE") || at_kw(p, "FALSE");
    if (peek(p)->type != T_WORD || !alone || literal)
        return parse_value(p);
    if (at_kw(p, "DEFAULT"))
        return parse_value(p);
    struct tok t = advance(p);
    struct sql_expr *e = new_expr(p, SQL_E_COLUMN);
    if (e && !(e->u.col.name = copy_bytes(p, p->s + t.start, t.end - t.start)))
        return NULL;
    return e;
}

static int parse_set_charset(struct parser *p, struct sql_set_item *it, bool names)
{
    it->kind = names ? SQL_SET_NAMES : SQL_SET_CHARSET;
    if (!accept_kw(p, "DEFAULT") && parse_name_or_text(p, &it->charset) != 0)
        return -1;
    if (names && it->charset && accept_kw(p, "COLLATE"))
        return parse_name_or_text(p, &it->collate);
    return 0;
}

static int parse_assign_op(struct parser *p)
{
    return accept(p, T_EQ) || accept(p, T_ASSIGN) ? 0 : fail(p);
}

static int parse_set_item(struct parser *p, struct sql_set_item *it, enum sql_scope *scope)
{
    if (accept_kw(p, "NAMES"))
        return parse_set_charset(p, it, true);
    if (accept_charset_kw(p))
        return parse_set_charset(p, it, false);
    if (peek(p)->type == T_USERVAR) {
        struct tok t = advance(p);
        it->kind = SQL_SET_USERVAR;
        if (!(it->name = uservar_name(p, &t, false)) || parse_assign_op(p) != 0)
            return -1;
        return (it->value = parse_expr(p)) ? 0 : -1;
    }
    it->kind = SQL_SET_SYSVAR;
    if (accept(p, T_ATAT)) {
        if (parse_sysvar_name(p, &it->scope, &it->name) != 0)
            return -1;
    } else {
        if (peek_at(p, 1)->type == T_WORD && scope_word(p, 0, scope))
            advance(p);
        it->scope = *scope;
        if (parse_sysvar_name(p, &(enum sql_scope){SQL_SCOPE_DEFAULT}, &it->name) != 0)
            return -1;
    }
    if (parse_assign_op(p) != 0)
        return -1;
    return (it->value = parse_set_value(p)) ? 0 : -1;
}

static int parse_set(struct parser *p, struct sql_stmt *st)
{
    static const char *const other[] = {"TRANSACTION", "PASSWORD", "ROLE", "DEFAULT", NULL};
    struct sql_set *s = &st->u.set;
    st->kind = SQL_SET;
    int k = scope_word(p, 0, &(enum sql_scope){SQL_SCOPE_DEFAULT}) ? 1 : 0;
    if (at_any_kw(p, k, other)) {
        if (k)
            advance(p);
        return unsupported_word(p, "SET");
    }
    enum sql_scope scope = SQL_SCOPE_DEFAULT;
    size_t cap = 0;
    do {
        struct sql_set_item *it = PUSH(p, s->items, s->n_items, cap);
        if (!it || parse_set_item(p, it, &scope) != 0)
            return -1;
    } while (accept(p, T_COMMA));
    return 0;
}

/* ---- transactions ---------------------------------------------------------------------------- */

static int parse_begin(struct parser *p, struct sql_stmt *st)
{
    st->kind = SQL_BEGIN;
    accept_kw(p, "WORK");
    return 0;
}

static int parse_start(struct parser *p, struct sql_stmt *st)
{
    if (!accept_kw(p, "TRANSACTION"))
        return peek(p)->type == T_WORD ? unsupported_word(p, "START") : fail(p);
    st->kind = SQL_BEGIN;
    if (peek(p)->type == T_EOF)
        return 0;
    do {
        if (accept_kw(p, "READ")) {
            if (!accept_kw(p, "ONLY") && expect_kw(p, "WRITE") != 0)
                return -1;
        } else if (expect_kw(p, "WITH") != 0 || expect_kw(p, "CONSISTENT") != 0 ||
                   expect_kw(p, "SNAPSHOT") != 0) {
            return -1;
        }
    } while (accept(p, T_COMMA));
    return 0;
}

static int parse_commit(struct parser *p, struct sql_stmt *st)
{
    st->kind = SQL_COMMIT;
    accept_kw(p, "WORK");
    return 0;
}

static int parse_rollback(struct parser *p, struct sql_stmt *st)
{
    st->kind = SQL_ROLLBACK;
    accept_kw(p, "WORK");
    return at_kw(p, "TO") ? unsupported(p, "ROLLBACK TO SAVEPOINT") : 0;
}

/* ---- statements ------------------------------------------------------------------------------ */

static const struct {
    const char *kw;
    int (*parse)(struct parser *, struct sql_stmt *);
} STATEMENTS[] = {
    {"SELECT", parse_select}, {"INSERT", parse_insert}, {"UPDATE", parse_update},
    {"DELETE", parse_delete}, {"CREATE", parse_create}, {"DROP", parse_drop},
    {"ALTER", parse_alter}, {"USE", parse_use}, {"SHOW", parse_show},
    {"DESC", parse_describe}, {"DESCRIBE", parse_describe}, {"EXPLAIN", parse_describe},
    {"SET", parse_set}, {"BEGIN", parse_begin}, {"START", parse_start},
    {"COMMIT", parse_commit}, {"ROLLBACK", parse_rollback},
};

/* MySQL statements outside the subset. */
static const char *const OTHER_STATEMENTS[] = {
    "ANALYZE", "BINLOG", "CACHE", "CALL", "CHANGE", "CHECK", "CHECKSUM", "CLONE", "DEALLOCATE",
    "DO", "EXECUTE", "FLUSH", "GRANT", "HANDLER", "HELP", "IMPORT", "INSTALL", "KILL", "LOAD",
    "LOCK", "OPTIMIZE", "PREPARE", "PURGE", "RELEASE", "RENAME", "REPAIR", "REPLACE", "RESET",
    "RESTART", "REVOKE", "SAVEPOINT", "SHUTDOWN", "STOP", "TABLE", "TRUNCATE", "UNINSTALL",
    "UNLOCK", "VALUES", "WITH", "XA", NULL,
};

static int parse_statement(struct parser *p, struct sql_stmt *st)
{
    const struct tok *t = peek(p);
    if (t->type == T_EOF) {
        set_error(p, SQL_ER_EMPTY_QUERY, "42000", "Query was empty");
        return -1;
    }
    for (size_t i = 0; i < sizeof STATEMENTS / sizeof STATEMENTS[0]; i++) {
        if (at_kw(p, STATEMENTS[i].kw)) {
            advance(p);
            return STATEMENTS[i].parse(p, st);
        }
    }
    if (at_any_kw(p, 0, OTHER_STATEMENTS))
        return unsupported_word(p, "");
    return fail(p);
}

/* The statement ends here: an optional ';' and nothing after it. */
static int parse_end(struct parser *p)
{
    accept(p, T_SEMI);
    return peek(p)->type == T_EOF ? 0 : fail(p);
}

int sql_parse(const char *sql, size_t len, struct sql_stmt **out, struct sql_error *err)
{
    struct sql_error ignored;
    if (!err)
        err = &ignored;
    *out = NULL;
    memset(err, 0, sizeof *err);
    if (len > SQL_MAX_LEN) {
        err->code = 1153;
        snprintf(err->sqlstate, sizeof err->sqlstate, "08S01");
        snprintf(err->msg, sizeof err->msg, "Got a packet bigger than 'max_allowed_packet' bytes");
        return -1;
    }
    if (!sql)
        len = 0;
    while (len > 0 && is_blank((unsigned char)*sql)) {
        sql++;
        len--;
    }
    while (len > 0 && (sql[len - 1] == ';' || is_blank((unsigned char)sql[len - 1])))
        len--;
    struct parser p = {.s = sql, .len = len, .err = err, .next_chunk = ARENA_FIRST};
    p.last.type = T_EOF;
    struct sql_stmt *st = palloc(&p, sizeof *st);
    if (!st || parse_statement(&p, st) != 0 || parse_end(&p) != 0 || err->code != 0) {
        arena_free(p.arena);
        return -1;
    }
    st->arena = p.arena;
    *out = st;
    return 0;
}

void sql_stmt_free(struct sql_stmt *stmt)
{
    if (stmt)
        arena_free(stmt->arena);
}

const char *sql_stmt_kind_name(enum sql_stmt_kind kind)
{
    static const char *const names[] = {
        [SQL_SELECT] = "SELECT", [SQL_INSERT] = "INSERT", [SQL_UPDATE] = "UPDATE",
        [SQL_DELETE] = "DELETE", [SQL_CREATE_TABLE] = "CREATE TABLE",
        [SQL_CREATE_INDEX] = "CREATE INDEX", [SQL_DROP_TABLE] = "DROP TABLE",
        [SQL_CREATE_DATABASE] = "CREATE DATABASE", [SQL_DROP_DATABASE] = "DROP DATABASE",
        [SQL_USE] = "USE", [SQL_CREATE_USER] = "CREATE USER", [SQL_ALTER_USER] = "ALTER USER",
        [SQL_DROP_USER] = "DROP USER", [SQL_SHOW_DATABASES] = "SHOW DATABASES",
        [SQL_SHOW_TABLES] = "SHOW TABLES", [SQL_SHOW_STATUS] = "SHOW STATUS",
        [SQL_SHOW_VARIABLES] = "SHOW VARIABLES", [SQL_SHOW_CREATE_TABLE] = "SHOW CREATE TABLE",
        [SQL_SHOW_COLUMNS] = "SHOW COLUMNS", [SQL_SHOW_WARNINGS] = "SHOW WARNINGS",
        [SQL_SET] = "SET", [SQL_BEGIN] = "BEGIN", [SQL_COMMIT] = "COMMIT",
        [SQL_ROLLBACK] = "ROLLBACK",
    };
    if ((unsigned)kind >= sizeof names / sizeof names[0] || !names[kind])
        return "?";
    return names[kind];
}
