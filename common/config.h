/* config.h — reads the TOML files real TiDB, TiKV and PD use, through inih.
 *
 * Contract:
 * - A component describes its keys in one declarative table (section, name, type, offset in
 *   the component's config struct); cfg_load() fills the struct from a file. Adding a key is
 *   one table row.
 * - Accepted syntax (what TiDB's TLS guide and real configs use): [section] and
 *   [dotted.section] headers; key = value with "basic strings" (\" \\ \n \t \uXXXX escapes),
 *   'literal strings', integers, true/false, and arrays of strings on one line or spread over
 *   several lines (the closing ] may sit at column 0, a trailing comma is allowed); # comments
 *   on their own line or after a value (a # inside quotes is text). Lines of any length.
 * - Unknown key: a warning through log_warn "FILE:LINE: unknown key 'NAME' in [SECTION], ignored",
 *   and loading goes on. Malformed line or a value of the wrong type: cfg_load returns -1
 *   with err = "FILE:LINE: what is wrong" and the target holds no half-parsed value of that key.
 * - A key given twice: the last one wins (lists are replaced, not appended).
 * - Strings and list items are heap copies owned by the target; cfg_free() releases them.
 *   A key absent from the file leaves the field untouched (so callers set defaults first).
 *
 * Decisions the above leaves open (config.c):
 * - A CFG_STRING field must be NULL or a heap string (cfg_set_string) before cfg_load: a
 *   loaded value frees the one it replaces. A list is replaced whole, [] empties it.
 * - The first error stops loading; keys before it stay loaded (release them with cfg_free).
 * - Line numbers: a wrong value (type, escape, list item) reports the line where its key
 *   starts, also inside a multi-line array; an unterminated array too. Lexical errors
 *   (unterminated string, stray ']' or '}', text after a value) report their own line.
 * - Also accepted: indentation before anything, [ spaced ] headers, dotted keys (a.b = v in
 *   [s] is key b of [s.a]), integers as in TOML (1_000, 0x1F, 0o17, 0b101), CRLF, a UTF-8
 *   BOM. ';' is not a comment. An unknown key's value may be anything well-formed (floats,
 *   inline tables, nested arrays, multi-line strings): warned about and skipped.
 * - Errors (not in the subset): quoted keys, [[arrays of tables]], multi-line strings as the
 *   value of a known key, \u0000 and surrogates in escapes.
 */
#ifndef TISIM_CONFIG_H
#define TISIM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

enum cfg_type {
    CFG_STRING,      /* char *            */
    CFG_STRING_LIST, /* struct cfg_list   */
    CFG_INT,         /* long long         */
    CFG_BOOL,        /* bool              */
};

struct cfg_list {
    char **items;
    size_t n;
};

struct cfg_key {
    const char *section; /* "" for keys before any [section] */
    const char *name;
    enum cfg_type type;
    size_t offset;       /* offsetof(struct component_config, field) */
};

int cfg_load(const char *path, const struct cfg_key *table, size_t n_keys, void *target,
             char *err, size_t errlen);
void cfg_free(const struct cfg_key *table, size_t n_keys, void *target);

/* Replace *dst with a copy of src (NULL allowed). For command-line overrides. 0 or -1 (ENOMEM). */
int cfg_set_string(char **dst, const char *src);
/* A flag given on the command line (value non-NULL) replaces the file's setting; NULL keeps
 * it. 0 or -1 (ENOMEM). */
int cfg_override(char **dst, const char *value);
/* The TLS rule every daemon shares: TLS is on when the three [security] paths (CA, cert,
 * key, named as the daemon's config names them) are all set, off when none is; some but not
 * all is an error naming the first missing key. 0 with *tls set, or -1 with err. */
int cfg_security_paths(const char *const names[3], const char *const values[3], bool *tls,
                       char *err, size_t errlen);
int cfg_list_add(struct cfg_list *l, const char *item);
/* Replace l with the comma-separated items of csv (spaces around items trimmed, empty items
 * skipped): the form command-line flags take, e.g. --cert-allowed-cn "TiDB-Server,PD-Server". */
int cfg_list_set_csv(struct cfg_list *l, const char *csv);
bool cfg_list_contains(const struct cfg_list *l, const char *item);
void cfg_list_free(struct cfg_list *l);

#endif
