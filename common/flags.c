#include "flags.h"

#include <string.h>

static const struct flag *find_flag(const struct flag *table, size_t n, const char *name,
                                    size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if (strlen(table[i].name) == len && strncmp(table[i].name, name, len) == 0)
            return &table[i];
        if (len == 1 && table[i].alias == name[0])
            return &table[i];
    }
    return NULL;
}

/* Go's strconv.ParseBool: 1 t T TRUE true True, 0 f F FALSE false False. */
static int parse_bool(const char *s, bool *v)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(s, yes[i]) == 0 || strcmp(s, no[i]) == 0) {
            *v = strcmp(s, yes[i]) == 0;
            return 0;
        }
    }
    return -1;
}

/* How a flag is typed: --name, or -P for a one-letter name (TiDB's -P). */
static const char *dashes(const struct flag *f)
{
    return f->name[1] ? "--" : "-";
}

static int set_bool(const struct flag *f, const char *value, char *err, size_t errlen)
{
    bool v = true;
    if (value && parse_bool(value, &v) != 0) {
        snprintf(err, errlen, "flag %s%s takes true or false, not '%s'", dashes(f), f->name,
                 value);
        return -1;
    }
    if (f->set)
        *f->set = v;
    return 0;
}

/* Sets the flag of argv[*i] (a flag, not "--"), taking its value from argv[*i + 1] when it
 * needs one; *i moves past what was used. */
static int take_flag(const struct flag *table, size_t n, int argc, char **argv, int *i,
                     char *err, size_t errlen)
{
    const char *arg = argv[*i];
    const char *name = arg + (arg[1] == '-' ? 2 : 1);
    if (*name == '-' || *name == '=') {
        snprintf(err, errlen, "bad flag syntax: %s", arg);
        return -1;
    }
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct flag *f = find_flag(table, n, name, len);
    if (!f) {
        snprintf(err, errlen, "unknown flag %.*s", (int)(len + (size_t)(name - arg)), arg);
        return -1;
    }
    (*i)++;
    if (f->is_bool)
        return set_bool(f, eq ? eq + 1 : NULL, err, errlen);
    const char *value = eq ? eq + 1 : NULL;
    if (!value) {
        if (*i >= argc) {
            snprintf(err, errlen, "flag %s%s needs a value", dashes(f), f->name);
            return -1;
        }
        value = argv[(*i)++];
    }
    *f->value = value;
    if (f->set)
        *f->set = true;
    return 0;
}

int flags_parse(const struct flag *table, size_t n, int argc, char **argv, char *err,
                size_t errlen)
{
    int i = 1;
    while (i < argc) {
        const char *arg = argv[i];
        if (strcmp(arg, "--") == 0)
            return i + 1;
        if (arg[0] != '-' || arg[1] == '\0')
            return i;
        if (take_flag(table, n, argc, argv, &i, err, errlen) != 0)
            return -1;
    }
    return i;
}

void flags_usage(FILE *out, const struct flag *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct flag *f = &table[i];
        int w = fprintf(out, "  %s%s", dashes(f), f->name);
        if (f->alias)
            w += fprintf(out, ", -%c", f->alias);
        if (!f->is_bool)
            w += fprintf(out, " VALUE");
        fprintf(out, "%*s %s\n", w < 32 ? 32 - w : 0, "", f->help);
    }
}
