/* test_pd_state.c — PD's persisted state: a save/load round trip, atomic writes that leave
 * the old file when they fail, every bad field of a state file refused by name, the TSO
 * high-water that a leader's state never lowers, and the checks on store input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pd_state.h"
#include "pd_tso.h"
#include "testutil.h"

static char dir[64];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/test_pd_state.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void state_path(char *buf, size_t len)
{
    snprintf(buf, len, "%s/state.json", dir);
}

static void write_file(const char *text)
{
    char path[128];
    state_path(path, sizeof path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* The whole file, in a static buffer. */
static const char *read_file(void)
{
    static char buf[8192];
    char path[128];
    state_path(path, sizeof path);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static uint64_t register_store(struct pd_state *s, const char *address, int *status, char *err,
                               size_t errlen)
{
    return pd_state_register_store(s, address, "127.0.0.1:20180", "v1", false, 1000, status, err,
                                   errlen);
}

static void test_save_and_load_round_trip(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512];
    int status = 0;
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_int_equal(pd_state_tso_hw(&s), 0);
    assert_int_equal(register_store(&s, "127.0.0.1:20160", &status, err, sizeof err), 1);
    pd_state_set_tso_hw(&s, 123456);
    pd_state_touch(&s, 7);
    s.term = 9;
    snprintf(s.voted_for, sizeof s.voted_for, "pd2");
    assert_int_equal(pd_state_save(&s, err, sizeof err), 0);
    uint64_t version = pd_state_version(&s);
    pd_state_close(&s);

    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_int_equal(pd_state_tso_hw(&s), 123456);
    assert_int_equal(pd_state_version(&s), version);
    assert_int_equal(pd_state_version_term(&s), 7);
    assert_int_equal(s.term, 9);
    assert_string_equal(s.voted_for, "pd2");
    json_t *store = pd_state_find_store(&s, 1);
    assert_non_null(store);
    assert_string_equal(json_string_value(json_object_get(store, "address")), "127.0.0.1:20160");
    /* The first store bootstrapped region 1 and ids go on from where they were. */
    assert_int_equal(json_array_size(json_object_get(s.doc, "regions")), 1);
    assert_int_equal(pd_state_alloc_id(&s), 4);
    pd_state_close(&s);
}

/* A save that cannot write its temp file fails naming the file, and the old file is intact. */
static void test_failed_save_leaves_the_old_file(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512], tmp[128];
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    pd_state_set_tso_hw(&s, 1000);
    assert_int_equal(pd_state_save(&s, err, sizeof err), 0);
    char before[8192];
    snprintf(before, sizeof before, "%s", read_file());

    snprintf(tmp, sizeof tmp, "%s/state.json.tmp", dir);
    assert_int_equal(mkdir(tmp, 0700), 0); /* open() of the temp file now fails */
    pd_state_set_tso_hw(&s, 2000);
    assert_int_equal(pd_state_save(&s, err, sizeof err), -1);
    assert_contains(err, "state.json");
    assert_string_equal(read_file(), before);
    pd_state_close(&s);

    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_int_equal(pd_state_tso_hw(&s), 1000);
    pd_state_close(&s);
    assert_int_equal(rmdir(tmp), 0);
}

/* A state file made of the given top-level and "state" fields, one store and one region. */
static void write_state_with(const char *root_fields, const char *state_fields)
{
    char text[2048];
    snprintf(text, sizeof text,
             "{%s, \"state\": {%s, \"stores\": [{\"id\": 1, \"address\": \"127.0.0.1:1\"}], "
             "\"regions\": [{\"id\": 2}]}}",
             root_fields, state_fields);
    write_file(text);
}

#define GOOD_ROOT "\"term\": 3, \"voted_for\": \"pd1\""
#define GOOD_STATE_WITHOUT(x)                                                                 \
    "\"version\": 1, \"version_term\": 1, \"next_id\": 4, \"encryption\": \"off\"" x

static void test_each_bad_field_is_refused_by_name(void **state)
{
    (void)state;
    static const struct {
        const char *root, *state, *field;
    } cases[] = {
        {GOOD_ROOT, GOOD_STATE_WITHOUT(", \"tso_hw\": -5"), "\"state.tso_hw\" is -5"},
        {GOOD_ROOT, GOOD_STATE_WITHOUT(", \"tso_hw\": 9223372036854775807"),
         "\"state.tso_hw\" is 9223372036854775807"},
        {GOOD_ROOT, GOOD_STATE_WITHOUT(", \"tso_hw\": \"1\""), "\"state.tso_hw\" is \"1\""},
        {GOOD_ROOT,
         "\"version\": 1, \"version_term\": 1, \"next_id\": -1, \"encryption\": \"off\", "
         "\"tso_hw\": 0",
         "\"state.next_id\" is -1"},
        {GOOD_ROOT,
         "\"version\": -1, \"version_term\": 1, \"next_id\": 4, \"encryption\": \"off\", "
         "\"tso_hw\": 0",
         "\"state.version\" is -1"},
        {GOOD_ROOT,
         "\"version\": 1, \"version_term\": 1, \"next_id\": 4, \"encryption\": \"maybe\", "
         "\"tso_hw\": 0",
         "\"state.encryption\" is \"maybe\""},
        {"\"term\": \"x\", \"voted_for\": \"\"", GOOD_STATE_WITHOUT(", \"tso_hw\": 0"),
         "\"term\" is \"x\""},
        {"\"term\": 1, \"voted_for\": 5", GOOD_STATE_WITHOUT(", \"tso_hw\": 0"),
         "\"voted_for\" is 5"},
        {"\"term\": 1", GOOD_STATE_WITHOUT(", \"tso_hw\": 0"), "\"voted_for\" is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pd_state s;
        char err[512];
        write_state_with(cases[i].root, cases[i].state);
        char before[8192];
        snprintf(before, sizeof before, "%s", read_file());
        assert_int_equal(pd_state_open(&s, dir, err, sizeof err), -1);
        assert_contains(err, dir);
        assert_contains(err, "state.json");
        assert_contains(err, cases[i].field);
        assert_null(strchr(err, '\n'));
        assert_string_equal(read_file(), before); /* kept for the user */
        pd_state_close(&s);
    }
    /* The good case in the same shape loads. */
    struct pd_state s;
    char err[512];
    write_state_with(GOOD_ROOT, GOOD_STATE_WITHOUT(", \"tso_hw\": 35184372088831"));
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_int_equal(pd_state_tso_hw(&s), PD_TSO_MAX_PHYSICAL);
    assert_int_equal(s.term, 3);
    pd_state_close(&s);
}

static void test_bad_store_and_region_entries_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *text, *field;
    } cases[] = {
        {"{\"term\":1,\"voted_for\":\"\",\"state\":{\"version\":1,\"version_term\":1,\"next_id\":"
         "4,\"tso_hw\":0,\"encryption\":\"on\",\"stores\":[{\"id\":0,\"address\":\"a:1\"}],"
         "\"regions\":[]}}",
         "\"state.stores[0].id\" is 0"},
        {"{\"term\":1,\"voted_for\":\"\",\"state\":{\"version\":1,\"version_term\":1,\"next_id\":"
         "4,\"tso_hw\":0,\"encryption\":\"on\",\"stores\":[{\"id\":1,\"address\":\"a:1\","
         "\"capacity\":-3}],\"regions\":[]}}",
         "\"state.stores[0].capacity\" is -3"},
        {"{\"term\":1,\"voted_for\":\"\",\"state\":{\"version\":1,\"version_term\":1,\"next_id\":"
         "4,\"tso_hw\":0,\"encryption\":\"on\",\"stores\":[],\"regions\":[{\"id\":\"2\"}]}}",
         "\"state.regions[0].id\" is \"2\""},
        {"{\"term\":1,\"voted_for\":\"\",\"state\":{\"version\":1,\"version_term\":1,\"next_id\":"
         "4,\"tso_hw\":0,\"encryption\":\"on\",\"stores\":{},\"regions\":[]}}",
         "\"state.stores\" is {}, must be an array"},
        {"{\"term\":1,\"voted_for\":\"\"}", "\"state\" is missing"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pd_state s;
        char err[512];
        write_file(cases[i].text);
        assert_int_equal(pd_state_open(&s, dir, err, sizeof err), -1);
        assert_contains(err, "state.json");
        assert_contains(err, cases[i].field);
        pd_state_close(&s);
    }
}

/* A leader's state replaces ours, but never with a lower TSO high-water. */
static void test_replace_never_lowers_the_tso_high_water(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512];
    int status;
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    pd_state_set_tso_hw(&s, 5000);
    json_t *leader = json_deep_copy(s.doc);
    json_object_set_new(leader, "tso_hw", json_integer(10));
    json_object_set_new(leader, "version", json_integer(42));
    assert_int_equal(pd_state_replace(&s, leader, err, sizeof err), 0);
    assert_int_equal(pd_state_version(&s), 42); /* the rest is the leader's */
    assert_int_equal(pd_state_tso_hw(&s), 5000);

    json_object_set_new(leader, "tso_hw", json_integer(9000)); /* higher: taken */
    assert_int_equal(pd_state_replace(&s, leader, err, sizeof err), 0);
    assert_int_equal(pd_state_tso_hw(&s), 9000);

    json_object_set_new(leader, "next_id", json_integer(-1));
    assert_int_equal(pd_state_replace(&s, leader, err, sizeof err), -1);
    assert_contains(err, "\"state.next_id\" is -1");
    assert_int_equal(register_store(&s, "127.0.0.1:20160", &status, err, sizeof err), 1);
    json_decref(leader);
    pd_state_close(&s);
}

static void test_store_address_must_be_host_port(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512];
    int status = 0;
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    static const struct {
        const char *address, *why;
    } bad[] = {
        {"127.0.0.1", "\"address\" must be host:port (bad URL '127.0.0.1': missing port)"},
        {"127.0.0.1:0", "\"address\" must be host:port (bad URL '127.0.0.1:0': port must be a "
                        "number from 1 to 65535"},
        {"127.0.0.1:65536", "port must be a number from 1 to 65535"},
        {"https://127.0.0.1:20160", "\"address\" must be host:port without a scheme or a path; "
                                    "got 'https://127.0.0.1:20160'"},
        {"127.0.0.1:20160/x", "without a scheme or a path"},
        {"", "\"address\" (host:port) is required"},
        {NULL, "\"address\" (host:port) is required"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(register_store(&s, bad[i].address, &status, err, sizeof err), 0);
        assert_int_equal(status, 400);
        assert_contains(err, bad[i].why);
    }
    char *huge = malloc(3 * 1024 * 1024);
    assert_non_null(huge);
    memset(huge, 'a', 3 * 1024 * 1024 - 7);
    memcpy(huge + 3 * 1024 * 1024 - 7, ":20160", 7);
    assert_int_equal(register_store(&s, huge, &status, err, sizeof err), 0);
    assert_int_equal(status, 400);
    assert_contains(err, "\"address\" must be host:port of at most 255 bytes; got 3145727 bytes");
    memset(huge, 'a', 249);
    memcpy(huge + 249, ":20160", 7); /* 255 bytes: the longest accepted */
    assert_int_equal(register_store(&s, huge, &status, err, sizeof err), 1);
    free(huge);
    assert_int_equal(json_array_size(json_object_get(s.doc, "stores")), 1);

    assert_int_equal(pd_state_register_store(&s, "127.0.0.1:20161", "nope", "v", false, 1,
                                             &status, err, sizeof err),
                     0);
    assert_contains(err, "\"status_address\" must be host:port (bad URL 'nope': missing port)");
    assert_int_equal(register_store(&s, "[::1]:20161", &status, err, sizeof err), 4);
    assert_int_equal(register_store(&s, "tikv-1.example:20160", &status, err, sizeof err), 5);
    pd_state_close(&s);
}

static void test_heartbeat_counters_are_checked(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512];
    int status = 0;
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_int_equal(register_store(&s, "127.0.0.1:20160", &status, err, sizeof err), 1);
    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{\"capacity\": \"x\"}", "\"capacity\" is \"x\""},
        {"{\"available\": -1}", "\"available\" is -1"},
        {"{\"used_size\": 1.5}", "\"used_size\" is 1.5"},
        {"{\"region_count\": null}", "\"region_count\" is null"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *stats = json_loads(bad[i].body, 0, NULL);
        assert_non_null(stats);
        assert_int_equal(pd_state_store_heartbeat(&s, 1, stats, 5, &status, err, sizeof err), -1);
        assert_int_equal(status, 400);
        assert_contains(err, bad[i].why);
        json_decref(stats);
    }
    json_t *store = pd_state_find_store(&s, 1);
    assert_null(json_object_get(store, "capacity")); /* nothing was taken from the bad ones */
    json_t *good = json_pack("{s:I, s:I}", "capacity", (json_int_t)100, "available",
                             (json_int_t)40);
    assert_int_equal(pd_state_store_heartbeat(&s, 1, good, 5, &status, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(store, "capacity")), 100);
    assert_int_equal(pd_state_store_heartbeat(&s, 9, good, 5, &status, err, sizeof err), -1);
    assert_int_equal(status, 404);
    assert_contains(err, "store 9 not found");
    json_decref(good);
    pd_state_close(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_save_and_load_round_trip, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_failed_save_leaves_the_old_file, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_each_bad_field_is_refused_by_name, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_bad_store_and_region_entries_are_refused, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_replace_never_lowers_the_tso_high_water, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_store_address_must_be_host_port, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_heartbeat_counters_are_checked, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
