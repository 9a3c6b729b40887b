/* mysql_server.h — TiDB's MySQL port: the listener, each connection's protocol state machine
 * on the event loop, and a pool of session workers that authenticate and run statements.
 *
 * Contract:
 * - mysql_server_new listens on host:port (port 0: a free one, mysql_server_port) in
 *   plaintext and greets each client with the Initial Handshake v10 (CLIENT_SSL offered when
 *   tls is set: the MySQL-client certificate set, a TLS_SERVER ctx with client_auth NONE for
 *   one-way TLS or OPTIONAL when ssl-ca is set). A client's SSLRequest upgrades the same
 *   connection with tls_bev_starttls; bytes after it are kept.
 * - require_secure: a login over plaintext gets ERR 3159 "Connections using insecure
 *   transport are prohibited while --require_secure_transport=ON." and the connection closes.
 * - Login (on a worker): the account is user@client-address, else user@localhost for a
 *   loopback client, else user@'%'; mysql_native_password is checked against the stored
 *   hash; the account's REQUIRE is enforced (SSL: TLS; X509: a verified client certificate;
 *   SUBJECT / ISSUER: that certificate's names, exactly). Any failure is ERR 1045 "Access
 *   denied for user 'u'@'host' (using password: YES|NO)" -- the same words whatever failed,
 *   and never a password or hash -- then close. An unknown initial database is ERR 1049.
 *   The first login bootstraps the cluster's catalog (root@'%' with an empty password).
 * - A client that has not sent its login within 10 s (TLS handshake included) is closed
 *   with a log line, so half-open connections cannot pile up; checking the login and idle
 *   logged-in sessions have no such limit.
 * - Commands: COM_QUERY and COM_INIT_DB run on a worker (one command in flight per
 *   connection; what the client sends meanwhile waits in the input buffer); COM_PING,
 *   COM_QUIT, COM_RESET_CONNECTION, COM_SET_OPTION, COM_FIELD_LIST (an empty list) are
 *   answered on the loop; any other command gets ERR 1047 and the connection goes on. A
 *   packet over MYSQL_MAX_COMMAND_DEFAULT, or out of sequence, closes the connection with a
 *   log line; other connections carry on.
 * - mysql_server_free closes the listener and every connection; it waits for the workers to
 *   finish the statements they run (before the KV bridge goes).
 */
#ifndef TISIM_MYSQL_SERVER_H
#define TISIM_MYSQL_SERVER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "executor.h"
#include "tls.h"

#define MYSQL_SERVER_WORKERS 8

struct mysql_server_opts {
    struct event_base *base;
    const char *host;
    int port;
    struct tls_ctx *tls;             /* NULL: no TLS offered */
    bool require_secure;
    const struct exec_server *exec;  /* catalog, version, TLS facts for SHOW */
    unsigned workers;                /* 0: MYSQL_SERVER_WORKERS */
};

struct mysql_server;

struct mysql_server *mysql_server_new(const struct mysql_server_opts *o, char *err,
                                      size_t errlen);
int mysql_server_port(const struct mysql_server *s);
unsigned long mysql_server_connections(const struct mysql_server *s);
void mysql_server_free(struct mysql_server *s);

#endif
