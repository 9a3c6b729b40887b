/* test_pd_state.c — PD's persisted state: a save/load round trip, atomic writes that leave
 * the old file when they fail, every bad field of a state file refused by name, the TSO
 * high-water that a leader's state never lowers, the checks on store input, and region 1:
 * bootstrapped at the first registration, up to 3 peers, leader reports ordered by term. */
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

static int heartbeat(struct pd_state *s, uint64_t id, const json_t *body, int64_t now,
                     int *status, char *err, size_t errlen)
{
    char note[512];
    return pd_state_store_heartbeat(s, id, body, now, status, err, errlen, note, sizeof note);
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
    assert_int_equal(pd_state_alloc_id(&s), 3); /* store 1, its peer 2 */
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
             "\"regions\": [{\"id\": 1, \"start_key\": \"\", \"end_key\": \"\", \"epoch\": "
             "{\"conf_ver\": 1, \"version\": 1}, \"peers\": [{\"id\": 2, \"store_id\": 1}]}]}}",
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
    assert_int_equal(register_store(&s, "[::1]:20161", &status, err, sizeof err), 3);
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
        assert_int_equal(heartbeat(&s, 1, stats, 5, &status, err, sizeof err), -1);
        assert_int_equal(status, 400);
        assert_contains(err, bad[i].why);
        json_decref(stats);
    }
    json_t *store = pd_state_find_store(&s, 1);
    assert_null(json_object_get(store, "capacity")); /* nothing was taken from the bad ones */
    json_t *good = json_pack("{s:I, s:I}", "capacity", (json_int_t)100, "available",
                             (json_int_t)40);
    assert_int_equal(heartbeat(&s, 1, good, 5, &status, err, sizeof err), 0);
    assert_int_equal(json_integer_value(json_object_get(store, "capacity")), 100);
    assert_int_equal(heartbeat(&s, 9, good, 5, &status, err, sizeof err), -1);
    assert_int_equal(status, 404);
    assert_contains(err, "store 9 not found");
    json_decref(good);
    pd_state_close(&s);
}

/* Region 1's peers as "store_id,store_id,..." and its conf_ver, for short assertions. */
static const char *peer_stores(const struct pd_state *s)
{
    static char buf[64];
    size_t used = 0;
    buf[0] = '\0';
    size_t i;
    const json_t *p;
    json_array_foreach(json_object_get(pd_state_find_region(s, 1), "peers"), i, p)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%s%lld", i ? "," : "",
                                 (long long)json_integer_value(json_object_get(p, "store_id")));
    return buf;
}

static json_int_t conf_ver(const struct pd_state *s)
{
    return json_integer_value(
        json_object_get(json_object_get(pd_state_find_region(s, 1), "epoch"), "conf_ver"));
}

static uint64_t register_at(struct pd_state *s, const char *address, int64_t now)
{
    char err[512];
    int status = 0;
    uint64_t id = pd_state_register_store(s, address, "", "v1", false, now, &status, err,
                                          sizeof err);
    assert_true(id > 0);
    return id;
}

/* The first registration creates region 1 over the whole key space with that store as its
 * only peer; the register reply's region object lists the peers with their addresses. */
static void test_region_created_at_first_register(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512];
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_null(pd_state_find_region(&s, 1));
    assert_null(pd_state_region_for_store(&s, 1));
    assert_int_equal(register_at(&s, "127.0.0.1:20160", 1000), 1);

    json_t *r = pd_state_find_region(&s, 1);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "start_key")), "");
    assert_string_equal(json_string_value(json_object_get(r, "end_key")), "");
    assert_string_equal(peer_stores(&s), "1");
    assert_int_equal(conf_ver(&s), 1);
    assert_null(json_object_get(r, "leader")); /* until a store reports leading it */

    json_t *mine = pd_state_region_for_store(&s, 1);
    json_t *want = json_loads("{\"id\":1,\"start_key\":\"\",\"end_key\":\"\",\"peers\":[{\"id\":2,"
                              "\"store_id\":1,\"address\":\"127.0.0.1:20160\"}],\"epoch\":{"
                              "\"conf_ver\":1,\"version\":1}}", 0, NULL);
    assert_non_null(want);
    assert_true(json_equal(mine, want));
    assert_null(pd_state_region_for_store(&s, 99));
    json_decref(mine);
    json_decref(want);
    pd_state_close(&s);
}

/* Stores 2 and 3 join as they register (conf_ver bumps); a fourth is never added, by
 * registration or heartbeat; registering again changes nothing. */
static void test_region_peers_up_to_three(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512];
    int status;
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    uint64_t a = register_at(&s, "127.0.0.1:20160", 1000);
    uint64_t b = register_at(&s, "127.0.0.1:20161", 1000);
    assert_int_equal(conf_ver(&s), 2);
    uint64_t c = register_at(&s, "127.0.0.1:20162", 1000);
    assert_int_equal(conf_ver(&s), 3);
    char want[64];
    snprintf(want, sizeof want, "%llu,%llu,%llu", (unsigned long long)a, (unsigned long long)b,
             (unsigned long long)c);
    assert_string_equal(peer_stores(&s), want);

    json_t *seen_by_a = pd_state_region_for_store(&s, a); /* a learns of the later peers */
    json_t *peers = json_object_get(seen_by_a, "peers");
    assert_int_equal(json_array_size(peers), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(peers, 2), "address")),
                        "127.0.0.1:20162");
    json_decref(seen_by_a);

    uint64_t d = register_at(&s, "127.0.0.1:20163", 1000);
    json_t *hb = json_object();
    assert_int_equal(heartbeat(&s, d, hb, 2000, &status, err, sizeof err), 0);
    json_decref(hb);
    assert_string_equal(peer_stores(&s), want);
    assert_int_equal(conf_ver(&s), 3);
    assert_null(pd_state_region_for_store(&s, d));
    assert_int_equal(register_at(&s, "127.0.0.1:20160", 3000), a);
    assert_string_equal(peer_stores(&s), want);
    assert_int_equal(conf_ver(&s), 3);
    assert_int_equal(json_array_size(json_object_get(s.doc, "regions")), 1);
    pd_state_close(&s);
}

/* Bootstrapping takes the first 3 stores that are Up, skipping one whose heartbeats stopped. */
static void test_bootstrap_takes_stores_that_are_up(void **state)
{
    (void)state;
    write_file("{\"term\":1,\"voted_for\":\"\",\"state\":{\"version\":1,\"version_term\":1,"
               "\"next_id\":6,\"tso_hw\":0,\"encryption\":\"off\",\"stores\":["
               "{\"id\":1,\"address\":\"a:1\",\"encrypted\":false,\"last_heartbeat_ms\":0},"
               "{\"id\":2,\"address\":\"a:2\",\"encrypted\":false,\"last_heartbeat_ms\":100000},"
               "{\"id\":3,\"address\":\"a:3\",\"encrypted\":false,\"last_heartbeat_ms\":100000},"
               "{\"id\":4,\"address\":\"a:4\",\"encrypted\":false,\"last_heartbeat_ms\":100000},"
               "{\"id\":5,\"address\":\"a:5\",\"encrypted\":false,\"last_heartbeat_ms\":100000}],"
               "\"regions\":[]}}");
    struct pd_state s;
    char err[512];
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_int_equal(register_at(&s, "a:6", 100000), 6);
    assert_string_equal(peer_stores(&s), "2,3,4");
    assert_int_equal(conf_ver(&s), 1);
    pd_state_close(&s);
}

static int leader_report(struct pd_state *s, uint64_t store, const char *body, char *note,
                         size_t notelen, char *err, size_t errlen)
{
    int status = 0;
    json_t *b = json_loads(body, 0, NULL);
    assert_non_null(b);
    int rc = pd_state_store_heartbeat(s, store, b, 5000, &status, err, errlen, note, notelen);
    json_decref(b);
    if (rc != 0)
        assert_int_equal(status, 400);
    return rc;
}

static json_int_t leader_store(const struct pd_state *s)
{
    return json_integer_value(
        json_object_get(json_object_get(pd_state_find_region(s, 1), "leader"), "store_id"));
}

/* A heartbeat's "leader_of" records the leader with its term; an older term is ignored, an
 * equal or newer one taken; a store that is not a peer, or a region that does not exist, is
 * ignored; malformed reports are 400 naming the field and change nothing. */
static void test_leader_reports_ordered_by_term(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512], note[512];
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    for (int i = 0; i < 4; i++) {
        char address[32];
        snprintf(address, sizeof address, "127.0.0.1:%d", 20160 + i);
        register_at(&s, address, 1000);
    }
    uint64_t b = 3, c = 5, d = 7; /* store ids: 1, 3, 5, 7 (peers take 2, 4, 6) */
    assert_string_equal(peer_stores(&s), "1,3,5");
    assert_int_equal(leader_report(&s, b, "{\"leader_of\":[1],\"term\":5}", note, sizeof note,
                                   err, sizeof err), 0);
    assert_string_equal(note, "");
    assert_int_equal(leader_store(&s), b);
    assert_int_equal(json_integer_value(json_object_get(pd_state_find_region(&s, 1),
                                                        "leader_term")), 5);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(pd_state_find_region(&s, 1), "leader"), "id")), 4);

    assert_int_equal(leader_report(&s, c, "{\"leader_of\":[1],\"term\":4}", note, sizeof note,
                                   err, sizeof err), 0);
    assert_contains(note, "store 5 reports leading region 1 in term 4, older than the recorded "
                          "term 5: ignored as stale");
    assert_int_equal(leader_store(&s), b);
    assert_int_equal(leader_report(&s, d, "{\"leader_of\":[1],\"term\":9}", note, sizeof note,
                                   err, sizeof err), 0);
    assert_contains(note, "store 7 reports leading region 1 but is not one of its peers");
    assert_int_equal(leader_report(&s, c, "{\"leader_of\":[7],\"term\":9}", note, sizeof note,
                                   err, sizeof err), 0);
    assert_contains(note, "region 7, which does not exist");
    assert_int_equal(leader_store(&s), b);

    static const struct {
        const char *body, *why;
    } bad[] = {
        {"{\"leader_of\":1,\"term\":9}", "field \"leader_of\" is 1, must be an array"},
        {"{\"leader_of\":[0],\"term\":9}", "field \"leader_of[0]\" is 0"},
        {"{\"leader_of\":[1,\"x\"],\"term\":9}", "field \"leader_of[1]\" is \"x\""},
        {"{\"leader_of\":[1]}", "field \"term\" is missing"},
        {"{\"leader_of\":[1],\"term\":-2}", "field \"term\" is -2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(leader_report(&s, c, bad[i].body, note, sizeof note, err, sizeof err),
                         -1);
        assert_contains(err, bad[i].why);
        assert_int_equal(leader_store(&s), b);
    }
    assert_int_equal(leader_report(&s, c, "{\"leader_of\":[1],\"term\":5}", note, sizeof note,
                                   err, sizeof err), 0);
    assert_string_equal(note, "");
    assert_int_equal(leader_store(&s), c); /* same term: taken */
    assert_int_equal(leader_report(&s, b, "{\"leader_of\":[],\"capacity\":1}", note,
                                   sizeof note, err, sizeof err), 0);
    assert_int_equal(leader_store(&s), c); /* a heartbeat without a report leaves it */
    pd_state_close(&s);
}

/* The region, its peers, leader and term survive a save and a load. */
static void test_region_round_trip(void **state)
{
    (void)state;
    struct pd_state s;
    char err[512], note[512];
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    register_at(&s, "127.0.0.1:20160", 1000);
    register_at(&s, "127.0.0.1:20161", 1000);
    assert_int_equal(leader_report(&s, 3, "{\"leader_of\":[1],\"term\":7}", note, sizeof note,
                                   err, sizeof err), 0);
    json_t *before = json_deep_copy(pd_state_find_region(&s, 1));
    assert_int_equal(pd_state_save(&s, err, sizeof err), 0);
    pd_state_close(&s);
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_true(json_equal(before, pd_state_find_region(&s, 1)));
    assert_int_equal(leader_store(&s), 3);
    assert_int_equal(leader_report(&s, 1, "{\"leader_of\":[1],\"term\":6}", note, sizeof note,
                                   err, sizeof err), 0);
    assert_contains(note, "older than the recorded term 7"); /* the term was kept */
    assert_int_equal(register_at(&s, "127.0.0.1:20162", 2000), 5);
    assert_string_equal(peer_stores(&s), "1,3,5");
    json_decref(before);
    pd_state_close(&s);
}

/* A state file whose region is REGION (JSON) and whose stores are 1, 2 and 3. */
static void write_region_state(const char *regions)
{
    char text[2048];
    int n = snprintf(text, sizeof text,
                     "{\"term\":1,\"voted_for\":\"\",\"state\":{\"version\":1,\"version_term\":1,"
                     "\"next_id\":9,\"tso_hw\":0,\"encryption\":\"off\",\"stores\":["
                     "{\"id\":1,\"address\":\"a:1\"},{\"id\":2,\"address\":\"a:2\"},"
                     "{\"id\":3,\"address\":\"a:3\"}],\"regions\":[%s]}}",
                     regions);
    assert_true(n > 0 && (size_t)n < sizeof text);
    write_file(text);
}

#define R_HEAD "{\"id\":1,\"start_key\":\"\",\"end_key\":\"\",\"epoch\":{\"conf_ver\":2,\"version\":1},"
#define R_PEERS "\"peers\":[{\"id\":4,\"store_id\":1},{\"id\":5,\"store_id\":2}]"
#define R_LEADER ",\"leader\":{\"id\":4,\"store_id\":1},\"leader_term\":5}"

static void test_bad_region_fields_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *regions, *why;
    } cases[] = {
        {"{\"id\":2,\"start_key\":\"\",\"end_key\":\"\",\"epoch\":{\"conf_ver\":2,\"version\":1},"
         R_PEERS R_LEADER, "field \"state.regions[0].id\" is 2, must be an integer from 1 to 1"},
        {"{\"id\":1,\"start_key\":5,\"end_key\":\"\",\"epoch\":{\"conf_ver\":2,\"version\":1},"
         R_PEERS R_LEADER, "field \"state.regions[0].start_key\" is 5, must be a string"},
        {"{\"id\":1,\"start_key\":\"\",\"epoch\":{\"conf_ver\":2,\"version\":1}," R_PEERS R_LEADER,
         "field \"state.regions[0].end_key\" is missing"},
        {"{\"id\":1,\"start_key\":\"\",\"end_key\":\"\",\"epoch\":\"x\"," R_PEERS R_LEADER,
         "field \"state.regions[0].epoch\" is \"x\", must be an object"},
        {"{\"id\":1,\"start_key\":\"\",\"end_key\":\"\",\"epoch\":{\"conf_ver\":0,\"version\":1},"
         R_PEERS R_LEADER, "field \"state.regions[0].epoch.conf_ver\" is 0"},
        {"{\"id\":1,\"start_key\":\"\",\"end_key\":\"\",\"epoch\":{\"conf_ver\":2}," R_PEERS
         R_LEADER, "field \"state.regions[0].epoch.version\" is missing"},
        {R_HEAD "\"peers\":[]}", "field \"state.regions[0].peers\" is [], must be an array of 1 "
                                 "to 3 peers"},
        {R_HEAD "\"peers\":[{\"id\":4,\"store_id\":1},{\"id\":5,\"store_id\":2},{\"id\":6,"
         "\"store_id\":3},{\"id\":7,\"store_id\":3}]}", "must be an array of 1 to 3 peers"},
        {R_HEAD "\"peers\":[7]}", "field \"state.regions[0].peers[0]\" must be an object"},
        {R_HEAD "\"peers\":[{\"id\":4,\"store_id\":1},{\"id\":0,\"store_id\":2}]}",
         "field \"state.regions[0].peers[1].id\" is 0"},
        {R_HEAD "\"peers\":[{\"id\":4,\"store_id\":1},{\"id\":5,\"store_id\":9}]}",
         "field \"state.regions[0].peers[1].store_id\" is 9, not a known store"},
        {R_HEAD "\"peers\":[{\"id\":4,\"store_id\":1},{\"id\":5,\"store_id\":1}]}",
         "field \"state.regions[0].peers[1].store_id\" is 1, a store that is already a peer"},
        {R_HEAD R_PEERS ",\"leader\":{\"id\":4,\"store_id\":2},\"leader_term\":5}",
         "field \"state.regions[0].leader\" is {\"id\":4,\"store_id\":2}, must be one of the "
         "region's peers"},
        {R_HEAD R_PEERS ",\"leader\":{\"id\":4,\"store_id\":1},\"leader_term\":-1}",
         "field \"state.regions[0].leader_term\" is -1"},
        {R_HEAD R_PEERS R_LEADER "," R_HEAD R_PEERS R_LEADER,
         "field \"state.regions\" has 2 entries, must have at most 1"},
    };
    struct pd_state s;
    char err[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_region_state(cases[i].regions);
        assert_int_equal(pd_state_open(&s, dir, err, sizeof err), -1);
        assert_contains(err, "state.json is corrupt");
        assert_contains(err, cases[i].why);
        pd_state_close(&s);
    }
    /* The good region in the same shape loads, and a leader's state is checked as well. */
    write_region_state(R_HEAD R_PEERS R_LEADER);
    assert_int_equal(pd_state_open(&s, dir, err, sizeof err), 0);
    assert_string_equal(peer_stores(&s), "1,2");
    json_t *leader = json_deep_copy(s.doc);
    json_object_set_new(json_object_get(json_array_get(json_object_get(leader, "regions"), 0),
                                        "epoch"),
                        "version", json_integer(0));
    assert_int_equal(pd_state_replace(&s, leader, err, sizeof err), -1);
    assert_contains(err, "field \"state.regions[0].epoch.version\" is 0");
    assert_string_equal(peer_stores(&s), "1,2");
    json_decref(leader);
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
        cmocka_unit_test_setup_teardown(test_region_created_at_first_register, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_region_peers_up_to_three, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_bootstrap_takes_stores_that_are_up, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_leader_reports_ordered_by_term, make_dir,
                                        remove_dir),
        cmocka_unit_test_setup_teardown(test_region_round_trip, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(test_bad_region_fields_are_refused, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
