/* Unit tests for flags: the Go flag package's forms (-x, --x, -x=v, --x=v, -x v, aliases,
 * booleans), where parsing stops ("--", the first non-flag), and the refusals with their
 * messages, each next to the accepted form it differs from. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flags.h"
#include "testutil.h"

/* One program's flags, as a daemon or ctl tool lists them. */
struct opts {
    const char *name, *urls, *config;
    bool urls_set, debug, version;
};

#define NFLAGS 5

static void table_for(struct opts *o, struct flag *t)
{
    memset(o, 0, sizeof *o);
    const struct flag table[NFLAGS] = {
        {"name", 0, false, &o->name, NULL, "member name"},
        {"client-urls", 'u', false, &o->urls, &o->urls_set, "URLs to serve clients on"},
        {"config", 'C', false, &o->config, NULL, "config file"},
        {"debug", 0, true, NULL, &o->debug, "debug logging"},
        {"version", 'V', true, NULL, &o->version, "print the version"},
    };
    memcpy(t, table, sizeof table);
}

/* Parses a NULL-terminated argument list (argv[0] is the program). */
static int parse(struct opts *o, char *err, size_t errlen, const char *const *args)
{
    struct flag t[NFLAGS];
    table_for(o, t);
    int argc = 0;
    while (args[argc])
        argc++;
    err[0] = '\0';
    return flags_parse(t, NFLAGS, argc, (char **)args, err, errlen);
}

#define ARGS(...) ((const char *const[]){"prog", __VA_ARGS__, NULL})

static void test_value_forms(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    const char *const *forms[] = {
        ARGS("--name", "pd1"), ARGS("--name=pd1"), ARGS("-name", "pd1"), ARGS("-name=pd1"),
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        assert_int_equal(parse(&o, err, sizeof err, forms[i]), forms[i][2] ? 3 : 2);
        assert_string_equal(o.name, "pd1");
    }
}

static void test_alias(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, ARGS("-u", "http://a:1")), 3);
    assert_string_equal(o.urls, "http://a:1");
    assert_true(o.urls_set);
    assert_int_equal(parse(&o, err, sizeof err, ARGS("-u=http://b:1")), 2);
    assert_string_equal(o.urls, "http://b:1");
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--client-urls", "http://c:1")), 3);
    assert_string_equal(o.urls, "http://c:1");
    /* not given: the "was given" flag stays false */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--name", "x")), 3);
    assert_false(o.urls_set);
    assert_null(o.urls);
}

static void test_values_taken_as_given(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    /* an empty value, a value with '=', a value that looks like a flag: all Go takes */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--name=")), 2);
    assert_string_equal(o.name, "");
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--name=a=b")), 2);
    assert_string_equal(o.name, "a=b");
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--name", "--debug")), 3);
    assert_string_equal(o.name, "--debug");
    assert_false(o.debug);
    /* given twice: the last wins */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--name", "a", "-name=b")), 4);
    assert_string_equal(o.name, "b");
}

static void test_bools(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug")), 2);
    assert_true(o.debug);
    assert_int_equal(parse(&o, err, sizeof err, ARGS("-debug", "-V")), 3);
    assert_true(o.debug);
    assert_true(o.version);
    const char *yes[] = {"true", "1", "t", "T", "TRUE", "True"};
    const char *no[] = {"false", "0", "f", "F", "FALSE", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "--debug=%s", yes[i]);
        snprintf(b, sizeof b, "--debug=%s", no[i]);
        assert_int_equal(parse(&o, err, sizeof err, ARGS(a)), 2);
        assert_true(o.debug);
        assert_int_equal(parse(&o, err, sizeof err, ARGS(a, b)), 3);
        assert_false(o.debug);
    }
    /* a bool never takes the next argument: "true" is the first non-flag */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "false")), 2);
    assert_true(o.debug);
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug=yes")), -1);
    assert_string_equal(err, "flag --debug takes true or false, not 'yes'");
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug=")), -1);
    assert_string_equal(err, "flag --debug takes true or false, not ''");
}

static void test_where_parsing_stops(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    /* all flags: returns argc */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "--name", "x")), 4);
    /* the first non-flag: its index; later flags are left alone */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "member", "--name", "x")), 2);
    assert_null(o.name);
    /* "-" alone is not a flag (Go: stdin) */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "-", "x")), 2);
    /* "--" ends the flags: the index after it, even when a flag follows */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "--", "--name", "x")), 3);
    assert_null(o.name);
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--")), 2);
    /* no arguments at all */
    const char *const none[] = {"prog", NULL};
    assert_int_equal(parse(&o, err, sizeof err, none), 1);
}

static void test_unknown_flag(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--nam", "pd1")), -1);
    assert_string_equal(err, "unknown flag --nam");
    assert_int_equal(parse(&o, err, sizeof err, ARGS("-nam=pd1")), -1);
    assert_string_equal(err, "unknown flag -nam");
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--names=pd1")), -1);
    assert_string_equal(err, "unknown flag --names");
    /* an alias is one letter: "-uu" is not "-u" */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("-uu", "x")), -1);
    assert_string_equal(err, "unknown flag -uu");
    /* a known flag after the unknown one is not reached */
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "--x", "--version")), -1);
    assert_string_equal(err, "unknown flag --x");
    assert_false(o.version);
}

static void test_bad_syntax(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    const char *bad[] = {"---name", "--=x", "-=x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "bad flag syntax: %s", bad[i]);
        assert_int_equal(parse(&o, err, sizeof err, ARGS(bad[i], "x")), -1);
        assert_string_equal(err, want);
    }
}

static void test_missing_value(void **state)
{
    (void)state;
    struct opts o;
    char err[256];
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "--name", "x")), 4);
    assert_int_equal(parse(&o, err, sizeof err, ARGS("--debug", "--name")), -1);
    assert_string_equal(err, "flag --name needs a value");
    assert_int_equal(parse(&o, err, sizeof err, ARGS("-u")), -1);
    assert_string_equal(err, "flag --client-urls needs a value");
}

static void test_usage(void **state)
{
    (void)state;
    struct opts o;
    struct flag t[NFLAGS];
    table_for(&o, t);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    flags_usage(f, t, NFLAGS);
    fclose(f);
    assert_string_equal(text, "  --name VALUE                   member name\n"
                              "  --client-urls, -u VALUE        URLs to serve clients on\n"
                              "  --config, -C VALUE             config file\n"
                              "  --debug                        debug logging\n"
                              "  --version, -V                  print the version\n");
    free(text);
}

/* TiDB's -P: a one-letter name is shown and named with one dash, as it is typed. */
static void test_one_letter_name(void **state)
{
    (void)state;
    const char *port = NULL;
    const struct flag t[] = {{"P", 0, false, &port, NULL, "MySQL port"}};
    char err[256], *text = NULL;
    const char *ok[] = {"tidb-server", "-P", "4001"}, *bad[] = {"tidb-server", "-P"};
    assert_int_equal(flags_parse(t, 1, 3, (char **)ok, err, sizeof err), 3);
    assert_string_equal(port, "4001");
    assert_int_equal(flags_parse(t, 1, 2, (char **)bad, err, sizeof err), -1);
    assert_string_equal(err, "flag -P needs a value");
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    flags_usage(f, t, 1);
    fclose(f);
    assert_string_equal(text, "  -P VALUE                       MySQL port\n");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_value_forms),
        cmocka_unit_test(test_alias),
        cmocka_unit_test(test_values_taken_as_given),
        cmocka_unit_test(test_bools),
        cmocka_unit_test(test_where_parsing_stops),
        cmocka_unit_test(test_unknown_flag),
        cmocka_unit_test(test_bad_syntax),
        cmocka_unit_test(test_missing_value),
        cmocka_unit_test(test_one_letter_name),
        cmocka_unit_test(test_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
