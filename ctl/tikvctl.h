/* tikvctl.h — the commands of tikv-ctl (TiKV Control), with real tikv-ctl's flags.
 *
 * Contract:
 * - Global flags (before the command, as real tikv-ctl takes them): --host HOST:PORT of the
 *   TiKV to talk to, --ca-path / --cert-path / --key-path for mutual TLS (TiDB's TLS guide:
 *   `tikv-ctl --host="127.0.0.1:20160" --ca-path=... --cert-path=... --key-path=...`),
 *   --data-dir for local commands. main() parses them into struct tikvctl.
 * - tikvctl_plan maps a command line (argv[0] is the command) to a struct tikvctl_call, or
 *   returns -1 with one line in err:
 *     random-hex --len N              local: N random bytes, 1 <= N <= TIKVCTL_MAX_HEX_LEN
 *     encryption-meta [--data-dir D]  local: how data dir D is encrypted (D or global --data-dir)
 *     bulk-write --input T --output F [--cipher-file C]
 *                                     local: `key<TAB>value` lines of T into bulk file F
 *                                     (tikv/tikv_import.h), encrypted with C's key when given
 *     raw-put KEY VALUE               remote
 *     raw-get KEY                     remote
 *     raw-delete KEY                  remote
 *     raw-scan [--from K] [--to K] [--limit N]   remote; limit 1..TIKVCTL_MAX_SCAN_LIMIT,
 *                                     default 30 as real tikv-ctl; --to "" is the end
 *     status                          remote
 *     import --file F                 remote: the store ingests bulk file F as one write
 *     help
 *   Keys and values are taken as given (after "--" they may start with '-'); a key is never
 *   empty. A remote command needs --host (host:port, port 1..65535) and TLS flags all three or
 *   none (the missing one is named); a local one refuses --host.
 * - tikvctl_run plans and runs. random-hex prints 2N lowercase hex digits and a newline
 *   (a CSPRNG: common/cipherfile's CTR-DRBG). encryption-meta prints what <dir>/meta.json
 *   says (tikv/kv_meta.h) and never a key; a dir without one says so. Remote commands make
 *   one RPC call (common/rpccall.h) to --host over TLS with the given files (following a
 *   NOT_LEADER answer once): raw-get prints the value as stored and a newline, raw-scan one
 *   "KEY<TAB>VALUE" a line, status the store's JSON, raw-put/raw-delete "success!". bulk-write
 *   prints "wrote N keys to F (encrypted with the cipher-file's key|plaintext)"; import sends
 *   F's bytes in one "ingest" call (a file over TIKV_IMPORT_MAX_FILE is refused before
 *   connecting, naming its size and the limit) and prints "ingested N keys". A key
 *   raw-get does not find is "tikv-ctl: key not found: KEY"; any other refusal is
 *   "tikv-ctl: STATUS: message" (TiKV's own words, e.g. UNAUTHENTICATED: Common name check
 *   fail, ...), a transport failure "tikv-ctl: <the transport's reason>".
 *   A usage error prints "tikv-ctl: <why>" and "Run 'tikv-ctl --help' for usage." on err.
 *   Any other failure is one line "tikv-ctl: <why>". Returns the exit status, 0 or 1.
 */
#ifndef TISIM_TIKVCTL_H
#define TISIM_TIKVCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The largest cipher-file token TiKV accepts (CIPHERFILE_MAX_TOKEN): random-hex exists to
 * make cipher files, and a longer one would be refused at start-up. */
#define TIKVCTL_MAX_HEX_LEN 1024
/* One scan's answer must fit one RPC frame (8 MB) with room for sizeable values. */
#define TIKVCTL_MAX_SCAN_LIMIT 10000
#define TIKVCTL_DEFAULT_SCAN_LIMIT 30

struct tikvctl {
    const char *host;      /* "127.0.0.1:20160" or NULL */
    const char *ca_path;   /* all three set (TLS) or all NULL */
    const char *cert_path;
    const char *key_path;
    const char *data_dir;  /* global --data-dir, or NULL */
    FILE *out;
    FILE *err;
};

enum tikvctl_cmd {
    TIKVCTL_HELP,
    TIKVCTL_RANDOM_HEX,
    TIKVCTL_ENCRYPTION_META,
    TIKVCTL_BULK_WRITE, /* the last local command: remote ones follow */
    TIKVCTL_RAW_PUT,
    TIKVCTL_RAW_GET,
    TIKVCTL_RAW_DELETE,
    TIKVCTL_RAW_SCAN,
    TIKVCTL_STATUS,
    TIKVCTL_IMPORT,
};

struct tikvctl_call {
    enum tikvctl_cmd cmd;
    bool remote;          /* needs the KV service at --host */
    size_t len;           /* random-hex */
    const char *data_dir; /* encryption-meta */
    const char *key;      /* raw-put, raw-get, raw-delete */
    const char *value;    /* raw-put */
    const char *from;     /* raw-scan: "" is the start */
    const char *to;       /* raw-scan: "" is the end */
    size_t limit;         /* raw-scan */
    const char *input;       /* bulk-write */
    const char *output;      /* bulk-write */
    const char *cipher_file; /* bulk-write: NULL for a plaintext file */
    const char *file;        /* import */
};

int tikvctl_plan(const struct tikvctl *c, int argc, char **argv, struct tikvctl_call *call,
                 char *err, size_t errlen);
int tikvctl_run(const struct tikvctl *c, int argc, char **argv);
void tikvctl_usage(FILE *out);

#endif
