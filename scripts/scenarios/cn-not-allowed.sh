#!/usr/bin/env bash
# cn-not-allowed: TiDB's CN missing from TiKV's cert-allowed-cn.
. "$(dirname "$0")/_lib.sh"
title "TiKV's cert-allowed-cn leaves out \"TiDB-Server\", the CN of TiDB's cluster certificate" \
    "TiKV answers TiDB's requests UNAUTHENTICATED; the MySQL client gets 1105 with TiKV's words; listed, TiDB is served"
certs
mysql_certs
pd_up '["TiKV-Server", "TiDB-Server", "PD-Control"]'
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
sed -i 's/^cert-allowed-cn = \["TiDB-Server", /cert-allowed-cn = [/' "$W/tikv.toml"
tikv_up tikv "$W/tikv.toml"
tidb_config "$W/tidb.toml" mutual
tidb_up tidb "$W/tidb.toml"
M=(mariadb -h 127.0.0.1 -P "${MY[tidb]}" -u root --ssl-ca="$MYCERTS/ca.pem"
    --ssl-cert="$MYCERTS/client.pem" --ssl-key="$MYCERTS/client-key.pem" --connect-timeout=10)

step "TiKV's list, and the CN TiDB dials with"
run grep cert-allowed-cn "$W/tikv.toml"
run openssl x509 -noout -subject -in "$CERTS/tidb-server.pem"

step "Broken: a MySQL client logs in (TiDB reads its accounts from TiKV)"
expect_refused "the client gets 1105 carrying TiKV's refusal" \
    'ERROR 1105 .*TiKV: UNAUTHENTICATED: Common name check fail, reason: x509_common_name from peer is TiDB-Server, cert_allowed_cn: \{"PD-Server", "TiKV-Control", "RawKvClient1"\}' \
    "${M[@]}" -e "SELECT 1"
expect_log "TiKV: the handshake succeeded (any cert of the CA) ..." tikv \
    '"direction":"in",.*"peer_cn":"TiDB-Server","result":"ok"'
expect_log "... and the request was refused, with real TiKV's sentence" tikv \
    'WARN.*refused raw_[a-z]+ from 127\.0\.0\.1:[0-9]+: Common name check fail, reason: x509_common_name from peer is TiDB-Server'
expect_log "TiDB logs why the login could not be checked" tidb \
    "login of 'root' from .*: the catalog is not reachable: TiKV: UNAUTHENTICATED"

step "Good case: \"TiDB-Server\" added to TiKV's list, TiKV restarted (same data dir)"
tikv_down tikv
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
run grep cert-allowed-cn "$W/tikv.toml"
tikv_up tikv "$W/tikv.toml"
served() { "${M[@]}" -N -e "SELECT 1" >/dev/null 2>&1; }
check "TiDB reaches TiKV again (its pooled connections redial)" wait_until 15 served
expect_served "the same client logs in and writes a row through TiKV" '^1	hello$' \
    "${M[@]}" -N -e "CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY, v VARCHAR(10)); INSERT INTO d.t VALUES (1, 'hello'); SELECT * FROM d.t"

explain "TiKV, like real TiKV, lets any certificate of the CA finish the handshake and checks the
CN per request: a caller outside cert-allowed-cn gets UNAUTHENTICATED for every request, which TiDB
passes on to its MySQL client as 1105." \
    "put the CN of TiDB's cluster-ssl-cert (TiDB-Server) in every TiKV's and PD's cert-allowed-cn and
restart them; the guide's lists already have it."
verdict
