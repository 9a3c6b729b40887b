#!/usr/bin/env bash
# san-mismatch: PD dialed on an address its certificate does not name.
. "$(dirname "$0")/_lib.sh"
title "PD listens on 127.0.0.2; its certificate's SANs are 127.0.0.1, ::1 and localhost" \
    "pd-ctl, curl and a TiKV store refuse PD's certificate for that host; with SAN 127.0.0.2 all three get in"
certs
newcert pd-san PD-Server --san 127.0.0.2

step "PD's certificate, and PD on https://127.0.0.2"
run openssl x509 -noout -ext subjectAltName -in "$CERTS/pd-server.pem"
PD_C=$(free_port); PD_P=$(free_port); PD_URL=https://127.0.0.2:$PD_C
pd_config "$W/pd.toml" '["TiKV-Server", "PD-Control"]'
run_bg pd "$BIN/pd-server" --name pd --data-dir "$W/pd.data" --client-urls "$PD_URL" \
    --peer-urls "https://127.0.0.2:$PD_P" --config "$W/pd.toml" --log-file "$W/pd.log"
check "PD listens on 127.0.0.2" wait_until 10 bash -c "exec 3<>/dev/tcp/127.0.0.2/$PD_C"
PDCTL=("$BIN/pd-ctl" -u "$PD_URL" --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem"
    --key "$CERTS/pd-control-key.pem")

step "Broken: clients dial 127.0.0.2"
expect_refused "pd-ctl refuses PD's certificate for that host" \
    "the server's certificate does not match host 127\\.0\\.0\\.2 \\(it has no subjectAltName for it\\)\$" \
    "${PDCTL[@]}" health
expect_refused "curl refuses it too" "no alternative certificate subject name matches target host name '127\\.0\\.0\\.2'" \
    curl -sS --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" \
    "$PD_URL/pd/api/v1/health"
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
KV[tikv]=$(free_port); ST[tikv]=$(free_port)
run_bg tikv "$BIN/tikv-server" --pd "127.0.0.2:$PD_C" --addr "127.0.0.1:${KV[tikv]}" \
    --status-addr "127.0.0.1:${ST[tikv]}" --data-dir "$W/tikv.data" --config "$W/tikv.toml" \
    --log-file "$W/tikv.log"
check "a store dialing PD at 127.0.0.2 fails to register" wait_log 15 tikv 'registration with PD .* failed'
expect_log "... and logs why" tikv "failed: .*does not match host 127\\.0\\.0\\.2"
expect_log "PD only sees the bad_certificate alert the clients send" pd \
    '"direction":"in",.*"result":"fail","reason":"the peer rejected our certificate \(TLS alert bad_certificate\)"'

step "Good case: a certificate with SAN 127.0.0.2, renamed over PD's files (no restart)"
swap "$CERTS/pd-san-key.pem" "$CERTS/pd-server-key.pem"
swap "$CERTS/pd-san.pem" "$CERTS/pd-server.pem"
expect_served "pd-ctl accepts PD" '"health": true' "${PDCTL[@]}" health
expect_served "curl accepts it" '"health": ?true' \
    curl -sS --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" \
    "$PD_URL/pd/api/v1/health"
check "the store registers on its next try" wait_log 15 tikv 'registered with PD .* as store 1'

explain "A client checks that the address it dialed (IP literal or DNS name) is one of the server
certificate's subjectAltNames; the CN is not used for this. A cert made for 127.0.0.1 does not cover
127.0.0.2, nor a hostname not listed." \
    "issue server certificates with every address clients dial (tisim-certs --san, or the SAN list
of your CA's request), or dial a name the certificate has."
verdict
