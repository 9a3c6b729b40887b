/* tidb-ctl: the process around tidbctl.c. */
#include "log.h"
#include "tidbctl.h"

#include <signal.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* The transport logs every handshake; tidb-ctl prints its own one line "tidb-ctl: <why>"
     * instead, so only errors of the transport itself reach stderr. */
    log_open("tidb-ctl", NULL, LOG_ERROR);
    int rc = tidbctl_main(argc, argv, stdout, stderr);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "tidb-ctl: cannot write the output\n");
        rc = 1;
    }
    log_close();
    return rc;
}
