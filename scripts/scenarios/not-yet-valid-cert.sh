#!/usr/bin/env bash
# not-yet-valid-cert: a TiKV store whose certificate starts tomorrow (a clock ahead when issued).
. "$(dirname "$0")/_lib.sh"
title "tikv-server dials PD with a certificate whose notBefore is tomorrow" \
    "PD refuses it in the handshake and logs 'not yet valid'; the store never registers; with a valid cert it is Up"
certs
cp "$CERTS/tikv-server.pem" "$CERTS/tikv-valid.pem"
cp "$CERTS/tikv-server-key.pem" "$CERTS/tikv-valid-key.pem"
newcert tikv-server TiKV-Server --not-yet-valid --san 127.0.0.1 --san localhost

step "The store's certificate, issued on a host whose clock is a day ahead"
run openssl x509 -noout -subject -startdate -in "$CERTS/tikv-server.pem"
run date -u

step "Broken: PD, and a store with that certificate"
pd_up
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
tikv_up tikv "$W/tikv.toml"
check "the store's registration with PD fails (it retries every second)" \
    wait_log 15 tikv 'registration with PD .* failed'
expect_log "TiKV logs only the alert PD sent (certificate_unknown): the caller cannot tell why" tikv \
    'registration with PD .* failed: .*the peer rejected our certificate \(TLS alert certificate_unknown\)'
expect_log "PD's log has the reason" pd \
    '"peer_cn":"TiKV-Server","result":"fail","reason":"client certificate rejected: certificate is not yet valid"'
expect_served "PD has no store" '"count": 0' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" store

step "Good case: a certificate valid now, renamed over the files (no restart)"
swap "$CERTS/tikv-valid-key.pem" "$CERTS/tikv-server-key.pem"
swap "$CERTS/tikv-valid.pem" "$CERTS/tikv-server.pem"
store_up() {
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" store 1 |
        grep -q '"state_name": "Up"'
}
check "the store's next attempt registers, and it is Up" wait_until 15 store_up
expect_log "TiKV logs its registration" tikv 'registered with PD .* as store 1'
check "the same tikv-server process" kill -0 "${DPID[tikv]}"

explain "A certificate is valid from notBefore to notAfter by the checker's clock: one issued on a
host whose clock runs ahead is refused until then. The refusing side logs 'not yet valid'; the caller
only gets a generic alert (mbedTLS sends certificate_unknown), so read the server's log." \
    "sync clocks (NTP) on the issuing host and the cluster, reissue the certificate (openssl x509
-noout -startdate shows notBefore) and rename it over the old files: the next connection uses it."
verdict
