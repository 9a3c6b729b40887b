/* flags.h — command-line flags the way real TiDB/PD/TiKV (Go's flag package) take them.
 *
 * Contract:
 * - A program lists its flags in one table. "--name value", "--name=value", "-name value",
 *   "-name=value" and the one-letter alias ("-u value", "-u=value") all work; the last of
 *   repeated flags wins. A value is taken as given (empty, or starting with '-'). Booleans
 *   take no value, or "=" with what Go's strconv.ParseBool takes (true/false, 1/0, t/f, ...).
 * - flags_parse stops at the first argument that is not a flag ("-" alone is not one) or after
 *   "--", and returns the index of the first argument it did not take (argc when it took all),
 *   so ctl tools can read their command. Refusals: -1 with err ("unknown flag --foo",
 *   "flag --name needs a value", "flag --debug takes true or false, not 'x'",
 *   "bad flag syntax: ---x").
 * - String values are pointers into argv (not copied).
 * - flags_usage prints one line per flag, help aligned: "  --name, -n VALUE   help".
 */
#ifndef TISIM_FLAGS_H
#define TISIM_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct flag {
    const char *name;  /* "client-urls" */
    char alias;        /* 'u' or 0 */
    bool is_bool;
    const char **value; /* for strings */
    bool *set;          /* for booleans; may also be given for strings to learn "was given" */
    const char *help;
};

int flags_parse(const struct flag *table, size_t n, int argc, char **argv, char *err,
                size_t errlen);
void flags_usage(FILE *out, const struct flag *table, size_t n);

#endif
