#!/usr/bin/env bash
# One TLS PD with the TLS guide's cert-allowed-cn: pd-ctl, curl and openssl s_client get in with
# an allowed certificate, and every bad certificate is refused with a clear reason.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
CP=$(free_port)
PP=$(free_port)
URL=https://127.0.0.1:$CP
pd_config "$WORK/pd.toml" '["TiKV-Server", "TiDB-Server", "PD-Control"]'
start_pd pd1 "$CP" "$PP" "$WORK/pd.toml" || { fail "pd-server starts"; finish; }
PD_PID=$LAST_PID

# The good cases, with the TLS guide's pd-ctl command line.
check_output "pd-ctl health" '"health": true' pdctl "$URL" pd-control health
check_output "pd-ctl member shows a leader object" '^  "leader": \{$' pdctl "$URL" pd-control member
check_output "pd-ctl member leader show names pd1" '^  "name": "pd1",$' \
    pdctl "$URL" pd-control member leader show
check_output "pd-ctl store (empty cluster)" '"count": 0' pdctl "$URL" pd-control store
check_output "pd-ctl region" '"count": 0' pdctl "$URL" pd-control region
check_output "pd-ctl cluster" '"max_peer_count": 3' pdctl "$URL" pd-control cluster
check_output "pd-ctl config show" '"max-replicas": 3' pdctl "$URL" pd-control config show
check_output "pd-ctl tso prints a timestamp" '^[0-9]{15,}$' pdctl "$URL" pd-control tso
T1=$(pdctl "$URL" pd-control tso)
T2=$(pdctl "$URL" pd-control tso)
check "TSO increases" test "$T2" -gt "$T1"
check_output "pd-ctl tso decodes" "^logic:  $((T2 & 262143))\$" pdctl "$URL" pd-control tso "$T2"
check_output "curl with an allowed client cert" '"max_peer_count"' \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" "$URL/pd/api/v1/cluster"
check_output "openssl s_client verifies the PD cert, gets an answer, sees close_notify (exit 0)" 'Verify return code: 0 \(ok\)' \
    sh -c "printf 'GET /pd/api/v1/health HTTP/1.0\\r\\n\\r\\n' | openssl s_client -ign_eof \
        -connect 127.0.0.1:$CP -CAfile $CERTS/ca.pem -cert $CERTS/pd-control.pem \
        -key $CERTS/pd-control-key.pem -verify_return_error -verify_ip 127.0.0.1 2>&1"
cp "$WORK/last.out" "$WORK/s_client.out"
check_output "... and the answer is PD's health" '"health": true' cat "$WORK/s_client.out"

# Registration through the API TiKV will use.
check_output "a store registers" '"store_id": 1' \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"address":"127.0.0.1:20160"}' \
    "$URL/pd/api/v1/tikv/register"
check_output "pd-ctl -i runs each command read from its input" '"address": "127\.0\.0\.1:20160"' \
    sh -c "printf 'health\\nstore 1\\nexit\\n' | $BIN/pd-ctl -i -u $URL --cacert $CERTS/ca.pem \
        --cert $CERTS/pd-control.pem --key $CERTS/pd-control-key.pem"
check_output "pd-ctl honours PD_ADDR, CA_PATH, CERT_PATH, KEY_PATH" '"health": true' \
    env PD_ADDR="$URL" CA_PATH="$CERTS/ca.pem" CERT_PATH="$CERTS/pd-control.pem" \
    KEY_PATH="$CERTS/pd-control-key.pem" "$BIN/pd-ctl" health
check_fails "pd-ctl with an https URL and no CA says what is missing" \
    '^pd-ctl: https URL needs --cacert \(and --cert/--key for a cluster with mutual TLS\)$' \
    env -u CA_PATH "$BIN/pd-ctl" -u "$URL" health
check_fails "a malformed registration body gets 400 naming the cause" \
    '^"request body is not valid JSON: unexpected token near end of file"$' \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"address":' "$URL/pd/api/v1/tikv/register"
check_fails "a registration without an address gets 400" \
    '^"\\"address\\" \(host:port\) is required"$' \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"version":"x"}' "$URL/pd/api/v1/tikv/register"
check_fails "an address without a port gets 400 naming the field" \
    "^\"\\\\\"address\\\\\" must be host:port \\(bad URL '127\\.0\\.0\\.1': missing port\\)\"\$" \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"address":"127.0.0.1"}' "$URL/pd/api/v1/tikv/register"
LONG=$(printf 'a%.0s' $(seq 300)):20160
check_fails "an address longer than 255 bytes gets 400" \
    'must be host:port of at most 255 bytes; got 306 bytes' \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d "{\"address\":\"$LONG\"}" "$URL/pd/api/v1/tikv/register"
check_fails "an unknown API path gets 404" '^"no such API: /pd/api/v1/nope"$' \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" "$URL/pd/api/v1/nope"
check_output "pd-ctl store 1" '"address": "127.0.0.1:20160"' pdctl "$URL" pd-control store 1
check_fails "pd-ctl store 99 is not found" '^\[404\] store 99 not found$' \
    pdctl "$URL" pd-control store 99
check_fails "a heartbeat with a capacity that is not a number gets 400 naming it" \
    '^"field \\"capacity\\" is \\"x\\", must be an integer from 0 to 9223372036854775807"$' \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"store_id":1,"capacity":"x"}' \
    "$URL/pd/api/v1/tikv/heartbeat"
check_fails "a heartbeat with a negative size gets 400 naming it" \
    '^"field \\"available\\" is -1, must be an integer from 0 to 9223372036854775807"$' \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"store_id":1,"available":-1}' \
    "$URL/pd/api/v1/tikv/heartbeat"
check_output "a good heartbeat is taken" '^  "ok": true$' \
    curl -sS --fail-with-body --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" -d '{"store_id":1,"capacity":100,"available":40}' \
    "$URL/pd/api/v1/tikv/heartbeat"
check_output "... and shows in the store" '^    "capacity": 100,$' pdctl "$URL" pd-control store 1

# Rejections: each would pass with pd-control's cert above.
check_fails "CN outside cert-allowed-cn is refused (pd-ctl)" \
    "the server refused our certificate: its Common Name is not in the server's allow-list \\(TLS alert access_denied\\)\$" \
    pdctl "$URL" client health
check_fails "CN outside cert-allowed-cn is refused (curl)" 'tlsv1 alert access denied' \
    curl -sS --fail --cacert "$CERTS/ca.pem" --cert "$CERTS/client.pem" \
    --key "$CERTS/client-key.pem" "$URL/pd/api/v1/health"
check_fails "no client certificate is refused (pd-ctl)" \
    'the server requires a client certificate and we presented none \(TLS alert handshake_failure\)$' \
    "$BIN/pd-ctl" -u "$URL" --cacert "$CERTS/ca.pem" health
check_fails "no client certificate is refused (curl)" 'sslv3 alert handshake failure' \
    curl -sS --fail --cacert "$CERTS/ca.pem" "$URL/pd/api/v1/health"
check_fails "no client certificate is refused (openssl s_client)" \
    'alert handshake failure.*SSL alert number 40' \
    sh -c "echo 'GET /pd/api/v1/health HTTP/1.0' | openssl s_client -connect 127.0.0.1:$CP \
        -CAfile $CERTS/ca.pem -quiet 2>&1; exit 1"
check_output "openssl s_client sees the access_denied alert for a CN outside the list" \
    'alert access denied' sh -c "echo | openssl s_client -connect 127.0.0.1:$CP \
        -CAfile $CERTS/ca.pem -cert $CERTS/client.pem -key $CERTS/client-key.pem 2>&1; true"
check_fails "client cert from another CA is refused" \
    'the server does not trust the CA that signed our certificate \(TLS alert unknown_ca\)$' \
    pdctl "$URL" other-client health
check_fails "expired client cert is refused" \
    'the peer says our certificate has expired or is not yet valid \(TLS alert certificate_expired\)$' \
    pdctl "$URL" expired-client health
check_fails "server cert from an untrusted CA is refused by pd-ctl" \
    "the server's certificate is not trusted: it is not signed by the CA in $CERTS/other-ca\\.pem\$" \
    "$BIN/pd-ctl" -u "$URL" --cacert "$CERTS/other-ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" health
check_fails "plain HTTP on the TLS port gets a 400 and no API data" \
    '^curl: \(22\) The requested URL returned error: 400$' \
    curl -sS --fail --max-time 5 "http://127.0.0.1:$CP/pd/api/v1/health"
NOBODY=$(free_port)
check_fails "pd-ctl names an unreachable server" \
    "cannot connect to 127\\.0\\.0\\.1:$NOBODY: Connection refused\$" \
    pdctl "https://127.0.0.1:$NOBODY" pd-control health
# Random bytes, and a client that connects and says nothing while others are served.
(exec 3<>"/dev/tcp/127.0.0.1/$CP" && head -c 8192 /dev/urandom >&3) 2>/dev/null
exec 4<>"/dev/tcp/127.0.0.1/$CP"
check_output "a silent connection does not hold up other clients" '"health": true' \
    pdctl "$URL" pd-control health
exec 4>&-
check_output "PD still serves after all the bad clients" '"health": true' \
    pdctl "$URL" pd-control health
check "pd-server process is still running" kill -0 "$PD_PID"
check_output "handshakes are logged as JSON lines: role, direction, peer, CN, result, reason" \
    '"event":"tls_handshake","role":"pd","direction":"in","peer":"127\.0\.0\.1:[0-9]+","peer_cn":"Control-Client","result":"fail","reason":"[^"]*Common Name' \
    cat "$WORK/pd1.log"
check_output "a good handshake's line names the version, suite and resumption" \
    '"peer_cn":"PD-Control","result":"ok","reason":"","version":"TLSv1\.2","cipher_suite":"TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256","resumed":false' \
    cat "$WORK/pd1.log"

# Rotation: a new cert+key on disk is served to the next connection, without a restart.
served_serial() {
    echo | openssl s_client -connect "127.0.0.1:$CP" -CAfile "$CERTS/ca.pem" \
        -cert "$CERTS/pd-control.pem" -key "$CERTS/pd-control-key.pem" 2>/dev/null |
        openssl x509 -noout -serial
}
S1=$(served_serial)
"$BIN/tisim-certs" cert --ca-cert "$CERTS/ca.pem" --ca-key "$CERTS/ca-key.pem" --cn PD-Server \
    --san 127.0.0.1 --san localhost --out-cert "$WORK/new.pem" --out-key "$WORK/new-key.pem" >/dev/null
cp "$WORK/new-key.pem" "$CERTS/pd-server-key.pem"
cp "$WORK/new.pem" "$CERTS/pd-server.pem"
S2=$(served_serial)
check "the rotated certificate is served without a restart" test -n "$S2" -a "$S1" != "$S2"
check_output "pd-ctl trusts the rotated certificate" '"health": true' pdctl "$URL" pd-control health
check "pd-server is the same process" kill -0 "$PD_PID"

# TSO survives a restart and never goes back.
T3=$(pdctl "$URL" pd-control tso)
stop_pid "$PD_PID"
start_pd pd1 "$CP" "$PP" "$WORK/pd.toml" || fail "pd-server restarts"
T4=$(pdctl "$URL" pd-control tso)
check "TSO after restart is above every earlier one" test "$T4" -gt "$T3"
check_output "the store survives a restart" '"address": "127.0.0.1:20160"' \
    pdctl "$URL" pd-control store 1

finish
