#!/usr/bin/env bash
# plaintext-to-tls: an http:// client on PD's TLS port, and a plaintext MySQL login with require-secure-transport.
. "$(dirname "$0")/_lib.sh"
title "curl and pd-ctl use http:// against PD; mariadb logs in without TLS to a TiDB with require-secure-transport" \
    "PD answers 400 'HTTP request to an HTTPS server' and logs 'use https://'; TiDB refuses with 3159; over TLS all are served"
certs
mysql_certs
pd_up '["TiKV-Server", "TiDB-Server", "PD-Control"]'
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
tikv_up tikv "$W/tikv.toml"
tidb_config "$W/tidb.toml" oneway true
tidb_up tidb "$W/tidb.toml"
PLAIN_URL=http://127.0.0.1:$PD_C

step "Broken: plain HTTP on PD's TLS client port"
expect_refused "curl http:// gets HTTP 400 and no API data" \
    'The requested URL returned error: 400' \
    curl -sS --fail "$PLAIN_URL/pd/api/v1/health"
expect_refused "pd-ctl -u http:// (no --cacert) prints PD's answer" \
    '^\[400\] Client sent an HTTP request to an HTTPS server\.$' \
    "$BIN/pd-ctl" -u "$PLAIN_URL" health
expect_log "PD logs the plaintext bytes it got instead of a handshake" pd \
    '"reason":"client sent plaintext instead of TLS \(first bytes \\"GET /pd/api/v1/h\\"\); use https://"'

step "Broken: a plaintext MySQL login, require-secure-transport = true"
run grep -E '^(ssl-|require-secure)' "$W/tidb.toml"
expect_refused "mariadb --skip-ssl is refused with MySQL's 3159" \
    'ERROR 3159 .*Connections using insecure transport are prohibited while --require_secure_transport=ON' \
    mariadb -h 127.0.0.1 -P "${MY[tidb]}" -u root --skip-ssl -e "SELECT 1"
expect_log "TiDB logs the refused plaintext login" tidb \
    "refused plaintext login of 'root' from 127\.0\.0\.1:[0-9]+: require-secure-transport is on"

step "Good case: the same servers over TLS"
expect_served "curl https:// with the cluster CA and a listed certificate" '"health": ?true' \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" "https://127.0.0.1:$PD_C/pd/api/v1/health"
expect_served "pd-ctl -u http:// WITH --cacert is upgraded to https:// and served" '"health": true' \
    "$BIN/pd-ctl" -u "$PLAIN_URL" --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" health
expect_served "mariadb over TLS (one-way, server verified) is served" 'TLSv1\.2' \
    mariadb -h 127.0.0.1 -P "${MY[tidb]}" -u root --ssl --ssl-ca="$MYCERTS/ca.pem" \
    --ssl-verify-server-cert -N -e "SHOW STATUS LIKE 'Ssl_version'"

explain "A TLS port expects a ClientHello first; plain bytes fail that one connection. PD's HTTPS port
answers an HTTP request with 400 so a browser or curl says why; TiDB speaks plain MySQL first and refuses
the login with 3159 when require-secure-transport is on and the client did not switch to TLS." \
    "use https:// with the cluster CA and a client certificate (pd-ctl --cacert upgrades http://);
for MySQL, connect with --ssl (and --ssl-ca/--ssl-verify-server-cert to check the server)."
verdict
