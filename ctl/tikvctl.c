#include "tikvctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cipherfile.h"
#include "rpccall.h"
#include "flags.h"
#include "log.h"
#include "kv_meta.h"
#include "tikv_import.h"
#include "url.h"

_Static_assert(TIKVCTL_MAX_HEX_LEN == CIPHERFILE_MAX_TOKEN,
               "random-hex makes cipher files: its cap is the cipher-file's");
_Static_assert(TIKV_IMPORT_MAX_FILE == 8388594, "the usage text names the import limit");

#define TIKVCTL_TIMEOUT_MS 10000
#define TIKVCTL_RETRY_MS 200
#define TIKVCTL_ELECTION_WAIT_MS 5000

void tikvctl_usage(FILE *out)
{
    fputs("TiKV Control (tikv-ctl) is a command line tool for TiKV.\n"
          "\n"
          "Usage:\n"
          "  tikv-ctl [flags] COMMAND [ARGS]\n"
          "\n"
          "Local commands:\n"
          "  random-hex --len N             print N random bytes (1 to 1024) from a CSPRNG as\n"
          "                                 2N hex digits: a cipher-file, e.g.\n"
          "                                 tikv-ctl random-hex --len 256 > cipher-file-256\n"
          "  encryption-meta --data-dir DIR show whether and how DIR is encrypted (never a key)\n"
          "  bulk-write --input TEXT --output FILE [--cipher-file CIPHER]\n"
          "                                 write a bulk data file from TEXT, one key<TAB>value\n"
          "                                 a line; with --cipher-file it is encrypted with that\n"
          "                                 key, as a cluster that encrypts its data requires\n"
          "\n"
          "Remote commands (need --host; over TLS when --ca-path is given):\n"
          "  raw-put KEY VALUE              store VALUE under KEY (printed: success!)\n"
          "  raw-get KEY                    print the value of KEY\n"
          "  raw-delete KEY                 delete KEY\n"
          "  raw-scan [--from K] [--to K] [--limit N]\n"
          "                                 print keys from K (included) to K (excluded; empty:\n"
          "                                 the end), at most N (default 30, at most 10000),\n"
          "                                 one \"KEY<TAB>VALUE\" a line\n"
          "  status                         show the store's status\n"
          "  import --file FILE             the store ingests bulk data FILE as one atomic write\n"
          "                                 (a file of at most 8388594 bytes: one request)\n"
          "  help                           show this help\n"
          "\n"
          "Flags (before the command):\n"
          "      --host HOST:PORT           address of the TiKV to talk to\n"
          "      --ca-path PATH             CA certificate to verify TiKV's certificate\n"
          "      --cert-path PATH           client certificate for mutual TLS\n"
          "      --key-path PATH            private key of --cert-path\n"
          "      --data-dir DIR             TiKV data dir, for local commands\n"
          "  -h, --help                     show this help\n"
          "\n"
          "--ca-path, --cert-path and --key-path go together: all three for TLS, or none.\n"
          "Keys and values are taken as given; put \"--\" before one that starts with '-'.\n"
          "Exit status: 0 on success, 1 on any error (one line on stderr).\n",
          out);
}

/* A decimal count: 0 and *out, 1 when not a number, 2 when above max (or overflowing). */
static int parse_count(const char *s, size_t max, size_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || strspn(s, "0123456789") != n)
        return 1;
    if (n > 20)
        return 2;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v > max)
        return 2;
    *out = (size_t)v;
    return 0;
}

/* A subcommand's own flags; returns the index of its first positional argument, -1 on error
 * (err names the command). */
static int sub_flags(const struct flag *table, size_t n, int argc, char **argv, char *err,
                     size_t errlen)
{
    char why[200];
    int pos = flags_parse(table, n, argc, argv, why, sizeof why);
    if (pos < 0)
        return errorf(err, errlen, "%s: %s", argv[0], why);
    return pos;
}

static int expect_args(int have, int want, const char *usage, char *err, size_t errlen)
{
    if (have != want)
        return errorf(err, errlen, "usage: %s (%s)", usage,
                    have < want ? "missing argument" : "too many arguments");
    return 0;
}

static int plan_random_hex(int argc, char **argv, struct tikvctl_call *call, bool *help,
                           char *err, size_t errlen)
{
    const char *len = NULL;
    const struct flag table[] = {
        {"len", 'l', false, &len, NULL, "number of random bytes"},
        {"help", 'h', true, NULL, help, "help"},
    };
    int pos = sub_flags(table, 2, argc, argv, err, errlen);
    if (pos < 0 || *help)
        return pos < 0 ? -1 : 0;
    if (expect_args(argc - pos, 0, "random-hex --len N", err, errlen) != 0)
        return -1;
    if (!len)
        return errorf(err, errlen, "random-hex needs --len N (N random bytes, 1 to %d)",
                    TIKVCTL_MAX_HEX_LEN);
    int r = parse_count(len, TIKVCTL_MAX_HEX_LEN, &call->len);
    if (r == 2)
        return errorf(err, errlen,
                    "random-hex --len %s: at most %d bytes, the longest cipher-file token "
                    "TiKV accepts",
                    len, TIKVCTL_MAX_HEX_LEN);
    if (r != 0 || call->len == 0)
        return errorf(err, errlen, "random-hex --len '%s': give a number of bytes from 1 to %d",
                    len, TIKVCTL_MAX_HEX_LEN);
    return 0;
}

static int plan_encryption_meta(const struct tikvctl *c, int argc, char **argv,
                                struct tikvctl_call *call, bool *help, char *err,
                                size_t errlen)
{
    const char *dir = c->data_dir;
    const struct flag table[] = {
        {"data-dir", 0, false, &dir, NULL, "TiKV data dir"},
        {"help", 'h', true, NULL, help, "help"},
    };
    int pos = sub_flags(table, 2, argc, argv, err, errlen);
    if (pos < 0 || *help)
        return pos < 0 ? -1 : 0;
    if (expect_args(argc - pos, 0, "encryption-meta --data-dir DIR", err, errlen) != 0)
        return -1;
    if (!dir || !*dir)
        return errorf(err, errlen, "encryption-meta needs --data-dir DIR");
    if (c->host)
        return errorf(err, errlen,
                    "encryption-meta reads a data dir on this machine: give --data-dir, "
                    "not --host");
    call->data_dir = dir;
    return 0;
}

static int plan_key_command(int argc, char **argv, struct tikvctl_call *call, bool *help,
                            char *err, size_t errlen)
{
    const struct flag table[] = {{"help", 'h', true, NULL, help, "help"}};
    int pos = sub_flags(table, 1, argc, argv, err, errlen);
    if (pos < 0 || *help)
        return pos < 0 ? -1 : 0;
    const char *usage = call->cmd == TIKVCTL_RAW_PUT   ? "raw-put KEY VALUE"
                        : call->cmd == TIKVCTL_RAW_GET ? "raw-get KEY"
                                                       : "raw-delete KEY";
    if (expect_args(argc - pos, call->cmd == TIKVCTL_RAW_PUT ? 2 : 1, usage, err, errlen))
        return -1;
    call->key = argv[pos];
    if (call->cmd == TIKVCTL_RAW_PUT)
        call->value = argv[pos + 1];
    if (!*call->key)
        return errorf(err, errlen, "%s: the key is empty (TiKV has no empty key)", argv[0]);
    return 0;
}

static int plan_raw_scan(int argc, char **argv, struct tikvctl_call *call, bool *help,
                         char *err, size_t errlen)
{
    const char *from = "", *to = "", *limit = NULL;
    const struct flag table[] = {
        {"from", 0, false, &from, NULL, "first key"},
        {"to", 0, false, &to, NULL, "end key (excluded)"},
        {"limit", 0, false, &limit, NULL, "at most this many keys"},
        {"help", 'h', true, NULL, help, "help"},
    };
    int pos = sub_flags(table, 4, argc, argv, err, errlen);
    if (pos < 0 || *help)
        return pos < 0 ? -1 : 0;
    if (expect_args(argc - pos, 0, "raw-scan [--from K] [--to K] [--limit N]", err, errlen))
        return -1;
    call->from = from;
    call->to = to;
    call->limit = TIKVCTL_DEFAULT_SCAN_LIMIT;
    if (limit && (parse_count(limit, TIKVCTL_MAX_SCAN_LIMIT, &call->limit) != 0 ||
                  call->limit == 0))
        return errorf(err, errlen, "raw-scan --limit '%s': give a number of keys from 1 to %d",
                    limit, TIKVCTL_MAX_SCAN_LIMIT);
    if (*to && strcmp(from, to) >= 0)
        return errorf(err, errlen, "raw-scan: --from '%s' is not below --to '%s'", from, to);
    return 0;
}

static int plan_bulk_write(const struct tikvctl *c, int argc, char **argv,
                           struct tikvctl_call *call, bool *help, char *err, size_t errlen)
{
    const char *input = NULL, *output = NULL, *cipher = NULL;
    const struct flag table[] = {
        {"input", 0, false, &input, NULL, "key<TAB>value text"},
        {"output", 0, false, &output, NULL, "bulk file to write"},
        {"cipher-file", 0, false, &cipher, NULL, "the cluster's cipher-file"},
        {"help", 'h', true, NULL, help, "help"},
    };
    int pos = sub_flags(table, 4, argc, argv, err, errlen);
    if (pos < 0 || *help)
        return pos < 0 ? -1 : 0;
    if (expect_args(argc - pos, 0, "bulk-write --input TEXT --output FILE [--cipher-file F]",
                    err, errlen) != 0)
        return -1;
    if (!input || !*input)
        return errorf(err, errlen, "bulk-write needs --input TEXT (one key<TAB>value a line)");
    if (!output || !*output)
        return errorf(err, errlen, "bulk-write needs --output FILE (the bulk file to write)");
    if (cipher && !*cipher)
        return errorf(err, errlen, "bulk-write --cipher-file: give the cluster's cipher-file");
    if (c->host)
        return errorf(err, errlen, "bulk-write writes a file on this machine: give no --host "
                    "(send the file with 'tikv-ctl --host HOST:PORT import --file FILE')");
    call->input = input;
    call->output = output;
    call->cipher_file = cipher;
    return 0;
}

static int plan_import(int argc, char **argv, struct tikvctl_call *call, bool *help, char *err,
                       size_t errlen)
{
    const char *file = NULL;
    const struct flag table[] = {
        {"file", 0, false, &file, NULL, "bulk file"},
        {"help", 'h', true, NULL, help, "help"},
    };
    int pos = sub_flags(table, 2, argc, argv, err, errlen);
    if (pos < 0 || *help)
        return pos < 0 ? -1 : 0;
    if (expect_args(argc - pos, 0, "import --file FILE", err, errlen) != 0)
        return -1;
    if (!file || !*file)
        return errorf(err, errlen, "import needs --file FILE (a bulk file: tikv-ctl bulk-write)");
    call->file = file;
    return 0;
}

static int plan_status(int argc, char **argv, bool *help, char *err, size_t errlen)
{
    const struct flag table[] = {{"help", 'h', true, NULL, help, "help"}};
    int pos = sub_flags(table, 1, argc, argv, err, errlen);
    if (pos < 0 || *help)
        return pos < 0 ? -1 : 0;
    return expect_args(argc - pos, 0, "status", err, errlen);
}

/* What a remote command needs from the global flags. */
static int check_remote(const struct tikvctl *c, const char *cmd, char *err, size_t errlen)
{
    if (!c->host || !*c->host)
        return errorf(err, errlen, "%s talks to a TiKV: give --host HOST:PORT", cmd);
    struct url u;
    char why[400];
    if (url_parse(c->host, false, &u, why, sizeof why) != 0)
        return errorf(err, errlen, "--host: %s", why);
    if (u.scheme[0] || u.path[0])
        return errorf(err, errlen, "--host %s: give host:port, without a scheme or a path",
                    c->host);
    const char *names[] = {"--ca-path", "--cert-path", "--key-path"};
    const char *values[] = {c->ca_path, c->cert_path, c->key_path};
    int set = 0;
    for (int i = 0; i < 3; i++)
        set += values[i] && *values[i];
    for (int i = 0; set > 0 && set < 3 && i < 3; i++)
        if (!values[i] || !*values[i])
            return errorf(err, errlen,
                        "%s is not set: --ca-path, --cert-path and --key-path go together "
                        "(all three for TLS, or none)",
                        names[i]);
    return 0;
}

static const struct {
    const char *name;
    enum tikvctl_cmd cmd;
} commands[] = {
    {"help", TIKVCTL_HELP},
    {"random-hex", TIKVCTL_RANDOM_HEX},
    {"encryption-meta", TIKVCTL_ENCRYPTION_META},
    {"raw-put", TIKVCTL_RAW_PUT},
    {"raw-get", TIKVCTL_RAW_GET},
    {"raw-delete", TIKVCTL_RAW_DELETE},
    {"raw-scan", TIKVCTL_RAW_SCAN},
    {"status", TIKVCTL_STATUS},
    {"bulk-write", TIKVCTL_BULK_WRITE},
    {"import", TIKVCTL_IMPORT},
};

static int plan_args(const struct tikvctl *c, int argc, char **argv, struct tikvctl_call *call,
                     bool *help, char *err, size_t errlen)
{
    switch (call->cmd) {
    case TIKVCTL_HELP:
        return 0;
    case TIKVCTL_RANDOM_HEX:
        return plan_random_hex(argc, argv, call, help, err, errlen);
    case TIKVCTL_ENCRYPTION_META:
        return plan_encryption_meta(c, argc, argv, call, help, err, errlen);
    case TIKVCTL_RAW_PUT:
    case TIKVCTL_RAW_GET:
    case TIKVCTL_RAW_DELETE:
        return plan_key_command(argc, argv, call, help, err, errlen);
    case TIKVCTL_RAW_SCAN:
        return plan_raw_scan(argc, argv, call, help, err, errlen);
    case TIKVCTL_STATUS:
        return plan_status(argc, argv, help, err, errlen);
    case TIKVCTL_BULK_WRITE:
        return plan_bulk_write(c, argc, argv, call, help, err, errlen);
    case TIKVCTL_IMPORT:
        return plan_import(argc, argv, call, help, err, errlen);
    }
    return errorf(err, errlen, "unknown command '%s'", argv[0]);
}

int tikvctl_plan(const struct tikvctl *c, int argc, char **argv, struct tikvctl_call *call,
                 char *err, size_t errlen)
{
    memset(call, 0, sizeof *call);
    if (argc < 1)
        return errorf(err, errlen, "no command given");
    size_t i = 0, n = sizeof commands / sizeof commands[0];
    while (i < n && strcmp(commands[i].name, argv[0]) != 0)
        i++;
    if (i == n)
        return errorf(err, errlen, "unknown command '%s'", argv[0]);
    call->cmd = commands[i].cmd;
    call->remote = call->cmd >= TIKVCTL_RAW_PUT;
    bool help = false;
    if (plan_args(c, argc, argv, call, &help, err, errlen) != 0)
        return -1;
    if (help) {
        memset(call, 0, sizeof *call);
        call->cmd = TIKVCTL_HELP;
        return 0;
    }
    return call->remote ? check_remote(c, argv[0], err, errlen) : 0;
}

static int run_random_hex(const struct tikvctl *c, size_t len)
{
    char hex[2 * TIKVCTL_MAX_HEX_LEN + 1], err[256];
    if (cipherfile_random_hex(len, hex, sizeof hex, err, sizeof err) != 0) {
        fprintf(c->err, "tikv-ctl: random-hex: %s\n", err);
        return 1;
    }
    fprintf(c->out, "%s\n", hex);
    return 0;
}

static void print_meta(FILE *out, const char *dir, const struct kv_meta *m)
{
    fprintf(out, "data-dir: %s\n", dir);
    fprintf(out, "encrypted: %s\n", m->encrypted ? "true" : "false");
    if (m->encrypted) {
        fprintf(out, "cipher: %s\n", m->cipher);
        fprintf(out, "kdf: %s\n", m->kdf);
        fprintf(out, "key-check: %s (identifies the cipher-file's key; it is not the key)\n",
                m->key_check);
    }
    if (m->created[0])
        fprintf(out, "created: %s\n", m->created);
}

static int run_encryption_meta(const struct tikvctl *c, const char *dir)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        fprintf(c->err, "tikv-ctl: --data-dir %s: %s\n", dir, strerror(errno));
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        fprintf(c->err, "tikv-ctl: --data-dir %s: not a directory\n", dir);
        return 1;
    }
    struct kv_meta m;
    char err[512];
    int r = kv_meta_load(dir, &m, err, sizeof err);
    if (r < 0) {
        fprintf(c->err, "tikv-ctl: %s\n", err);
        return 1;
    }
    if (r == 1) {
        fprintf(c->err,
                "tikv-ctl: %s has no " KV_META_FILE
                ": not a TiKV data dir (tikv-server writes it when it first opens a dir)\n",
                dir);
        return 1;
    }
    print_meta(c->out, dir, &m);
    return 0;
}

/* One call to the store at addr. A NOT_LEADER answer that names the leader is followed once;
 * one that names none (an election, or a store that has not joined the region yet) is retried
 * every TIKVCTL_RETRY_MS for up to TIKVCTL_ELECTION_WAIT_MS, as TiKV's clients back off on
 * region errors. The last answer is what the caller prints. */
static int remote_call(const struct tikvctl *c, const char *method, const struct rpc_buf *args,
                       size_t n, struct rpc_frame **resp)
{
    struct rpccall_tls tls = {c->ca_path, c->cert_path, c->key_path};
    char err[600], addr[300];
    int hops = 0;
    snprintf(addr, sizeof addr, "%s", c->host);
    for (int waited = 0;; ) {
        if (rpccall(addr, method, args, n, c->ca_path ? &tls : NULL, "tikv-ctl",
                    TIKVCTL_TIMEOUT_MS, resp, err, sizeof err) != 0) {
            fprintf(c->err, "tikv-ctl: %s\n", err);
            return -1;
        }
        if ((*resp)->status != RPC_NOT_LEADER || (*resp)->nfields < 1)
            return 0;
        size_t len = (*resp)->fields[0].len;
        if (len > 0 && hops++ == 0) {
            snprintf(addr, sizeof addr, "%.*s", (int)len, (const char *)(*resp)->fields[0].data);
        } else if (len > 0 || waited >= TIKVCTL_ELECTION_WAIT_MS) {
            return 0;
        } else {
            struct timespec ts = {0, TIKVCTL_RETRY_MS * 1000000L};
            nanosleep(&ts, NULL);
            waited += TIKVCTL_RETRY_MS;
        }
        rpc_frame_free(*resp);
        *resp = NULL;
    }
}

static struct rpc_buf str_buf(const char *s)
{
    return (struct rpc_buf){s, strlen(s)};
}

static void print_buf(FILE *out, const struct rpc_buf *b)
{
    fwrite(b->data, 1, b->len, out);
}

/* Prints the answer of a remote command; failures are one line "tikv-ctl: <why>". */
static int print_answer(const struct tikvctl *c, const struct tikvctl_call *call,
                        const struct rpc_frame *r)
{
    char msg[600];
    rpc_frame_message(r, msg, sizeof msg);
    if (r->status == RPC_NOT_FOUND && call->cmd == TIKVCTL_RAW_GET) {
        fprintf(c->err, "tikv-ctl: key not found: %s\n", call->key);
        return 1;
    }
    if (r->status != RPC_OK) {
        fprintf(c->err, "tikv-ctl: %s%s%s\n", rpc_status_name(r->status), msg[0] ? ": " : "",
                msg);
        return 1;
    }
    switch (call->cmd) {
    case TIKVCTL_RAW_GET:
    case TIKVCTL_STATUS:
        if (r->nfields > 0)
            print_buf(c->out, &r->fields[0]);
        fputc('\n', c->out);
        break;
    case TIKVCTL_RAW_SCAN:
        for (size_t i = 0; i + 1 < r->nfields; i += 2) {
            print_buf(c->out, &r->fields[i]);
            fputc('\t', c->out);
            print_buf(c->out, &r->fields[i + 1]);
            fputc('\n', c->out);
        }
        break;
    case TIKVCTL_IMPORT:
        fprintf(c->out, "%s\n", msg[0] ? msg : "success!");
        break;
    default:
        fprintf(c->out, "success!\n");
    }
    return 0;
}

static int run_remote(const struct tikvctl *c, const struct tikvctl_call *call)
{
    struct rpc_buf args[3];
    size_t n = 0;
    const char *method = "status";
    char limit[24];
    switch (call->cmd) {
    case TIKVCTL_RAW_PUT:
        method = "raw_put";
        args[n++] = str_buf(call->key);
        args[n++] = str_buf(call->value);
        break;
    case TIKVCTL_RAW_GET:
    case TIKVCTL_RAW_DELETE:
        method = call->cmd == TIKVCTL_RAW_GET ? "raw_get" : "raw_delete";
        args[n++] = str_buf(call->key);
        break;
    case TIKVCTL_RAW_SCAN:
        method = "raw_scan";
        snprintf(limit, sizeof limit, "%zu", call->limit);
        args[n++] = str_buf(call->from);
        args[n++] = str_buf(call->to);
        args[n++] = str_buf(limit);
        break;
    default:
        break;
    }
    struct rpc_frame *resp = NULL;
    if (remote_call(c, method, args, n, &resp) != 0)
        return 1;
    int rc = print_answer(c, call, resp);
    rpc_frame_free(resp);
    return rc;
}

static int run_bulk_write(const struct tikvctl *c, const struct tikvctl_call *call)
{
    char err[1024];
    size_t n = 0;
    if (tikv_import_bulk_write(call->input, call->output, call->cipher_file, &n, err,
                               sizeof err) != 0) {
        fprintf(c->err, "tikv-ctl: bulk-write: %s\n", err);
        return 1;
    }
    fprintf(c->out, "wrote %zu keys to %s (%s)\n", n, call->output,
            call->cipher_file ? "encrypted with the cipher-file's key" : "plaintext");
    return 0;
}

/* The bulk file's bytes, if they fit one ingest request; else one line on c->err. */
static char *read_bulk_file(const struct tikvctl *c, const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *buf = NULL;
    if (!f || fstat(fileno(f), &st) != 0) {
        fprintf(c->err, "tikv-ctl: import --file %s: %s\n", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        fprintf(c->err, "tikv-ctl: import --file %s: not a regular file\n", path);
    } else if ((uintmax_t)st.st_size > TIKV_IMPORT_MAX_FILE) {
        fprintf(c->err,
                "tikv-ctl: import --file %s: the file is %jd bytes, over the %zu-byte limit of "
                "one ingest request (the RPC body limit is %u bytes)\n",
                path, (intmax_t)st.st_size, (size_t)TIKV_IMPORT_MAX_FILE, RPC_MAX_BODY);
    } else if (!(buf = malloc((size_t)st.st_size + 1))) {
        fprintf(c->err, "tikv-ctl: import --file %s: out of memory\n", path);
    } else if ((*len = fread(buf, 1, (size_t)st.st_size, f)) != (size_t)st.st_size) {
        fprintf(c->err, "tikv-ctl: import --file %s: cannot read it all\n", path);
        free(buf);
        buf = NULL;
    }
    if (f)
        fclose(f);
    return buf;
}

static int run_import(const struct tikvctl *c, const struct tikvctl_call *call)
{
    size_t len = 0;
    char *bytes = read_bulk_file(c, call->file, &len);
    if (!bytes)
        return 1;
    struct rpc_buf arg = {bytes, len};
    struct rpc_frame *resp = NULL;
    int rc = remote_call(c, TIKV_IMPORT_METHOD, &arg, 1, &resp) != 0 ? 1
                                                                        : print_answer(c, call, resp);
    rpc_frame_free(resp);
    free(bytes);
    return rc;
}

int tikvctl_run(const struct tikvctl *c, int argc, char **argv)
{
    struct tikvctl_call call;
    char err[512];
    if (tikvctl_plan(c, argc, argv, &call, err, sizeof err) != 0) {
        fprintf(c->err, "tikv-ctl: %s\nRun 'tikv-ctl --help' for usage.\n", err);
        return 1;
    }
    switch (call.cmd) {
    case TIKVCTL_HELP:
        tikvctl_usage(c->out);
        return 0;
    case TIKVCTL_RANDOM_HEX:
        return run_random_hex(c, call.len);
    case TIKVCTL_ENCRYPTION_META:
        return run_encryption_meta(c, call.data_dir);
    case TIKVCTL_BULK_WRITE:
        return run_bulk_write(c, &call);
    case TIKVCTL_IMPORT:
        return run_import(c, &call);
    default:
        return run_remote(c, &call);
    }
}
