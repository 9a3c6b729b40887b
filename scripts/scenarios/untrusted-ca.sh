#!/usr/bin/env bash
# untrusted-ca: a TiKV store whose certificate was signed by another CA.
. "$(dirname "$0")/_lib.sh"
title "tikv-server presents a TiKV-Server certificate signed by another CA than the cluster's" \
    "PD refuses it in the handshake (unknown_ca), the store never registers; with the cluster CA's cert it is Up"
certs
"$BIN/tisim-certs" cert --ca-cert "$CERTS/other-ca.pem" --ca-key "$CERTS/other-ca-key.pem" \
    --cn TiKV-Server --san 127.0.0.1 --san localhost \
    --out-cert "$CERTS/tikv-other.pem" --out-key "$CERTS/tikv-other-key.pem" >/dev/null

step "The store's certificate: the right CN, another issuer"
run openssl x509 -noout -subject -issuer -in "$CERTS/tikv-other.pem"
run openssl verify -CAfile "$CERTS/ca.pem" "$CERTS/tikv-other.pem"

step "Broken: PD, and a store configured with that certificate"
pd_up
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
use_cert "$W/tikv.toml" tikv-other
tikv_up tikv "$W/tikv.toml"
check "the store's registration with PD fails (it retries every second)" \
    wait_log 15 tikv 'registration with PD .* failed'
expect_log "TiKV logs that PD does not trust its CA" tikv \
    'registration with PD .* failed: .*the server does not trust the CA that signed our certificate \(TLS alert unknown_ca\)'
expect_log "PD logs the certificate it refused" pd \
    '"peer_cn":"TiKV-Server","result":"fail","reason":"client certificate rejected: certificate is not signed by the trusted CA"'
expect_served "PD has no store" '"count": 0' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" store

step "Good case: the same store restarted with the cluster CA's certificate"
tikv_down tikv
use_cert "$W/tikv.toml" tikv-server
tikv_up tikv "$W/tikv.toml"
store_up() {
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" store 1 |
        grep -q '"state_name": "Up"'
}
check "the store registers and is Up" wait_until 15 store_up
expect_log "TiKV logs its registration" tikv 'registered with PD .* as store 1'

explain "Every component trusts only the CA in its own ca-path; a certificate issued by any other CA
is refused in the handshake whatever its CN (the CN check never runs)." \
    "issue every component's certificate from the cluster CA (openssl verify -CAfile ca.pem cert.pem
must say OK), or, to move to a new CA, follow ca-rotation (bundle both, restart, reissue)."
verdict
