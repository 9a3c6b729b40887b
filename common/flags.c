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

static int set_bool(const struct flag *f, const char *value, char *err, size_t errlen)
{
    bool v = true;
    if (value && strcmp(value, "false") == 0)
        v = false;
    else if (value && strcmp(value, "true") != 0) {
        snprintf(err, errlen, "flag --%s takes true or false, not '%s'", f->name, value);
        return -1;
    }
    if (f->set)
        *f->set = v;
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
        const char *name = arg + (arg[1] == '-' ? 2 : 1);
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = find_flag(table, n, name, len);
        if (!f) {
            snprintf(err, errlen, "unknown flag %.*s", (int)(len + (size_t)(name - arg)), arg);
            return -1;
        }
        i++;
        if (f->is_bool) {
            if (set_bool(f, eq ? eq + 1 : NULL, err, errlen) != 0)
                return -1;
            continue;
        }
        const char *value = eq ? eq + 1 : NULL;
        if (!value) {
            if (i >= argc) {
                snprintf(err, errlen, "flag --%s needs a value", f->name);
                return -1;
            }
            value = argv[i++];
        }
        *f->value = value;
        if (f->set)
            *f->set = true;
    }
    return i;
}

void flags_usage(FILE *out, const struct flag *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char left[64];
        if (table[i].alias)
            snprintf(left, sizeof left, "--%s, -%c%s", table[i].name, table[i].alias,
                     table[i].is_bool ? "" : " VALUE");
        else
            snprintf(left, sizeof left, "--%s%s", table[i].name, table[i].is_bool ? "" : " VALUE");
        fprintf(out, "  %-30s %s\n", left, table[i].help);
    }
}
