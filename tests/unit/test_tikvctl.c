/* test_tikvctl.c — tikv-ctl: every command's planning and its refusals, random-hex's output
 * (2N lowercase hex digits and a newline, different each run), encryption-meta on data dirs
 * made by kv_meta (plaintext, encrypted, none), and the one line remote commands print in
 * this build. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cipherfile.h"
#include "kv_meta.h"
#include "testutil.h"
#include "tikvctl.h"

#define HOST "127.0.0.1:20160"

/* Plans args (NULL-terminated; args[0] is the command). */
static int plan(const struct tikvctl *c, const char *const *args, struct tikvctl_call *call,
                char *err, size_t errlen)
{
    char *argv[16];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = (char *)args[argc];
    err[0] = '\0';
    return tikvctl_plan(c, argc, argv, call, err, errlen);
}

struct run_result {
    int rc;
    char *out, *err;
    size_t out_len, err_len;
};

static void run(const struct tikvctl *base, const char *const *args, struct run_result *r)
{
    char *argv[16];
    int argc = 0;
    for (; args[argc]; argc++)
        argv[argc] = (char *)args[argc];
    struct tikvctl c = *base;
    c.out = open_memstream(&r->out, &r->out_len);
    c.err = open_memstream(&r->err, &r->err_len);
    assert_non_null(c.out);
    assert_non_null(c.err);
    r->rc = tikvctl_run(&c, argc, argv);
    assert_int_equal(fclose(c.out), 0);
    assert_int_equal(fclose(c.err), 0);
}

static void run_free(struct run_result *r)
{
    free(r->out);
    free(r->err);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_plan_random_hex(void **state)
{
    (void)state;
    struct tikvctl c = {0};
    struct tikvctl_call call;
    char err[512];
    const char *good[] = {"random-hex", "--len", "256", NULL};
    assert_int_equal(plan(&c, good, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_RANDOM_HEX);
    assert_int_equal(call.len, 256);
    assert_false(call.remote);
    const char *max[] = {"random-hex", "--len=1024", NULL};
    assert_int_equal(plan(&c, max, &call, err, sizeof err), 0);
    assert_int_equal(call.len, 1024);
    const char *one[] = {"random-hex", "-l", "1", NULL};
    assert_int_equal(plan(&c, one, &call, err, sizeof err), 0);
    assert_int_equal(call.len, 1);

    static const struct {
        const char *args[5];
        const char *want;
    } bad[] = {
        {{"random-hex", NULL}, "random-hex needs --len N"},
        {{"random-hex", "--len", NULL}, "flag --len needs a value"},
        {{"random-hex", "--len", "0", NULL}, "--len '0': give a number of bytes from 1 to 1024"},
        {{"random-hex", "--len", "abc", NULL}, "--len 'abc': give a number"},
        {{"random-hex", "--len", "-5", NULL}, "--len '-5': give a number"},
        {{"random-hex", "--len", "12x", NULL}, "--len '12x': give a number"},
        {{"random-hex", "--len", "1025", NULL}, "--len 1025: at most 1024 bytes"},
        {{"random-hex", "--len", "99999999999999999999999", NULL}, "at most 1024 bytes"},
        {{"random-hex", "--len", "18446744073709551617", NULL}, "at most 1024 bytes"},
        {{"random-hex", "--len", "8", "x", NULL}, "too many arguments"},
        {{"random-hex", "--size", "8", NULL}, "random-hex: unknown flag --size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(plan(&c, bad[i].args, &call, err, sizeof err), -1);
        assert_contains(err, bad[i].want);
        assert_null(strchr(err, '\n'));
    }
}

static void test_plan_encryption_meta(void **state)
{
    (void)state;
    struct tikvctl c = {0};
    struct tikvctl_call call;
    char err[512];
    const char *sub[] = {"encryption-meta", "--data-dir", "/d/sub", NULL};
    assert_int_equal(plan(&c, sub, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_ENCRYPTION_META);
    assert_string_equal(call.data_dir, "/d/sub");
    assert_false(call.remote);

    const char *bare[] = {"encryption-meta", NULL};
    assert_int_equal(plan(&c, bare, &call, err, sizeof err), -1);
    assert_contains(err, "encryption-meta needs --data-dir DIR");

    /* The global --data-dir serves, and the command's own wins over it. */
    c.data_dir = "/d/global";
    assert_int_equal(plan(&c, bare, &call, err, sizeof err), 0);
    assert_string_equal(call.data_dir, "/d/global");
    assert_int_equal(plan(&c, sub, &call, err, sizeof err), 0);
    assert_string_equal(call.data_dir, "/d/sub");

    const char *extra[] = {"encryption-meta", "x", NULL};
    assert_int_equal(plan(&c, extra, &call, err, sizeof err), -1);
    assert_contains(err, "too many arguments");

    c.host = HOST;
    assert_int_equal(plan(&c, sub, &call, err, sizeof err), -1);
    assert_contains(err, "give --data-dir, not --host");
}

static void test_plan_remote_commands(void **state)
{
    (void)state;
    struct tikvctl c = {.host = HOST};
    struct tikvctl_call call;
    char err[512];
    const char *put[] = {"raw-put", "k1", "v 1", NULL};
    assert_int_equal(plan(&c, put, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_RAW_PUT);
    assert_true(call.remote);
    assert_string_equal(call.key, "k1");
    assert_string_equal(call.value, "v 1");
    /* After "--" a key or value may start with '-'; an empty value is a value. */
    const char *dashed[] = {"raw-put", "--", "-k", "", NULL};
    assert_int_equal(plan(&c, dashed, &call, err, sizeof err), 0);
    assert_string_equal(call.key, "-k");
    assert_string_equal(call.value, "");
    const char *get[] = {"raw-get", "k1", NULL};
    assert_int_equal(plan(&c, get, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_RAW_GET);
    assert_string_equal(call.key, "k1");
    assert_null(call.value);
    const char *del[] = {"raw-delete", "k1", NULL};
    assert_int_equal(plan(&c, del, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_RAW_DELETE);
    assert_string_equal(call.key, "k1");
    const char *scan[] = {"raw-scan", NULL};
    assert_int_equal(plan(&c, scan, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_RAW_SCAN);
    assert_string_equal(call.from, "");
    assert_string_equal(call.to, "");
    assert_int_equal(call.limit, 30);
    const char *scan2[] = {"raw-scan", "--from", "a", "--to=b", "--limit", "10000", NULL};
    assert_int_equal(plan(&c, scan2, &call, err, sizeof err), 0);
    assert_string_equal(call.from, "a");
    assert_string_equal(call.to, "b");
    assert_int_equal(call.limit, 10000);
    const char *status[] = {"status", NULL};
    assert_int_equal(plan(&c, status, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_STATUS);
    assert_true(call.remote);
}

static void test_plan_remote_refusals(void **state)
{
    (void)state;
    struct tikvctl c = {.host = HOST};
    struct tikvctl_call call;
    char err[512];
    static const struct {
        const char *args[8];
        const char *want;
    } bad[] = {
        {{"raw-put", "k", NULL}, "usage: raw-put KEY VALUE (missing argument)"},
        {{"raw-put", "k", "v", "w", NULL}, "usage: raw-put KEY VALUE (too many arguments)"},
        {{"raw-put", "", "v", NULL}, "raw-put: the key is empty"},
        {{"raw-get", NULL}, "usage: raw-get KEY (missing argument)"},
        {{"raw-get", "a", "b", NULL}, "usage: raw-get KEY (too many arguments)"},
        {{"raw-get", "", NULL}, "raw-get: the key is empty"},
        {{"raw-delete", NULL}, "usage: raw-delete KEY (missing argument)"},
        {{"raw-delete", "-k", NULL}, "raw-delete: unknown flag -k"},
        {{"raw-scan", "--limit", "0", NULL}, "--limit '0': give a number of keys from 1 to"},
        {{"raw-scan", "--limit", "10001", NULL}, "--limit '10001'"},
        {{"raw-scan", "--limit", "ten", NULL}, "--limit 'ten'"},
        {{"raw-scan", "--from", "b", "--to", "a", NULL}, "--from 'b' is not below --to 'a'"},
        {{"raw-scan", "--from", "a", "--to", "a", NULL}, "--from 'a' is not below --to 'a'"},
        {{"raw-scan", "a", NULL}, "too many arguments"},
        {{"status", "x", NULL}, "usage: status (too many arguments)"},
        {{"put", "k", "v", NULL}, "unknown command 'put'"},
        {{NULL}, "no command given"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(plan(&c, bad[i].args, &call, err, sizeof err), -1);
        assert_contains(err, bad[i].want);
        assert_null(strchr(err, '\n'));
    }
    /* --from alone may be anything: the scan runs to the end. */
    const char *open_end[] = {"raw-scan", "--from", "zzz", NULL};
    assert_int_equal(plan(&c, open_end, &call, err, sizeof err), 0);
}

static void test_plan_remote_needs_host_and_whole_tls(void **state)
{
    (void)state;
    struct tikvctl c = {0};
    struct tikvctl_call call;
    char err[512];
    const char *get[] = {"raw-get", "k", NULL};
    assert_int_equal(plan(&c, get, &call, err, sizeof err), -1);
    assert_contains(err, "raw-get talks to a TiKV: give --host HOST:PORT");
    static const struct {
        const char *host, *want;
    } hosts[] = {
        {"127.0.0.1:99999", "--host: bad URL '127.0.0.1:99999'"},
        {"127.0.0.1", "--host: bad URL '127.0.0.1'"},
        {"https://127.0.0.1:20160", "without a scheme"},
    };
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        c.host = hosts[i].host;
        assert_int_equal(plan(&c, get, &call, err, sizeof err), -1);
        assert_contains(err, hosts[i].want);
    }
    c.host = HOST;
    /* The TLS guide's flags: all three, or none. */
    static const struct {
        const char *ca, *cert, *key, *missing;
    } tls[] = {
        {"/p/ca.pem", NULL, NULL, "--cert-path is not set"},
        {"/p/ca.pem", "/p/client.pem", NULL, "--key-path is not set"},
        {NULL, "/p/client.pem", "/p/clinet-key.pem", "--ca-path is not set"},
        {"/p/ca.pem", "", "/p/clinet-key.pem", "--cert-path is not set"},
    };
    for (size_t i = 0; i < sizeof tls / sizeof tls[0]; i++) {
        c.ca_path = tls[i].ca;
        c.cert_path = tls[i].cert;
        c.key_path = tls[i].key;
        assert_int_equal(plan(&c, get, &call, err, sizeof err), -1);
        assert_contains(err, tls[i].missing);
    }
    c.ca_path = "/path/to/ca.pem";
    c.cert_path = "/path/to/client.pem";
    c.key_path = "/path/to/clinet-key.pem";
    assert_int_equal(plan(&c, get, &call, err, sizeof err), 0);
    /* A local command does not care about TLS flags. */
    c.host = NULL;
    c.key_path = NULL;
    const char *hex[] = {"random-hex", "--len", "4", NULL};
    assert_int_equal(plan(&c, hex, &call, err, sizeof err), 0);
}

static void test_plan_help(void **state)
{
    (void)state;
    struct tikvctl c = {0};
    struct tikvctl_call call;
    char err[512];
    const char *cmds[][3] = {{"help", NULL, NULL},
                             {"raw-get", "--help", NULL},
                             {"random-hex", "-h", NULL},
                             {"encryption-meta", "--help", NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(plan(&c, cmds[i], &call, err, sizeof err), 0);
        assert_int_equal(call.cmd, TIKVCTL_HELP);
        assert_false(call.remote);
    }
    struct run_result r;
    run(&c, cmds[0], &r);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "random-hex --len N");
    assert_contains(r.out, "encryption-meta --data-dir DIR");
    assert_contains(r.out, "bulk-write --input TEXT --output FILE [--cipher-file CIPHER]");
    assert_contains(r.out, "import --file FILE");
    assert_contains(r.out, "Remote commands (need --host; over TLS when --ca-path is given)");
    assert_contains(r.out, "--ca-path");
    run_free(&r);
}

static bool all_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i]) || !s[i])
            return false;
    return true;
}

static void test_random_hex_output(void **state)
{
    (void)state;
    struct tikvctl c = {0};
    static const char *lens[] = {"1", "16", "256", "1024"};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        const char *args[] = {"random-hex", "--len", lens[i], NULL};
        struct run_result a, b;
        run(&c, args, &a);
        run(&c, args, &b);
        size_t n = 2 * (size_t)atoi(lens[i]);
        assert_int_equal(a.rc, 0);
        assert_int_equal(a.out_len, n + 1);
        assert_int_equal(a.out[n], '\n');
        assert_true(all_lower_hex(a.out, n));
        assert_int_equal(a.err_len, 0);
        /* A CSPRNG: two 16-byte (or longer) draws never agree. */
        if (n >= 32)
            assert_true(memcmp(a.out, b.out, n) != 0);
        run_free(&a);
        run_free(&b);
    }
    /* What random-hex writes is a cipher-file TiKV accepts. */
    const char *args[] = {"random-hex", "--len", "256", NULL};
    struct run_result r;
    run(&c, args, &r);
    uint8_t token[CIPHERFILE_MAX_TOKEN];
    size_t token_len = 0;
    char err[256];
    assert_int_equal(cipherfile_parse(r.out, r.out_len, token, &token_len, err, sizeof err), 0);
    assert_int_equal(token_len, 256);
    run_free(&r);
}

static void test_usage_errors_and_remote_lines(void **state)
{
    (void)state;
    struct tikvctl c = {.host = HOST};
    struct run_result r;
    const char *huge[] = {"random-hex", "--len", "4096", NULL};
    run(&c, huge, &r);
    assert_int_equal(r.rc, 1);
    assert_int_equal(r.out_len, 0);
    assert_contains(r.err, "tikv-ctl: random-hex --len 4096: at most 1024 bytes");
    assert_contains(r.err, "\nRun 'tikv-ctl --help' for usage.\n");
    assert_int_equal(count_lines(r.err), 2);
    run_free(&r);

    static const char *const remote[][5] = {{"raw-put", "k", "v", NULL},
                                            {"raw-get", "k", NULL},
                                            {"raw-delete", "k", NULL},
                                            {"raw-scan", "--limit", "5", NULL},
                                            {"status", NULL}};
    struct tikvctl nobody = {.host = "127.0.0.1:1"}; /* a port nothing listens on */
    for (size_t i = 0; i < sizeof remote / sizeof remote[0]; i++) {
        run(&nobody, remote[i], &r);
        assert_int_equal(r.rc, 1);
        assert_int_equal(r.out_len, 0);
        /* nothing listens there: one line in the transport's words */
        assert_contains(r.err, "tikv-ctl: cannot connect to ");
        assert_contains(r.err, "Connection refused\n");
        assert_int_equal(count_lines(r.err), 1);
        run_free(&r);
    }
}

static char *make_dir(void)
{
    char *dir = strdup("/tmp/test_tikvctl.XXXXXX");
    assert_non_null(dir);
    assert_non_null(mkdtemp(dir));
    return dir;
}

static void test_encryption_meta(void **state)
{
    (void)state;
    char *plain = make_dir(), *enc = make_dir(), *none = make_dir(), err[512];
    struct kv_meta m;
    assert_int_equal(kv_meta_create(plain, NULL, &m, err, sizeof err), 0);
    static const uint8_t token[32] = {0x5a, 0x17, 0xc3, 0x99, 0x01, 0x42, 0xee, 0x7d};
    struct cipher_keys keys;
    assert_int_equal(cipherfile_derive(token, sizeof token, &keys, err, sizeof err), 0);
    assert_int_equal(kv_meta_create(enc, &keys, &m, err, sizeof err), 0);
    char check[CIPHERFILE_CHECK_HEX_LEN], key_hex[2 * CIPHERFILE_KEY_LEN + 1];
    cipherfile_check_hex(&keys, check);
    for (size_t i = 0; i < CIPHERFILE_KEY_LEN; i++)
        snprintf(key_hex + 2 * i, 3, "%02x", keys.data_key[i]);

    struct tikvctl c = {0};
    struct run_result r;
    const char *args[] = {"encryption-meta", "--data-dir", enc, NULL};
    run(&c, args, &r);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "encrypted: true\n");
    assert_contains(r.out, "cipher: aes-256-gcm\n");
    assert_contains(r.out, "kdf: hkdf-sha256\n");
    assert_contains(r.out, check);
    /* Never the key, nor the token. */
    assert_null(strstr(r.out, key_hex));
    assert_null(strstr(r.out, "5a17c399"));
    run_free(&r);

    args[2] = plain;
    run(&c, args, &r);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "encrypted: false\n");
    assert_null(strstr(r.out, "cipher:"));
    run_free(&r);

    args[2] = none;
    run(&c, args, &r);
    assert_int_equal(r.rc, 1);
    assert_int_equal(r.out_len, 0);
    assert_contains(r.err, "has no meta.json: not a TiKV data dir");
    assert_int_equal(count_lines(r.err), 1);
    run_free(&r);

    assert_int_equal(tu_rm_rf(none), 0);
    args[2] = none;
    run(&c, args, &r);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "No such file or directory");
    run_free(&r);

    cipherfile_keys_clear(&keys);
    assert_int_equal(tu_rm_rf(plain), 0);
    assert_int_equal(tu_rm_rf(enc), 0);
    free(plain);
    free(enc);
    free(none);
}

static void test_plan_bulk_write(void **state)
{
    (void)state;
    struct tikvctl c = {0};
    struct tikvctl_call call;
    char err[512];
    const char *enc[] = {"bulk-write", "--input", "kv.txt", "--output", "data.bulk",
                         "--cipher-file", "cipher-file-256", NULL};
    assert_int_equal(plan(&c, enc, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_BULK_WRITE);
    assert_false(call.remote);
    assert_string_equal(call.input, "kv.txt");
    assert_string_equal(call.output, "data.bulk");
    assert_string_equal(call.cipher_file, "cipher-file-256");
    const char *plain[] = {"bulk-write", "--input=kv.txt", "--output=data.bulk", NULL};
    assert_int_equal(plan(&c, plain, &call, err, sizeof err), 0);
    assert_null(call.cipher_file);

    static const struct {
        const char *args[8];
        const char *want;
    } bad[] = {
        {{"bulk-write", "--output", "o", NULL}, "bulk-write needs --input TEXT"},
        {{"bulk-write", "--input", "i", NULL}, "bulk-write needs --output FILE"},
        {{"bulk-write", "--input", "i", "--output", "o", "--cipher-file=", NULL},
         "bulk-write --cipher-file: give the cluster's cipher-file"},
        {{"bulk-write", "--input", "i", "--output", "o", "x", NULL}, "too many arguments"},
        {{"bulk-write", "--in", "i", NULL}, "bulk-write: unknown flag --in"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(plan(&c, bad[i].args, &call, err, sizeof err), -1);
        assert_contains(err, bad[i].want);
        assert_null(strchr(err, '\n'));
    }
    c.host = HOST;
    assert_int_equal(plan(&c, plain, &call, err, sizeof err), -1);
    assert_contains(err, "bulk-write writes a file on this machine: give no --host");
}

static void test_plan_import(void **state)
{
    (void)state;
    struct tikvctl c = {.host = HOST};
    struct tikvctl_call call;
    char err[512];
    const char *good[] = {"import", "--file", "data.bulk", NULL};
    assert_int_equal(plan(&c, good, &call, err, sizeof err), 0);
    assert_int_equal(call.cmd, TIKVCTL_IMPORT);
    assert_true(call.remote);
    assert_string_equal(call.file, "data.bulk");
    const char *none[] = {"import", NULL};
    assert_int_equal(plan(&c, none, &call, err, sizeof err), -1);
    assert_contains(err, "import needs --file FILE");
    const char *extra[] = {"import", "--file", "f", "g", NULL};
    assert_int_equal(plan(&c, extra, &call, err, sizeof err), -1);
    assert_contains(err, "usage: import --file FILE (too many arguments)");
    c.host = NULL;
    assert_int_equal(plan(&c, good, &call, err, sizeof err), -1);
    assert_contains(err, "import talks to a TiKV: give --host HOST:PORT");
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static void test_bulk_write_and_import_lines(void **state)
{
    (void)state;
    char *d = make_dir(), input[128], output[128], cipher[128], big[128];
    snprintf(input, sizeof input, "%s/kv.txt", d);
    snprintf(output, sizeof output, "%s/data.bulk", d);
    snprintf(cipher, sizeof cipher, "%s/cipher-file", d);
    snprintf(big, sizeof big, "%s/big.bulk", d);
    write_text(input, "user:1\tAlice\nuser:2\tB\tob\n");
    write_text(cipher, "00112233445566778899aabbccddeeff\n");
    struct tikvctl c = {0};
    struct run_result r;
    const char *enc[] = {"bulk-write", "--input", input, "--output", output,
                         "--cipher-file", cipher, NULL};
    run(&c, enc, &r);
    assert_int_equal(r.rc, 0);
    assert_contains(r.out, "wrote 2 keys to ");
    assert_contains(r.out, "data.bulk (encrypted with the cipher-file's key)\n");
    assert_int_equal(r.err_len, 0);
    run_free(&r);
    assert_int_equal(access(output, R_OK), 0);

    write_text(input, "user:1\tAlice\n\tnobody\n");
    run(&c, enc, &r);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "tikv-ctl: bulk-write: --input ");
    assert_contains(r.err, "kv.txt: line 2: empty key (TiKV has no empty key)\n");
    assert_int_equal(count_lines(r.err), 1);
    run_free(&r);

    /* import: a file over one request's limit is refused before any connection is tried */
    FILE *f = fopen(big, "wb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 8388595 - 1, SEEK_SET), 0);
    assert_int_equal(fputc(0, f), 0);
    assert_int_equal(fclose(f), 0);
    struct tikvctl nobody = {.host = "127.0.0.1:1"}; /* a port nothing listens on */
    const char *imp[] = {"import", "--file", big, NULL};
    run(&nobody, imp, &r);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "big.bulk: the file is 8388595 bytes, over the 8388594-byte limit of "
                           "one ingest request (the RPC body limit is 8388608 bytes)\n");
    assert_int_equal(count_lines(r.err), 1);
    run_free(&r);
    /* one byte less goes out (and finds nobody listening) */
    assert_int_equal(truncate(big, 8388594), 0);
    run(&nobody, imp, &r);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "tikv-ctl: cannot connect to ");
    run_free(&r);
    imp[2] = input;
    unlink(input);
    run(&nobody, imp, &r);
    assert_int_equal(r.rc, 1);
    assert_contains(r.err, "kv.txt: No such file or directory\n");
    run_free(&r);
    assert_int_equal(tu_rm_rf(d), 0);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_random_hex),
        cmocka_unit_test(test_plan_encryption_meta),
        cmocka_unit_test(test_plan_remote_commands),
        cmocka_unit_test(test_plan_remote_refusals),
        cmocka_unit_test(test_plan_remote_needs_host_and_whole_tls),
        cmocka_unit_test(test_plan_help),
        cmocka_unit_test(test_random_hex_output),
        cmocka_unit_test(test_usage_errors_and_remote_lines),
        cmocka_unit_test(test_encryption_meta),
        cmocka_unit_test(test_plan_bulk_write),
        cmocka_unit_test(test_plan_import),
        cmocka_unit_test(test_bulk_write_and_import_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
