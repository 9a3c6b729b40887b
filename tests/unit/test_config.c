/* test_config.c — cfg_load() on the TOML snippets of TiDB's TLS guide ("Enable TLS
 * Authentication and Encrypt the Stored Data") and on everything that can go wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"

/* One struct holding the keys of all three components, as a daemon's config would. */
struct tcfg {
    char *cluster_ssl_ca, *cluster_ssl_cert, *cluster_ssl_key; /* TiDB */
    struct cfg_list cluster_verify_cn;
    char *ca_path, *cert_path, *key_path; /* TiKV (cert-path and key-path shared with PD) */
    char *cacert_path;                    /* PD */
    struct cfg_list cert_allowed_cn;
    char *cipher_file;
    long long port;
    bool flag;
    char *top;    /* a key before any section */
    char *nested; /* [storage.block-cache] name */
};

#define K(sec, name, type, field) {sec, name, type, offsetof(struct tcfg, field)}
static const struct cfg_key table[] = {
    K("security", "cluster-ssl-ca", CFG_STRING, cluster_ssl_ca),
    K("security", "cluster-ssl-cert", CFG_STRING, cluster_ssl_cert),
    K("security", "cluster-ssl-key", CFG_STRING, cluster_ssl_key),
    K("security", "cluster-verify-cn", CFG_STRING_LIST, cluster_verify_cn),
    K("security", "ca-path", CFG_STRING, ca_path),
    K("security", "cert-path", CFG_STRING, cert_path),
    K("security", "key-path", CFG_STRING, key_path),
    K("security", "cacert-path", CFG_STRING, cacert_path),
    K("security", "cert-allowed-cn", CFG_STRING_LIST, cert_allowed_cn),
    K("security", "cipher-file", CFG_STRING, cipher_file),
    K("server", "port", CFG_INT, port),
    K("server", "flag", CFG_BOOL, flag),
    K("", "top", CFG_STRING, top),
    K("storage.block-cache", "name", CFG_STRING, nested),
};
#define N_KEYS (sizeof table / sizeof table[0])

/* ------------------------------------------------------------ temp files */

static char tmpdir[64];
static char paths[256][96];
static size_t n_paths;

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/test_config.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < n_paths; i++)
        unlink(paths[i]);
    return rmdir(tmpdir);
}

/* Writes content to a new file in the temp dir; returns its path. */
static const char *write_tmp(const char *content)
{
    assert_true(n_paths < sizeof paths / sizeof paths[0]);
    char *path = paths[n_paths++];
    snprintf(path, sizeof paths[0], "%s/cfg.XXXXXX", tmpdir);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(content);
    assert_int_equal(write(fd, content, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    return path;
}

static char err[512];
static const char *last_path;

static int load(const char *content, struct tcfg *c)
{
    last_path = write_tmp(content);
    memset(err, 'X', sizeof err);
    err[sizeof err - 1] = '\0';
    int rc = cfg_load(last_path, table, N_KEYS, c, err, sizeof err);
    if (rc == 0)
        assert_string_equal(err, "");
    return rc;
}

static void load_ok(const char *content, struct tcfg *c)
{
    int rc = load(content, c);
    if (rc != 0)
        fail_msg("cfg_load failed: %s\n--- input ---\n%s", err, content);
}

/* Removes the indentation of the first line from every line (the markdown list indent). */
static char *dedent(const char *s)
{
    size_t indent = strspn(s, " ");
    char *out = malloc(strlen(s) + 1), *o = out;
    assert_non_null(out);
    while (*s) {
        size_t k = 0;
        while (k < indent && s[k] == ' ')
            k++;
        s += k;
        while (*s && *s != '\n')
            *o++ = *s++;
        if (*s)
            *o++ = *s++;
    }
    *o = '\0';
    return out;
}

static void assert_list(const struct cfg_list *l, const char *const *want, size_t n)
{
    assert_int_equal(l->n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(l->items[i], want[i]);
}

/* ------------------------------------------------- the TLS guide's TOML snippets */

/* Verbatim from TiDB's guide "Enable TLS Authentication and Encrypt the Stored Data", with
 * the markdown indentation. */
struct snippet {
    const char *what;
    const char *text;
    const char *want[10]; /* expected field values, by field index below, NULL = untouched */
    const char *list[6];  /* expected list items */
    size_t n_list;
    int list_field; /* 0 none, 1 cluster_verify_cn, 2 cert_allowed_cn */
};
enum { F_CSCA, F_CSCERT, F_CSKEY, F_CA, F_CERT, F_KEY, F_CACERT, F_CIPHER, F_N };

static char **field_of(struct tcfg *c, int f)
{
    char **fields[F_N] = {&c->cluster_ssl_ca, &c->cluster_ssl_cert, &c->cluster_ssl_key,
                          &c->ca_path,        &c->cert_path,        &c->key_path,
                          &c->cacert_path,    &c->cipher_file};
    return fields[f];
}

static const struct snippet snippets[] = {
    {"TiDB cluster-ssl-*",
     "        [security]\n"
     "        # Path of file that contains list of trusted SSL CAs for connection with cluster "
     "components.\n"
     "        cluster-ssl-ca = \"/path/to/ca.pem\"\n"
     "        # Path of file that contains X509 certificate in PEM format for connection with "
     "cluster components.\n"
     "        cluster-ssl-cert = \"/path/to/tidb-server.pem\"\n"
     "        # Path of file that contains X509 key in PEM format for connection with cluster "
     "components.\n"
     "        cluster-ssl-key = \"/path/to/tidb-server-key.pem\"\n",
     {[F_CSCA] = "/path/to/ca.pem",
      [F_CSCERT] = "/path/to/tidb-server.pem",
      [F_CSKEY] = "/path/to/tidb-server-key.pem"},
     {0},
     0,
     0},
    {"TiKV ca-path/cert-path/key-path",
     "        [security]\n"
     "        # set the path for certificates. Empty string means disabling secure "
     "connections.\n"
     "        ca-path = \"/path/to/ca.pem\"\n"
     "        cert-path = \"/path/to/tikv-server.pem\"\n"
     "        key-path = \"/path/to/tikv-server-key.pem\"\n",
     {[F_CA] = "/path/to/ca.pem",
      [F_CERT] = "/path/to/tikv-server.pem",
      [F_KEY] = "/path/to/tikv-server-key.pem"},
     {0},
     0,
     0},
    {"PD cacert-path/cert-path/key-path",
     "        [security]\n"
     "        # Path of file that contains list of trusted SSL CAs. If set, following four "
     "settings shouldn't be empty\n"
     "        cacert-path = \"/path/to/ca.pem\"\n"
     "        # Path of file that contains X509 certificate in PEM format.\n"
     "        cert-path = \"/path/to/pd-server.pem\"\n"
     "        # Path of file that contains X509 key in PEM format.\n"
     "        key-path = \"/path/to/pd-server-key.pem\"\n",
     {[F_CACERT] = "/path/to/ca.pem",
      [F_CERT] = "/path/to/pd-server.pem",
      [F_KEY] = "/path/to/pd-server-key.pem"},
     {0},
     0,
     0},
    {"TiDB cluster-verify-cn (multi-line, ] closing at the snippet's column 0)",
     "        [security]\n"
     "        cluster-verify-cn = [\n"
     "            \"TiDB-Server\",\n"
     "            \"TiKV-Control\",\n"
     "        ]\n",
     {0},
     {"TiDB-Server", "TiKV-Control"},
     2,
     1},
    {"TiKV cert-allowed-cn (multi-line, trailing comma)",
     "        [security]\n"
     "        cert-allowed-cn = [\n"
     "            \"TiDB-Server\", \"PD-Server\", \"TiKV-Control\", \"RawKvClient1\",\n"
     "        ]\n",
     {0},
     {"TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1"},
     4,
     2},
    {"PD cert-allowed-cn (one line)",
     "        [security]\n"
     "        cert-allowed-cn = [\"TiKV-Server\", \"TiDB-Server\", \"PD-Control\"]\n",
     {0},
     {"TiKV-Server", "TiDB-Server", "PD-Control"},
     3,
     2},
    {"TiKV cipher-file",
     "    [security]\n"
     "    # Storage path of the Cipher file.\n"
     "    cipher-file = \"/path/to/cipher-file-256\"\n",
     {[F_CIPHER] = "/path/to/cipher-file-256"},
     {0},
     0,
     0},
};

static void check_snippet(const struct snippet *s, const char *text)
{
    struct tcfg c = {0};
    c.port = 77;
    load_ok(text, &c);
    for (int f = 0; f < F_N; f++) {
        char *got = *field_of(&c, f);
        if (s->want[f]) {
            if (!got)
                fail_msg("%s: field %d not set", s->what, f);
            assert_string_equal(got, s->want[f]);
        } else if (got) {
            fail_msg("%s: field %d unexpectedly set to '%s'", s->what, f, got);
        }
    }
    const struct cfg_list *lists[3] = {NULL, &c.cluster_verify_cn, &c.cert_allowed_cn};
    for (int i = 1; i <= 2; i++) {
        if (i == s->list_field)
            assert_list(lists[i], s->list, s->n_list);
        else
            assert_int_equal(lists[i]->n, 0);
    }
    assert_int_equal(c.port, 77);
    cfg_free(table, N_KEYS, &c);
}

static void test_guide_snippets_as_in_document(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof snippets / sizeof snippets[0]; i++)
        check_snippet(&snippets[i], snippets[i].text);
}

static void test_guide_snippets_dedented(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof snippets / sizeof snippets[0]; i++) {
        char *text = dedent(snippets[i].text);
        assert_int_equal(text[0], '['); /* really dedented */
        check_snippet(&snippets[i], text);
        free(text);
    }
}

/* The dedented cluster-verify-cn snippet has "]" alone at column 0 — the case raw inih
 * rejects. Spelled out here so the test does not depend on dedent(). */
static void test_guide_verify_cn_bracket_column0(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("[security]\n"
            "cluster-verify-cn = [\n"
            "    \"TiDB-Server\",\n"
            "    \"TiKV-Control\",\n"
            "]\n"
            "cert-path = \"/after.pem\"\n",
            &c);
    const char *want[] = {"TiDB-Server", "TiKV-Control"};
    assert_list(&c.cluster_verify_cn, want, 2);
    assert_string_equal(c.cert_path, "/after.pem");
    cfg_free(table, N_KEYS, &c);
}

/* All snippets of one component pasted into one file, as a user's config would hold them. */
static void test_guide_tikv_full_config(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("# tikv.toml\n"
            "[server]\n"
            "port = 20160\n"
            "\n"
            "[security]\n"
            "# set the path for certificates. Empty string means disabling secure connections.\n"
            "ca-path = \"/path/to/ca.pem\"\n"
            "cert-path = \"/path/to/tikv-server.pem\"\n"
            "key-path = \"/path/to/tikv-server-key.pem\"\n"
            "cert-allowed-cn = [\n"
            "    \"TiDB-Server\", \"PD-Server\", \"TiKV-Control\", \"RawKvClient1\",\n"
            "]\n"
            "# Storage path of the Cipher file.\n"
            "cipher-file = \"/path/to/cipher-file-256\"\n",
            &c);
    assert_int_equal(c.port, 20160);
    assert_string_equal(c.ca_path, "/path/to/ca.pem");
    assert_string_equal(c.cert_path, "/path/to/tikv-server.pem");
    assert_string_equal(c.key_path, "/path/to/tikv-server-key.pem");
    assert_string_equal(c.cipher_file, "/path/to/cipher-file-256");
    const char *want[] = {"TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1"};
    assert_list(&c.cert_allowed_cn, want, 4);
    assert_true(cfg_list_contains(&c.cert_allowed_cn, "TiKV-Control"));
    assert_false(cfg_list_contains(&c.cert_allowed_cn, "tikv-control"));
    cfg_free(table, N_KEYS, &c);
}

/* ------------------------------------------------------------ syntax */

static void test_comments_after_values(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("[security]   # the TLS section\n"
            "cert-path = \"/a.pem\"   # the cert\n"
            "key-path = '/a-key.pem'# no blank before the comment\n"
            "cert-allowed-cn = [  # who may connect\n"
            "  \"A\", # first\n"
            "  # a whole comment line inside the array\n"
            "  \"B\"  # last, no trailing comma\n"
            "] # done\n"
            "[server]\n"
            "port = 4000 # the port\n"
            "flag = true\t# tab before the comment\n",
            &c);
    assert_string_equal(c.cert_path, "/a.pem");
    assert_string_equal(c.key_path, "/a-key.pem");
    const char *want[] = {"A", "B"};
    assert_list(&c.cert_allowed_cn, want, 2);
    assert_int_equal(c.port, 4000);
    assert_true(c.flag);
    cfg_free(table, N_KEYS, &c);
}

static void test_hash_and_semicolon_inside_quotes(void **state)
{
    (void)state;
    /* ';' is not a TOML comment: after a value it is an error, not silently dropped */
    struct tcfg c = {0};
    assert_int_equal(load("[security]\n"
                          "cert-path = \"/p/a#b.pem\" # a real comment\n"
                          "key-path = '/p/c # d.pem'\n"
                          "ca-path = \"/p/e ;f.pem\" ; \n",
                          &c),
                     -1);
    assert_non_null(strstr(err, ":4: unexpected text after the value of 'ca-path'"));
    cfg_free(table, N_KEYS, &c);

    struct tcfg d = {0};
    load_ok("[security]\n"
            "cert-path = \"/p/a#b.pem\" # a real comment\n"
            "key-path = '/p/c # d.pem'\n"
            "ca-path = \"/p/e ;f.pem\"\n"
            "cacert-path = \"x ; y # z\" # comment\n"
            "cert-allowed-cn = [\"a#b\", 'c # d', \"e;f\"] # comment\n",
            &d);
    assert_string_equal(d.cert_path, "/p/a#b.pem");
    assert_string_equal(d.key_path, "/p/c # d.pem");
    assert_string_equal(d.ca_path, "/p/e ;f.pem");
    assert_string_equal(d.cacert_path, "x ; y # z");
    const char *want[] = {"a#b", "c # d", "e;f"};
    assert_list(&d.cert_allowed_cn, want, 3);
    cfg_free(table, N_KEYS, &d);
}

static void test_long_lines(void **state)
{
    (void)state;
    /* a 1000-character line: key, value of ~980 characters */
    char path[1001];
    path[0] = '/';
    for (size_t i = 1; i < 980; i++)
        path[i] = (char)('a' + i % 26);
    path[980] = '\0';
    char line[1100];
    int n = snprintf(line, sizeof line, "cert-path = \"%s\"", path);
    while (n < 1000)
        line[n++] = ' ';
    line[n] = '\0';
    assert_int_equal(strlen(line), 1000);

    char text[4000];
    snprintf(text, sizeof text, "[security]\n%s\nkey-path = \"/k.pem\"\n", line);
    struct tcfg c = {0};
    load_ok(text, &c);
    assert_string_equal(c.cert_path, path);
    assert_string_equal(c.key_path, "/k.pem"); /* the line after is its own line */
    cfg_free(table, N_KEYS, &c);

    /* a long one-line array and a long unknown key, then an error line number after them */
    struct tcfg d = {0};
    char arr[3000] = "cert-allowed-cn = [";
    for (int i = 0; i < 100; i++) {
        char item[32];
        snprintf(item, sizeof item, "%s\"CN-%03d\"", i ? ", " : "", i);
        strcat(arr, item);
    }
    strcat(arr, "]");
    char key[300];
    memset(key, 'k', 250);
    key[250] = '\0';
    snprintf(text, sizeof text, "[security]\n%s\n%s = 1\nport = \"x\"\n", arr, key);
    load_ok(text, &d);
    assert_int_equal(d.cert_allowed_cn.n, 100);
    assert_string_equal(d.cert_allowed_cn.items[0], "CN-000");
    assert_string_equal(d.cert_allowed_cn.items[99], "CN-099");
    cfg_free(table, N_KEYS, &d);

    struct tcfg e = {0};
    snprintf(text, sizeof text, "[server]\n%s\nflag = maybe\n", line);
    assert_int_equal(load(text, &e), -1); /* cert-path is not in [server]: a warning */
    char want[128];
    snprintf(want, sizeof want, "%s:3: value for 'flag' must be true or false", last_path);
    assert_string_equal(err, want);
    cfg_free(table, N_KEYS, &e);
}

static void test_escapes(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("[security]\n"
            "cert-path = \"q\\\"b\\\\s\\nn\\tt\\u00e9\\U0001F600\\r\\b\\f\"\n"
            "key-path = 'C:\\no\\escapes\\t'\n"
            "ca-path = \"\"\n"
            "cert-allowed-cn = [\"\\u0041\\\"\", 'lit\\n']\n",
            &c);
    assert_string_equal(c.cert_path, "q\"b\\s\nn\tt\xc3\xa9\xf0\x9f\x98\x80\r\b\f");
    assert_string_equal(c.key_path, "C:\\no\\escapes\\t");
    assert_string_equal(c.ca_path, "");
    const char *want[] = {"A\"", "lit\\n"};
    assert_list(&c.cert_allowed_cn, want, 2);
    cfg_free(table, N_KEYS, &c);
}

static void test_integers_and_bools(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        long long want;
    } ints[] = {
        {"4000", 4000},
        {"+17", 17},
        {"-5", -5},
        {"0", 0},
        {"1_000_000", 1000000},
        {"0x1F", 31},
        {"0o17", 15},
        {"0b101", 5},
        {"9223372036854775807", LLONG_MAX},
        {"-9223372036854775808", LLONG_MIN},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "[server]\nport = %s\n", ints[i].text);
        struct tcfg c = {0};
        load_ok(text, &c);
        if (c.port != ints[i].want)
            fail_msg("port = %s gave %lld", ints[i].text, c.port);
    }
    struct tcfg c = {.flag = true};
    load_ok("[server]\nflag = false\n", &c);
    assert_false(c.flag);
    load_ok("[server]\nflag = true\n", &c);
    assert_true(c.flag);
}

static void test_sections_and_top_level(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("top = \"before any section\"\n"
            "[storage.block-cache]\n"
            "name = \"dotted header\"\n"
            "[ security ]\n"
            "cert-path = \"/spaced-header.pem\"\n"
            "[server]\n"
            "security.key-path = \"/dotted-key.pem\"\n", /* key-path of [server.security] */
            &c);
    assert_string_equal(c.top, "before any section");
    assert_string_equal(c.nested, "dotted header");
    assert_string_equal(c.cert_path, "/spaced-header.pem");
    assert_null(c.key_path);
    cfg_free(table, N_KEYS, &c);

    struct tcfg d = {0};
    load_ok("security.key-path = \"/dotted-key.pem\"\n", &d);
    assert_string_equal(d.key_path, "/dotted-key.pem");
    cfg_free(table, N_KEYS, &d);
}

static void test_crlf_and_bom(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("\xEF\xBB\xBF[security]\r\n"
            "cert-path = \"/crlf.pem\"\r\n"
            "cert-allowed-cn = [\r\n"
            "  \"A\",\r\n"
            "]\r\n"
            "[server]\r\n"
            "port = 1\r\n",
            &c);
    assert_string_equal(c.cert_path, "/crlf.pem");
    assert_int_equal(c.cert_allowed_cn.n, 1);
    assert_string_equal(c.cert_allowed_cn.items[0], "A");
    assert_int_equal(c.port, 1);
    cfg_free(table, N_KEYS, &c);
}

/* ------------------------------------------------------------ warnings */

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void test_unknown_key_is_a_warning(void **state)
{
    (void)state;
    const char *log_path = write_tmp("");
    assert_int_equal(log_open("test", log_path, LOG_DEBUG), 0);
    struct tcfg c = {0};
    int rc = load("[security]\n"
                  "cert-path = \"/a.pem\"\n"
                  "cert-allowed-cn = [\n"
                  "  \"A\",\n"
                  "]\n"
                  "ssl-cert = \"/tidb.pem\"\n"     /* line 6: a key of another component */
                  "[rocksdb.defaultcf]\n"
                  "block-size = \"64KB\"\n"        /* line 8 */
                  "ratio = 0.5\n"                  /* line 9: float, not in this subset */
                  "labels = { zone = \"z1\" }\n"   /* line 10: inline table */
                  "[server]\n"
                  "cert-path = \"/wrong-section\"\n" /* line 12: known name, wrong section */
                  "port = 20160\n"
                  "a-very-long-unknown-key-name-that-is-longer-than-the-fifty-characters-"
                  "inih-keeps = true\n", /* line 14 */
                  &c);
    log_close();
    log_open("tisim", NULL, LOG_INFO);
    assert_int_equal(rc, 0);
    assert_string_equal(c.cert_path, "/a.pem");
    assert_int_equal(c.cert_allowed_cn.n, 1);
    assert_int_equal(c.port, 20160);
    const char *log = read_all(log_path);
    char want[256];
    snprintf(want, sizeof want, "%s:6: unknown key 'ssl-cert' in [security], ignored", last_path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want, "%s:8: unknown key 'block-size' in [rocksdb.defaultcf], ignored",
             last_path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want, "%s:9: unknown key 'ratio'", last_path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want, "%s:10: unknown key 'labels'", last_path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want, "%s:12: unknown key 'cert-path' in [server], ignored", last_path);
    assert_non_null(strstr(log, want));
    snprintf(want, sizeof want,
             "%s:14: unknown key 'a-very-long-unknown-key-name-that-is-longer-than-the-fifty-"
             "characters-inih-keeps' in [server], ignored",
             last_path);
    assert_non_null(strstr(log, want));
    assert_non_null(strstr(log, "[WARN]"));
    cfg_free(table, N_KEYS, &c);
}

/* ------------------------------------------------------------ errors */

static void test_malformed_inputs(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int line;
        const char *msg;
    } cases[] = {
        {"[security]\ncert-path = /path/to/x.pem\n", 2,
         "value for 'cert-path' must be a quoted string"},
        {"[security]\n\ncert-allowed-cn = \"TiDB-Server\"\n", 3,
         "value for 'cert-allowed-cn' must be an array of strings"},
        {"[security]\ncert-path = [\"/a.pem\"]\n", 2,
         "value for 'cert-path' must be a quoted string, not an array"},
        {"[security]\ncert-allowed-cn = [1, 2]\n", 2,
         "value for 'cert-allowed-cn' must be an array of strings"},
        {"[security]\ncert-allowed-cn = [[\"a\"]]\n", 2,
         "value for 'cert-allowed-cn' must be an array of strings"},
        {"[security]\n# c\ncert-path = \"/a.pem\n", 3, "unterminated string"},
        {"[security]\ncert-path = '/a.pem\n", 2, "unterminated string"},
        {"[security]\ncert-allowed-cn = [\n  \"A\",\n  \"B\n]\n", 4, "unterminated string"},
        {"[security]\n\ncert-allowed-cn = [\n  \"A\",\n  \"B\",\n", 3,
         "unterminated array for 'cert-allowed-cn'"},
        {"[security]\ncert-allowed-cn = [\"A\" \"B\"]\n", 2,
         "value for 'cert-allowed-cn': expected ',' or ']' in array"},
        {"[security]\ncert-allowed-cn = [\"A\",,\"B\"]\n", 2, "empty item in array"},
        {"[security]\ncert-allowed-cn = [,]\n", 2, "empty item in array"},
        {"[security]\ncert-allowed-cn = [\n  \"A\",\n  \"\\q\",\n]\n", 2,
         "value for 'cert-allowed-cn': invalid escape '\\q' in a string"},
        {"[security]\ncert-path = \"a\\qb\"\n", 2, "invalid escape '\\q'"},
        {"[security]\ncert-path = \"\\u12\"\n", 2, "\\u needs 4 hex digits"},
        {"[security]\ncert-path = \"\\u0000\"\n", 2, "is not an allowed character"},
        {"[security]\ncert-path = \"\\uD800\"\n", 2, "is not an allowed character"},
        {"[security]\ncert-path = \"a\" \"b\"\n", 2, "unexpected text after the value"},
        {"[security]\ncert-allowed-cn = [\"a\"] x\n", 2, "unexpected text after the value"},
        {"[security]\ncert-path \"a\"\n", 2, "expected '=' after 'cert-path'"},
        {"[security]\ncert-path\n", 2, "expected '=' after 'cert-path'"},
        {"[security]\ncert-path =\n", 2, "missing value for 'cert-path'"},
        {"[security]\ncert-path = # nothing\n", 2, "missing value for 'cert-path'"},
        {"[security\ncert-path = \"a\"\n", 1, "invalid section header"},
        {"[security] x\n", 1, "unexpected text after section header"},
        {"[[security]]\n", 1, "arrays of tables"},
        {"[]\n", 1, "invalid section header"},
        {"[security]\n]\n", 2, "unexpected ']'"},
        {"[security]\n= \"a\"\n", 2, "expected a key"},
        {"[security]\n\"cert-path\" = \"a\"\n", 2, "quoted keys are not supported"},
        {"[security]\ncert-path = \"\"\"a\"\"\"\n", 2, "multi-line strings are not supported"},
        {"[security]\ncert-allowed-cn = [\"a\"}\n", 2, "unexpected '}'"},
        {"[server]\nport = 9223372036854775808\n", 2, "value for 'port' is out of range"},
        {"[server]\nport = -9223372036854775809\n", 2, "value for 'port' is out of range"},
        {"[server]\nport = 99999999999999999999999\n", 2, "value for 'port' is out of range"},
        {"[server]\nport = 12abc\n", 2, "value for 'port' must be an integer"},
        {"[server]\nport = \"4000\"\n", 2, "value for 'port' must be an integer"},
        {"[server]\nport = 012\n", 2, "value for 'port' must be an integer"},
        {"[server]\nport = 1__0\n", 2, "value for 'port' must be an integer"},
        {"[server]\nport = 10_\n", 2, "value for 'port' must be an integer"},
        {"[server]\nport = -0x10\n", 2, "value for 'port' must be an integer"},
        {"[server]\nport = 1.5\n", 2, "value for 'port' must be an integer"},
        {"[server]\nport = \n", 2, "missing value for 'port'"},
        {"[server]\nflag = yes\n", 2, "value for 'flag' must be true or false"},
        {"[server]\nflag = \"true\"\n", 2, "value for 'flag' must be true or false"},
        {"[server]\nflag = True\n", 2, "value for 'flag' must be true or false"},
        /* the physical line after a multi-line array, blank lines and comments */
        {"[security]\ncert-allowed-cn = [\n  \"A\",\n\n  # c\n  \"B\",\n]\n\n# x\nkey-path = k\n",
         10, "value for 'key-path' must be a quoted string"},
        /* an unknown key's value must still be well-formed */
        {"[security]\nunknown = \"abc\n", 2, "unterminated string"},
        {"[security]\nunknown = [\n", 2, "unterminated array for 'unknown'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct tcfg c = {0};
        int rc = load(cases[i].text, &c);
        char prefix[128];
        snprintf(prefix, sizeof prefix, "%s:%d: ", last_path, cases[i].line);
        if (rc != -1 || strncmp(err, prefix, strlen(prefix)) != 0 ||
            !strstr(err, cases[i].msg) || strchr(err, '\n'))
            fail_msg("case %zu: rc %d, err \"%s\"; want prefix \"%s\" and \"%s\"\n%s", i, rc, err,
                     prefix, cases[i].msg, cases[i].text);
        cfg_free(table, N_KEYS, &c);
    }
}

/* A failed key keeps its previous value, whole; keys before it are loaded. */
static void test_failed_key_keeps_old_value(void **state)
{
    (void)state;
    struct tcfg c = {.port = 4000};
    assert_int_equal(cfg_set_string(&c.cert_path, "/default.pem"), 0);
    assert_int_equal(cfg_list_set_csv(&c.cert_allowed_cn, "Old-CN"), 0);
    assert_int_equal(load("[security]\n"
                          "key-path = \"/k.pem\"\n"
                          "cert-allowed-cn = [\"A\", \"B\", 3]\n",
                          &c),
                     -1);
    assert_string_equal(c.key_path, "/k.pem");
    assert_int_equal(c.cert_allowed_cn.n, 1);
    assert_string_equal(c.cert_allowed_cn.items[0], "Old-CN");

    assert_int_equal(load("[security]\ncert-path = \"/ok\\x\"\n", &c), -1);
    assert_string_equal(c.cert_path, "/default.pem");
    assert_int_equal(load("[server]\nport = 4001x\n", &c), -1);
    assert_int_equal(c.port, 4000);
    cfg_free(table, N_KEYS, &c);
}

static void test_unreadable_file(void **state)
{
    (void)state;
    struct tcfg c = {0};
    char path[128], want[256];
    snprintf(path, sizeof path, "%s/does-not-exist.toml", tmpdir);
    assert_int_equal(cfg_load(path, table, N_KEYS, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "cannot read config %s: %s", path, strerror(ENOENT));
    assert_string_equal(err, want);

    assert_int_equal(cfg_load(tmpdir, table, N_KEYS, &c, err, sizeof err), -1);
    snprintf(want, sizeof want, "cannot read config %s: %s", tmpdir, strerror(EISDIR));
    assert_string_equal(err, want);

    /* a short err buffer is truncated, not overrun */
    char small[8];
    assert_int_equal(cfg_load(path, table, N_KEYS, &c, small, sizeof small), -1);
    assert_string_equal(small, "cannot ");
    assert_int_equal(cfg_load(path, table, N_KEYS, &c, NULL, 0), -1);
}

static void test_key_twice_last_wins(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("[security]\n"
            "cert-path = \"/first.pem\"\n"
            "cert-allowed-cn = [\"A\", \"B\"]\n"
            "cert-path = \"/second.pem\"\n"
            "cert-allowed-cn = [\"C\"]\n"
            "[server]\n"
            "port = 1\n"
            "port = 2\n"
            "[security]\n"
            "cert-path = \"/third.pem\"\n",
            &c);
    assert_string_equal(c.cert_path, "/third.pem");
    const char *want[] = {"C"};
    assert_list(&c.cert_allowed_cn, want, 1);
    assert_int_equal(c.port, 2);
    /* a second load over the same struct replaces, and an empty array clears */
    load_ok("[security]\ncert-allowed-cn = []\n", &c);
    assert_int_equal(c.cert_allowed_cn.n, 0);
    assert_string_equal(c.cert_path, "/third.pem");
    cfg_free(table, N_KEYS, &c);
}

static void test_defaults_survive_absent_keys(void **state)
{
    (void)state;
    struct tcfg c = {.port = 4000, .flag = true};
    assert_int_equal(cfg_set_string(&c.cert_path, "/default.pem"), 0);
    assert_int_equal(cfg_list_set_csv(&c.cluster_verify_cn, "X,Y"), 0);
    load_ok("# only a comment\n\n[security]\nkey-path = \"/k\"\n", &c);
    assert_string_equal(c.cert_path, "/default.pem");
    assert_int_equal(c.cluster_verify_cn.n, 2);
    assert_int_equal(c.port, 4000);
    assert_true(c.flag);
    load_ok("", &c); /* an empty file is a valid config */
    assert_string_equal(c.key_path, "/k");
    cfg_free(table, N_KEYS, &c);
}

/* ------------------------------------------------------------ helpers */

static void test_list_set_csv(void **state)
{
    (void)state;
    struct cfg_list l = {0};
    assert_int_equal(cfg_list_add(&l, "Old"), 0);
    assert_int_equal(cfg_list_set_csv(&l, " TiDB-Server, PD-Server ,,\tTiKV-Control ,"), 0);
    const char *want[] = {"TiDB-Server", "PD-Server", "TiKV-Control"};
    assert_list(&l, want, 3); /* replaced, not appended; trimmed; empty items skipped */
    assert_true(cfg_list_contains(&l, "PD-Server"));
    assert_false(cfg_list_contains(&l, "Old"));
    assert_false(cfg_list_contains(&l, "PD-Serve"));
    assert_int_equal(cfg_list_set_csv(&l, "One"), 0);
    const char *one[] = {"One"};
    assert_list(&l, one, 1);
    assert_int_equal(cfg_list_set_csv(&l, " , ,"), 0);
    assert_int_equal(l.n, 0);
    assert_int_equal(cfg_list_set_csv(&l, ""), 0);
    assert_int_equal(l.n, 0);
    assert_false(cfg_list_contains(&l, ""));
    cfg_list_free(&l);
    cfg_list_free(&l); /* idempotent */
    assert_null(l.items);
}

static void test_set_string(void **state)
{
    (void)state;
    char *s = NULL;
    assert_int_equal(cfg_set_string(&s, "a"), 0);
    assert_string_equal(s, "a");
    assert_int_equal(cfg_set_string(&s, s), 0); /* self-assignment is safe */
    assert_string_equal(s, "a");
    assert_int_equal(cfg_set_string(&s, NULL), 0);
    assert_null(s);
}

static void test_cfg_free_releases_everything(void **state)
{
    (void)state;
    struct tcfg c = {0};
    load_ok("top = \"t\"\n"
            "[security]\n"
            "cluster-ssl-ca = \"1\"\ncluster-ssl-cert = \"2\"\ncluster-ssl-key = \"3\"\n"
            "cluster-verify-cn = [\"a\", \"b\"]\n"
            "ca-path = \"4\"\ncert-path = \"5\"\nkey-path = \"6\"\ncacert-path = \"7\"\n"
            "cert-allowed-cn = [\"c\"]\ncipher-file = \"8\"\n"
            "cert-path = \"5 again\"\n"
            "[storage.block-cache]\nname = \"n\"\n",
            &c);
    assert_string_equal(c.cert_path, "5 again");
    cfg_free(table, N_KEYS, &c);
    for (int f = 0; f < F_N; f++)
        assert_null(*field_of(&c, f));
    assert_null(c.top);
    assert_null(c.nested);
    assert_null(c.cluster_verify_cn.items);
    assert_int_equal(c.cluster_verify_cn.n, 0);
    assert_int_equal(c.cert_allowed_cn.n, 0);
    cfg_free(table, N_KEYS, &c); /* twice is harmless */
    /* valgrind --leak-check=full over this binary proves nothing is left */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guide_snippets_as_in_document),
        cmocka_unit_test(test_guide_snippets_dedented),
        cmocka_unit_test(test_guide_verify_cn_bracket_column0),
        cmocka_unit_test(test_guide_tikv_full_config),
        cmocka_unit_test(test_comments_after_values),
        cmocka_unit_test(test_hash_and_semicolon_inside_quotes),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_integers_and_bools),
        cmocka_unit_test(test_sections_and_top_level),
        cmocka_unit_test(test_crlf_and_bom),
        cmocka_unit_test(test_unknown_key_is_a_warning),
        cmocka_unit_test(test_malformed_inputs),
        cmocka_unit_test(test_failed_key_keeps_old_value),
        cmocka_unit_test(test_unreadable_file),
        cmocka_unit_test(test_key_twice_last_wins),
        cmocka_unit_test(test_defaults_survive_absent_keys),
        cmocka_unit_test(test_list_set_csv),
        cmocka_unit_test(test_set_string),
        cmocka_unit_test(test_cfg_free_releases_everything),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
