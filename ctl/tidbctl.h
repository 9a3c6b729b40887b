/* tidbctl.h — tidb-ctl (TiDB Control): asks a tidb-server's status port, as real tidb-ctl.
 *
 * Contract:
 * - tidbctl_parse reads the whole command line. Flags may come before, between or after the
 *   command words (cobra's persistent flags):
 *     -u, --url URL            the status port, "https://127.0.0.1:10080" (TiDB's TLS guide:
 *                              `tidb-ctl -u https://127.0.0.1:10080 --ca CA --ssl-cert CERT
 *                              --ssl-key KEY`); a URL without a scheme means https with --ca,
 *                              http without; with --ca an http:// URL is upgraded to https
 *     --host IP, --port PORT   real tidb-ctl's form (default 127.0.0.1 and 10080; https when
 *                              --ca is given, as real tidb-ctl); not together with -u
 *     --ca, --ssl-cert, --ssl-key   the CA that signed the status port's certificate, and our
 *                              certificate (needed when the server's cluster-verify-cn is set)
 *     -n, --name TABLE         with `schema in DB` only
 *     -h/--help, -V/--version
 *   Commands (what real tidb-ctl calls them where it has them):
 *     (none)                   the server status: GET /status
 *     info                     the server info: GET /info
 *     schema                   all databases: GET /schema
 *     schema in DB [-n TABLE]  the tables of DB, or one of them: GET /schema/DB[/TABLE]
 *     help
 *   Anything else (including real tidb-ctl's commands the status port here does not serve:
 *   schema tid, mvcc, region, table, decoder, base64decode, etcd, keyrange, log) is a usage
 *   error. --ssl-cert and --ssl-key go together and need --ca; https needs --ca.
 * - tidbctl_print prints a 2xx answer as real tidb-ctl does: JSON indented with 4 spaces, in
 *   the server's key order (a body that is not JSON as it is); a non-2xx answer is one line
 *   "[STATUS] message" on err (a JSON string unquoted, as pd-ctl prints PD's errors). Returns
 *   the exit status.
 * - tidbctl_main parses, calls the status port once through httpcall (the daemons' HTTP
 *   client and TLS transport) and prints. Exit status 0 on success, 1 on any failure, each
 *   one line on err: usage errors "tidb-ctl: <why>" + "Run 'tidb-ctl --help' for usage.";
 *   transport failures "tidb-ctl: <the transport's reason>" (a CN outside cluster-verify-cn,
 *   an untrusted server certificate, nothing listening, a plaintext server, ...), worded as
 *   pd-ctl's since both come from the same transport.
 */
#ifndef TISIM_TIDBCTL_H
#define TISIM_TIDBCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "httpcall.h"

#define TIDBCTL_DEFAULT_HOST "127.0.0.1"
#define TIDBCTL_DEFAULT_PORT 10080
#define TIDBCTL_TIMEOUT_MS 10000

enum tidbctl_action { TIDBCTL_GET, TIDBCTL_HELP, TIDBCTL_VERSION };

struct tidbctl_call {
    enum tidbctl_action action;
    char url[600];      /* "https://127.0.0.1:10080" */
    char path[1200];    /* "/schema/mysql", names percent-encoded */
    struct httpcall_tls tls; /* ca_path NULL: plain http */
};

/* 0 with call filled, or -1 with one line in err (a usage error). Pointers in call->tls
 * point into argv. */
int tidbctl_parse(int argc, char **argv, struct tidbctl_call *call, char *err, size_t errlen);
int tidbctl_print(int status, const char *body, size_t body_len, FILE *out, FILE *err);
int tidbctl_main(int argc, char **argv, FILE *out, FILE *err);
void tidbctl_usage(FILE *out);

#endif
