/* config.c — the TOML subset of config.h, read through inih.
 *
 * inih (55, Debian build) cannot read real TiDB's TOML by itself (docs/architecture.md says
 * why), so the reader handed to ini_parse_stream() does the lexical work and inih does the rest:
 *
 *   reader  reads physical lines of any length (getline), drops indentation, blank lines and
 *           # comments outside quotes, joins a value spread over several lines (arrays,
 *           inline tables) into one logical line, checks the line's shape (header or
 *           key = value) and records it: physical line where it starts, section, key, value.
 *           It then hands inih "[section]" or "key = value"; a line that would not survive
 *           inih intact (longer than the buffer inih offers, or holding ';' or '#' that an
 *           inih build may take for an inline comment) is handed over as a short placeholder.
 *   inih    splits the line and calls the handler once per key.
 *   handler takes section, key and value from the reader's record (the exact text inih was
 *           given, immune to inih's compile-time MAX_NAME/MAX_SECTION/comment options), looks
 *           the key up in the table, converts the value to the key's type and stores it.
 *
 * inih calls the handler for a line before it asks the reader for the next one, so the record
 * always belongs to the line being handled. The first error stops everything: the reader then
 * reports end of input.
 */
#include "config.h"

#include "log.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

/* ---------------------------------------------------------------- small strings */

struct sbuf {
    char *s;
    size_t len, cap;
};

static int sb_reserve(struct sbuf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *s = realloc(b->s, cap);
    if (!s)
        return -1;
    b->s = s;
    b->cap = cap;
    return 0;
}

static int sb_putn(struct sbuf *b, const char *s, size_t n)
{
    if (sb_reserve(b, n) < 0)
        return -1;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

static int sb_putc(struct sbuf *b, char c)
{
    return sb_putn(b, &c, 1);
}

static void sb_clear(struct sbuf *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

static const char *sb_str(const struct sbuf *b)
{
    return b->s ? b->s : "";
}

/* ---------------------------------------------------------------- load state */

struct loader {
    FILE *f;
    const char *path;
    const struct cfg_key *table;
    size_t n_keys;
    void *target;

    char *line; /* current physical line (getline buffer) */
    size_t line_cap;
    int lineno; /* physical lines read so far */

    /* the logical line last handed to inih */
    int entry_line;      /* physical line where it starts */
    struct sbuf section; /* current [section], dotted */
    struct sbuf key_sect; /* section of the key (section + dotted-key prefix) */
    struct sbuf name;
    struct sbuf value; /* raw value text: comments gone, lines joined */

    int *map; /* logical line handed to inih (1-based) -> physical line */
    size_t n_map, map_cap;

    int failed;
    char *err;
    size_t errlen;
};

static void fail_at(struct loader *ld, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error as "FILE:LINE: message" (one line). */
static void fail_at(struct loader *ld, int line, const char *fmt, ...)
{
    if (ld->failed)
        return;
    ld->failed = 1;
    if (!ld->err || ld->errlen == 0)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(ld->err, ld->errlen, "%s:%d: %s", ld->path, line, msg);
}

static void fail_oom(struct loader *ld)
{
    fail_at(ld, ld->lineno, "out of memory");
}

/* Reads the next physical line into ld->line without its line ending. 1, 0 at EOF, -1 error. */
static int read_physical(struct loader *ld)
{
    errno = 0;
    ssize_t n = getline(&ld->line, &ld->line_cap, ld->f);
    if (n < 0) {
        if (ferror(ld->f)) {
            int e = errno ? errno : EIO;
            if (!ld->failed && ld->err && ld->errlen) {
                ld->failed = 1;
                snprintf(ld->err, ld->errlen, "cannot read config %s: %s", ld->path, strerror(e));
            }
            ld->failed = 1;
            return -1;
        }
        return 0;
    }
    ld->lineno++;
    if (n > 0 && ld->line[n - 1] == '\n')
        ld->line[--n] = '\0';
    if (n > 0 && ld->line[n - 1] == '\r')
        ld->line[--n] = '\0';
    if (strlen(ld->line) != (size_t)n) {
        fail_at(ld, ld->lineno, "NUL byte in line");
        return -1;
    }
    if (ld->lineno == 1 && n >= 3 && memcmp(ld->line, "\xEF\xBB\xBF", 3) == 0)
        memmove(ld->line, ld->line + 3, (size_t)n - 2); /* a UTF-8 BOM */
    return 1;
}

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

static int is_bare(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

/* Rest of a line after a header or a value: only blanks and a comment may follow. */
static int only_comment_left(const char *p)
{
    p = skip_ws(p);
    return *p == '\0' || *p == '#';
}

/* Parses a dotted bare key ("a", "a.b", "a . b") at *pp into out (dots kept, blanks dropped).
 * Returns 0, or -1 when there is no valid key there. */
static int parse_dotted(const char **pp, struct sbuf *out)
{
    const char *p = *pp;
    sb_clear(out);
    for (;;) {
        p = skip_ws(p);
        const char *s = p;
        while (is_bare(*p))
            p++;
        if (p == s)
            return -1;
        if (sb_putn(out, s, (size_t)(p - s)) < 0)
            return -2;
        const char *q = skip_ws(p);
        if (*q != '.') {
            *pp = p;
            return 0;
        }
        if (sb_putc(out, '.') < 0)
            return -2;
        p = q + 1;
    }
}

static void describe_char(char *buf, size_t len, char c)
{
    unsigned char u = (unsigned char)c;
    if (u < 0x20 || u >= 0x7f)
        snprintf(buf, len, "byte 0x%02x", u);
    else
        snprintf(buf, len, "'%c'", c);
}

/* Appends one single-line string token starting at *pp (a quote) to ld->value, raw (escapes
 * kept). Returns 0, or -1 after fail_at() when it is not closed on this line. */
static int lex_short_string(struct loader *ld, const char **pp)
{
    const char *p = *pp;
    char q = *p;
    const char *s = p++;
    while (*p && *p != q) {
        if (q == '"' && *p == '\\' && p[1])
            p++;
        p++;
    }
    if (*p != q) {
        fail_at(ld, ld->lineno, "unterminated string");
        return -1;
    }
    p++;
    if (sb_putn(&ld->value, s, (size_t)(p - s)) < 0) {
        fail_oom(ld);
        return -1;
    }
    *pp = p;
    return 0;
}

/* Lexes the value that starts at p (first non-blank after '='), pulling more physical lines
 * while a bracket or a multi-line string is open. The cleaned text goes to ld->value. */
static int lex_value(struct loader *ld, const char *p)
{
    sb_clear(&ld->value);
    if (*p == '\0' || *p == '#') {
        fail_at(ld, ld->entry_line, "missing value for '%s'", sb_str(&ld->name));
        return -1;
    }
    if (*p != '[' && *p != '{' && *p != '"' && *p != '\'') {
        /* a bare scalar (integer, boolean, or something this subset rejects later): up to a
         * comment, trailing blanks dropped */
        const char *e = strchr(p, '#');
        if (!e)
            e = p + strlen(p);
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (sb_putn(&ld->value, p, (size_t)(e - p)) < 0) {
            fail_oom(ld);
            return -1;
        }
        return 0;
    }

    char stack[64];
    size_t depth = 0;
    char ml = 0; /* quote char of an open multi-line string */
    int ml_line = 0;
    for (;;) {
        char c = *p;
        if (c == '\0') {
            if (depth == 0 && !ml)
                return 0;
            if (sb_putc(&ld->value, ml ? '\n' : ' ') < 0) {
                fail_oom(ld);
                return -1;
            }
            int r = read_physical(ld);
            if (r < 0)
                return -1;
            if (r == 0) {
                if (ml)
                    fail_at(ld, ml_line, "unterminated multi-line string");
                else
                    fail_at(ld, ld->entry_line, "unterminated %s for '%s'",
                            stack[depth - 1] == '[' ? "array" : "inline table",
                            sb_str(&ld->name));
                return -1;
            }
            p = ld->line;
            continue;
        }
        if (ml) {
            if (c == ml && p[1] == ml && p[2] == ml) {
                /* up to two more quotes may belong to the content: """a"""" */
                size_t n = 3;
                while (n < 5 && p[n] == ml)
                    n++;
                if (sb_putn(&ld->value, p, n) < 0) {
                    fail_oom(ld);
                    return -1;
                }
                p += n;
                ml = 0;
                goto after_token;
            }
            size_t n = (ml == '"' && c == '\\' && p[1]) ? 2 : 1;
            if (sb_putn(&ld->value, p, n) < 0) {
                fail_oom(ld);
                return -1;
            }
            p += n;
            continue;
        }
        if (c == '"' || c == '\'') {
            if (p[1] == c && p[2] == c) {
                ml = c;
                ml_line = ld->lineno;
                if (sb_putn(&ld->value, p, 3) < 0) {
                    fail_oom(ld);
                    return -1;
                }
                p += 3;
                continue;
            }
            if (lex_short_string(ld, &p) < 0)
                return -1;
            goto after_token;
        }
        if (c == '#') {
            p += strlen(p);
            continue;
        }
        if (c == '[' || c == '{') {
            if (depth == sizeof stack) {
                fail_at(ld, ld->lineno, "values nested too deeply");
                return -1;
            }
            stack[depth++] = c;
            if (sb_putc(&ld->value, c) < 0) {
                fail_oom(ld);
                return -1;
            }
            p++;
            continue;
        }
        if (c == ']' || c == '}') {
            char open = c == ']' ? '[' : '{';
            if (depth == 0 || stack[depth - 1] != open) {
                fail_at(ld, ld->lineno, "unexpected '%c'", c);
                return -1;
            }
            depth--;
            if (sb_putc(&ld->value, c) < 0) {
                fail_oom(ld);
                return -1;
            }
            p++;
            goto after_token;
        }
        if (sb_putc(&ld->value, c) < 0) {
            fail_oom(ld);
            return -1;
        }
        p++;
        continue;
    after_token:
        if (depth == 0 && !ml) {
            if (!only_comment_left(p)) {
                fail_at(ld, ld->lineno, "unexpected text after the value of '%s'",
                        sb_str(&ld->name));
                return -1;
            }
            return 0;
        }
    }
}

/* Remembers which physical line the n-th logical line handed to inih came from. */
static int map_push(struct loader *ld, int physical)
{
    if (ld->n_map == ld->map_cap) {
        size_t cap = ld->map_cap ? ld->map_cap * 2 : 64;
        int *m = realloc(ld->map, cap * sizeof *m);
        if (!m)
            return -1;
        ld->map = m;
        ld->map_cap = cap;
    }
    ld->map[ld->n_map++] = physical;
    return 0;
}

/* Whether inih's line splitting leaves text untouched in every build we might link. */
static int inih_safe(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == ';' || c == '#')
            return 0;
    }
    return 1;
}

/* Writes "a" and "b" into str (inih's buffer of num bytes) when it fits and is safe, else the
 * placeholder. */
static char *hand_over(char *str, int num, const char *a, const char *b, const char *c,
                       const char *placeholder)
{
    size_t need = strlen(a) + strlen(b) + strlen(c);
    if (num > 0 && need + 3 <= (size_t)num && inih_safe(b) && inih_safe(c)) {
        snprintf(str, (size_t)num, "%s%s%s\n", a, b, c);
    } else {
        if (num < 0 || strlen(placeholder) + 3 > (size_t)num)
            return NULL;
        snprintf(str, (size_t)num, "%s\n", placeholder);
    }
    return str;
}

/* Parses a header line ("[a.b]") at p. 0 or -1. */
static int lex_header(struct loader *ld, const char *p)
{
    if (p[1] == '[') {
        fail_at(ld, ld->lineno, "arrays of tables ([[...]]) are not supported");
        return -1;
    }
    p++;
    int r = parse_dotted(&p, &ld->section);
    if (r == -2) {
        fail_oom(ld);
        return -1;
    }
    p = skip_ws(p);
    if (r < 0 || *p != ']') {
        char what[24];
        describe_char(what, sizeof what, *p);
        fail_at(ld, ld->lineno, "invalid section header (unexpected %s)",
                *p ? what : "end of line");
        return -1;
    }
    if (!only_comment_left(p + 1)) {
        fail_at(ld, ld->lineno, "unexpected text after section header");
        return -1;
    }
    return 0;
}

/* Parses "key = value..." at p into the record. 0 or -1. */
static int lex_keyval(struct loader *ld, const char *p)
{
    struct sbuf dotted = {0};
    int r = parse_dotted(&p, &dotted);
    if (r == -2) {
        free(dotted.s);
        fail_oom(ld);
        return -1;
    }
    if (r < 0) {
        free(dotted.s);
        char what[24];
        describe_char(what, sizeof what, *p);
        if (*p == '"' || *p == '\'')
            fail_at(ld, ld->lineno, "quoted keys are not supported");
        else if (*p == ']')
            fail_at(ld, ld->lineno, "unexpected ']' outside an array");
        else
            fail_at(ld, ld->lineno, "expected a key, found %s", what);
        return -1;
    }
    /* "a.b.c" in [s] is key c of section s.a.b */
    const char *last = strrchr(sb_str(&dotted), '.');
    const char *name = last ? last + 1 : sb_str(&dotted);
    sb_clear(&ld->key_sect);
    sb_clear(&ld->name);
    int bad = sb_putn(&ld->key_sect, sb_str(&ld->section), ld->section.len) < 0;
    if (last) {
        if (ld->section.len)
            bad |= sb_putc(&ld->key_sect, '.') < 0;
        bad |= sb_putn(&ld->key_sect, dotted.s, (size_t)(last - dotted.s)) < 0;
    }
    bad |= sb_putn(&ld->name, name, strlen(name)) < 0;
    free(dotted.s);
    if (bad) {
        fail_oom(ld);
        return -1;
    }
    p = skip_ws(p);
    if (*p != '=') {
        if (*p == '\0' || *p == '#')
            fail_at(ld, ld->lineno, "expected '=' after '%s'", sb_str(&ld->name));
        else {
            char what[24];
            describe_char(what, sizeof what, *p);
            fail_at(ld, ld->lineno, "expected '=' after '%s', found %s", sb_str(&ld->name),
                    what);
        }
        return -1;
    }
    return lex_value(ld, skip_ws(p + 1));
}

/* The ini_reader: one logical line per call (see the top of the file). */
static char *reader(char *str, int num, void *stream)
{
    struct loader *ld = stream;
    while (!ld->failed) {
        int r = read_physical(ld);
        if (r <= 0)
            return NULL;
        const char *p = skip_ws(ld->line);
        if (*p == '\0' || *p == '#')
            continue;
        ld->entry_line = ld->lineno;
        char *out;
        if (*p == '[') {
            if (lex_header(ld, p) < 0)
                return NULL;
            out = hand_over(str, num, "[", sb_str(&ld->section), "]", "[s]");
        } else {
            if (lex_keyval(ld, p) < 0)
                return NULL;
            out = hand_over(str, num, sb_str(&ld->name), " = ", sb_str(&ld->value), "k = v");
        }
        if (!out) {
            fail_at(ld, ld->entry_line, "internal error: inih line buffer too small");
            return NULL;
        }
        if (map_push(ld, ld->entry_line) < 0) {
            fail_oom(ld);
            return NULL;
        }
        return out;
    }
    return NULL;
}

/* ---------------------------------------------------------------- typed values */

static int utf8_put(struct sbuf *b, unsigned long cp)
{
    char o[4];
    size_t n;
    if (cp < 0x80) {
        o[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        o[0] = (char)(0xF0 | (cp >> 18));
        o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return sb_putn(b, o, n);
}

/* Decodes the string token at *pp into a new heap string *out. On error returns -1 with a
 * message in msg ("value for 'x' ..." is prefixed by the caller). */
static int parse_string(const char **pp, char **out, char *msg, size_t msglen)
{
    const char *p = *pp;
    char q = *p;
    struct sbuf b = {0};
    if (p[1] == q && p[2] == q) {
        snprintf(msg, msglen, "multi-line strings are not supported");
        return -1;
    }
    p++;
    for (;;) {
        unsigned char c = (unsigned char)*p;
        if (c == '\0') {
            snprintf(msg, msglen, "unterminated string");
            goto fail;
        }
        if (c == (unsigned char)q) {
            p++;
            break;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            snprintf(msg, msglen, "control character (byte 0x%02x) in a string", c);
            goto fail;
        }
        if (q == '\'' || c != '\\') {
            if (sb_putc(&b, (char)c) < 0)
                goto oom;
            p++;
            continue;
        }
        /* escape */
        char e = p[1];
        char simple = 0;
        switch (e) {
        case '"': simple = '"'; break;
        case '\\': simple = '\\'; break;
        case 'n': simple = '\n'; break;
        case 't': simple = '\t'; break;
        case 'r': simple = '\r'; break;
        case 'b': simple = '\b'; break;
        case 'f': simple = '\f'; break;
        case 'u':
        case 'U': {
            int digits = e == 'u' ? 4 : 8;
            unsigned long cp = 0;
            for (int i = 0; i < digits; i++) {
                char h = p[2 + i];
                int v = (h >= '0' && h <= '9')   ? h - '0'
                        : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                        : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                                 : -1;
                if (v < 0) {
                    snprintf(msg, msglen, "\\%c needs %d hex digits", e, digits);
                    goto fail;
                }
                cp = cp * 16 + (unsigned long)v;
            }
            if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                snprintf(msg, msglen, "\\%c%0*lX is not an allowed character", e, digits, cp);
                goto fail;
            }
            if (utf8_put(&b, cp) < 0)
                goto oom;
            p += 2 + digits;
            continue;
        }
        default:
            if (e > 0x20 && e < 0x7f)
                snprintf(msg, msglen, "invalid escape '\\%c' in a string", e);
            else
                snprintf(msg, msglen, "invalid escape (backslash before byte 0x%02x) in a string",
                         (unsigned char)e);
            goto fail;
        }
        if (sb_putc(&b, simple) < 0)
            goto oom;
        p += 2;
    }
    if (sb_reserve(&b, 0) < 0) /* an empty string still needs its buffer */
        goto oom;
    b.s[b.len] = '\0';
    *out = b.s;
    *pp = p;
    return 0;
oom:
    snprintf(msg, msglen, "out of memory");
fail:
    free(b.s);
    return -1;
}

static int parse_string_value(const char *v, char **out, const char *name, char *msg,
                              size_t msglen)
{
    if (*v != '"' && *v != '\'') {
        snprintf(msg, msglen, "value for '%s' must be a quoted string%s", name,
                 *v == '[' ? ", not an array" : "");
        return -1;
    }
    char why[160];
    const char *p = v;
    if (parse_string(&p, out, why, sizeof why) < 0) {
        snprintf(msg, msglen, "value for '%s': %s", name, why);
        return -1;
    }
    if (*skip_ws(p) != '\0') {
        free(*out);
        *out = NULL;
        snprintf(msg, msglen, "unexpected text after the value of '%s'", name);
        return -1;
    }
    return 0;
}

static int parse_list_value(const char *v, struct cfg_list *out, const char *name, char *msg,
                            size_t msglen)
{
    struct cfg_list l = {0};
    const char *p = v;
    if (*p != '[') {
        snprintf(msg, msglen, "value for '%s' must be an array of strings", name);
        return -1;
    }
    p = skip_ws(p + 1);
    for (;;) {
        /* here: after '[' or after a comma, so an item or the closing ] may follow */
        if (*p == ']') {
            p++;
            break;
        }
        if (*p != '"' && *p != '\'') {
            if (*p == ',')
                snprintf(msg, msglen, "value for '%s': empty item in array", name);
            else
                snprintf(msg, msglen, "value for '%s' must be an array of strings", name);
            goto fail;
        }
        char *item = NULL, why[160];
        if (parse_string(&p, &item, why, sizeof why) < 0) {
            snprintf(msg, msglen, "value for '%s': %s", name, why);
            goto fail;
        }
        if (cfg_list_add(&l, item) < 0) {
            free(item);
            snprintf(msg, msglen, "out of memory");
            goto fail;
        }
        free(item);
        p = skip_ws(p);
        if (*p == ',') {
            p = skip_ws(p + 1);
            continue;
        }
        if (*p == ']') {
            p++;
            break;
        }
        snprintf(msg, msglen, "value for '%s': expected ',' or ']' in array", name);
        goto fail;
    }
    if (*skip_ws(p) != '\0') {
        snprintf(msg, msglen, "unexpected text after the value of '%s'", name);
        goto fail;
    }
    *out = l;
    return 0;
fail:
    cfg_list_free(&l);
    return -1;
}

static int parse_int_value(const char *v, long long *out, const char *name, char *msg,
                           size_t msglen)
{
    /* TOML integers: [+-]digits with single '_' between digits, no leading zeros; or
     * 0x / 0o / 0b prefixed, unsigned */
    char digits[96];
    size_t n = 0;
    const char *p = v;
    int neg = 0, base = 10;
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o' || p[1] == 'b') && p == v) {
        base = p[1] == 'x' ? 16 : p[1] == 'o' ? 8 : 2;
        p += 2;
    }
    int prev_digit = 0;
    for (; *p; p++) {
        int d = (*p >= '0' && *p <= '9')   ? *p - '0'
                : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
                : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10
                                           : -1;
        if (*p == '_' && prev_digit && p[1] && p[1] != '_') {
            prev_digit = 0;
            continue;
        }
        if (d < 0 || d >= base || n + 1 >= sizeof digits)
            goto garbage;
        digits[n++] = *p;
        prev_digit = 1;
    }
    if (n == 0 || !prev_digit)
        goto garbage;
    digits[n] = '\0';
    if (base == 10 && n > 1 && digits[0] == '0')
        goto garbage;
    errno = 0;
    char *end;
    unsigned long long u = strtoull(digits, &end, base);
    if (*end)
        goto garbage;
    if (errno == ERANGE || (neg ? u > (unsigned long long)LLONG_MAX + 1ULL
                                : u > (unsigned long long)LLONG_MAX)) {
        snprintf(msg, msglen, "value for '%s' is out of range (%s)", name, v);
        return -1;
    }
    if (neg)
        *out = u == (unsigned long long)LLONG_MAX + 1ULL ? LLONG_MIN : -(long long)u;
    else
        *out = (long long)u;
    return 0;
garbage:
    snprintf(msg, msglen, "value for '%s' must be an integer", name);
    return -1;
}

static const struct cfg_key *find_key(const struct loader *ld, const char *section,
                                      const char *name)
{
    for (size_t i = 0; i < ld->n_keys; i++) {
        const struct cfg_key *k = &ld->table[i];
        if (strcmp(k->section ? k->section : "", section) == 0 && strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

/* The ini_handler. The arguments are inih's view of the line; the record is used instead
 * (same text, but never truncated or cut at a ';'). */
static int handler(void *user, const char *section, const char *name, const char *value)
{
    struct loader *ld = user;
    (void)section;
    (void)name;
    (void)value;
    if (ld->failed)
        return 0;
    const char *sect = sb_str(&ld->key_sect), *key = sb_str(&ld->name);
    const char *v = sb_str(&ld->value);
    const struct cfg_key *k = find_key(ld, sect, key);
    if (!k) {
        log_warnx("%s:%d: unknown key '%s' in [%s], ignored", ld->path, ld->entry_line, key,
                 sect);
        return 1;
    }
    char msg[400];
    char *field = (char *)ld->target + k->offset;
    int rc = -1;
    switch (k->type) {
    case CFG_STRING: {
        char *s = NULL;
        rc = parse_string_value(v, &s, key, msg, sizeof msg);
        if (rc == 0) {
            char **dst = (char **)(void *)field;
            free(*dst);
            *dst = s;
        }
        break;
    }
    case CFG_STRING_LIST: {
        struct cfg_list l = {0};
        rc = parse_list_value(v, &l, key, msg, sizeof msg);
        if (rc == 0) {
            struct cfg_list *dst = (struct cfg_list *)(void *)field;
            cfg_list_free(dst);
            *dst = l;
        }
        break;
    }
    case CFG_INT: {
        long long x;
        rc = parse_int_value(v, &x, key, msg, sizeof msg);
        if (rc == 0)
            memcpy(field, &x, sizeof x);
        break;
    }
    case CFG_BOOL: {
        bool b;
        if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
            b = v[0] == 't';
            memcpy(field, &b, sizeof b);
            rc = 0;
        } else {
            snprintf(msg, sizeof msg, "value for '%s' must be true or false", key);
        }
        break;
    }
    default:
        snprintf(msg, sizeof msg, "key '%s' has an unknown type in the table", key);
        break;
    }
    if (rc < 0) {
        fail_at(ld, ld->entry_line, "%s", msg);
        return 0;
    }
    return 1;
}

/* Keeps err on one line whatever bytes the path or the file held. */
static void one_line(char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

int cfg_load(const char *path, const struct cfg_key *table, size_t n_keys, void *target,
             char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    struct loader ld = {
        .path = path ? path : "(null)",
        .table = table,
        .n_keys = n_keys,
        .target = target,
        .err = err,
        .errlen = errlen,
    };
    ld.f = path ? fopen(path, "r") : NULL;
    if (!ld.f) {
        if (err && errlen)
            snprintf(err, errlen, "cannot read config %s: %s", ld.path,
                     strerror(path ? errno : EINVAL));
        one_line(err);
        return -1;
    }
    int r = ini_parse_stream(reader, &ld, handler, &ld);
    if (!ld.failed && r != 0) {
        if (r > 0)
            fail_at(&ld, (size_t)r <= ld.n_map ? ld.map[r - 1] : ld.lineno, "syntax error");
        else if (r == -2)
            fail_at(&ld, ld.lineno, "out of memory");
        else
            fail_at(&ld, ld.lineno, "parse error (%d)", r);
    }
    fclose(ld.f);
    free(ld.line);
    free(ld.section.s);
    free(ld.key_sect.s);
    free(ld.name.s);
    free(ld.value.s);
    free(ld.map);
    if (ld.failed) {
        one_line(err);
        return -1;
    }
    return 0;
}

void cfg_free(const struct cfg_key *table, size_t n_keys, void *target)
{
    if (!table || !target)
        return;
    for (size_t i = 0; i < n_keys; i++) {
        char *field = (char *)target + table[i].offset;
        if (table[i].type == CFG_STRING) {
            char **s = (char **)(void *)field;
            free(*s);
            *s = NULL;
        } else if (table[i].type == CFG_STRING_LIST) {
            cfg_list_free((struct cfg_list *)(void *)field);
        }
    }
}

/* ---------------------------------------------------------------- helpers */

int cfg_set_string(char **dst, const char *src)
{
    char *copy = NULL;
    if (src && !(copy = strdup(src)))
        return -1;
    free(*dst);
    *dst = copy;
    return 0;
}

int cfg_override(char **dst, const char *value)
{
    return value ? cfg_set_string(dst, value) : 0;
}

int cfg_security_paths(const char *const names[3], const char *const values[3], bool *tls,
                       char *err, size_t errlen)
{
    int set = 0, missing = -1;
    for (int i = 0; i < 3; i++) {
        if (values[i] && *values[i])
            set++;
        else if (missing < 0)
            missing = i;
    }
    if (set > 0 && set < 3) {
        snprintf(err, errlen,
                 "[security] %s is not set: %s, %s and %s must be set together to turn TLS on, "
                 "or all left empty",
                 names[missing], names[0], names[1], names[2]);
        return -1;
    }
    *tls = set == 3;
    return 0;
}

int cfg_list_add(struct cfg_list *l, const char *item)
{
    if (!item)
        item = "";
    char *copy = strdup(item);
    if (!copy)
        return -1;
    char **items = realloc(l->items, (l->n + 1) * sizeof *items);
    if (!items) {
        free(copy);
        return -1;
    }
    items[l->n++] = copy;
    l->items = items;
    return 0;
}

int cfg_list_set_csv(struct cfg_list *l, const char *csv)
{
    struct cfg_list nl = {0};
    const char *p = csv ? csv : "";
    while (*p) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        const char *s = p, *t = e;
        while (s < t && (*s == ' ' || *s == '\t'))
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t > s) {
            char *item = strndup(s, (size_t)(t - s));
            if (!item || cfg_list_add(&nl, item) < 0) {
                free(item);
                cfg_list_free(&nl);
                return -1;
            }
            free(item);
        }
        p = *e ? e + 1 : e;
    }
    cfg_list_free(l);
    *l = nl;
    return 0;
}

bool cfg_list_contains(const struct cfg_list *l, const char *item)
{
    if (!l || !item)
        return false;
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i], item) == 0)
            return true;
    return false;
}

void cfg_list_free(struct cfg_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}
