/* tikv-ctl: global flags → tikvctl.c. */
#include "flags.h"
#include "log.h"
#include "tikvctl.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    log_open("tikv-ctl", NULL, LOG_ERROR);
    struct tikvctl c = {.out = stdout, .err = stderr};
    bool help = false, version = false;
    const struct flag table[] = {
        {"host", 0, false, &c.host, NULL, "TiKV address"},
        {"ca-path", 0, false, &c.ca_path, NULL, "CA certificate path"},
        {"cert-path", 0, false, &c.cert_path, NULL, "client certificate path"},
        {"key-path", 0, false, &c.key_path, NULL, "client key path"},
        {"data-dir", 0, false, &c.data_dir, NULL, "TiKV data dir"},
        {"version", 'V', true, NULL, &version, "print version"},
        {"help", 'h', true, NULL, &help, "help"},
    };
    char err[256];
    int pos = flags_parse(table, sizeof table / sizeof table[0], argc, argv, err, sizeof err);
    int rc = 0;
    if (pos < 0) {
        fprintf(stderr, "tikv-ctl: %s\nRun 'tikv-ctl --help' for usage.\n", err);
        rc = 1;
    } else if (help) {
        tikvctl_usage(stdout);
    } else if (version) {
        printf("TiKV Release Version: tisim tikv-ctl\n");
    } else if (pos >= argc) {
        fprintf(stderr, "tikv-ctl: no command given\nRun 'tikv-ctl --help' for usage.\n");
        rc = 1;
    } else {
        rc = tikvctl_run(&c, argc - pos, argv + pos);
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tikv-ctl: cannot write the output\n");
        rc = 1;
    }
    log_close();
    return rc;
}
