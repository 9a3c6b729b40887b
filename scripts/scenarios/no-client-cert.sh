#!/usr/bin/env bash
# no-client-cert: a client with no certificate at all against PD's mutual-TLS port.
. "$(dirname "$0")/_lib.sh"
title "pd-ctl and curl trust PD's CA but present no client certificate" \
    "PD ends the handshake (handshake_failure); both clients say a certificate is required; with one they are served"
certs

step "PD with mutual TLS (every port demands a client certificate)"
pd_up

step "Broken: --cacert only, no --cert/--key"
expect_refused "pd-ctl without a certificate is refused, and says why" \
    'the server requires a client certificate and we presented none \(TLS alert handshake_failure\)$' \
    "${PDCTL[@]}" health
expect_refused "curl without a certificate is refused in the handshake" 'alert handshake failure' \
    curl -sS --cacert "$CERTS/ca.pem" "$PD_URL/pd/api/v1/health"
expect_log "PD logs a failed handshake with no peer CN" pd \
    '"peer_cn":"","result":"fail","reason":"[^"]*(certificate|no client)[^"]*"'

step "Good case: the same commands with a listed client certificate"
expect_served "pd-ctl with --cert/--key (CN PD-Control) is served" '"health": true' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" health
expect_served "curl with --cert/--key is served" '"health": ?true' \
    curl -sS --cacert "$CERTS/ca.pem" --cert "$CERTS/pd-control.pem" \
    --key "$CERTS/pd-control-key.pem" "$PD_URL/pd/api/v1/health"

explain "With a CA configured, every tisim port is mutual TLS (as TiDB's guide sets it up): the
server asks for a certificate in the handshake and aborts it when none comes, before any request." \
    "give the client its certificate and key (pd-ctl --cert/--key, tikv-ctl --cert-path/--key-path,
curl --cert/--key, mariadb --ssl-cert/--ssl-key where REQUIRE X509 asks for one)."
verdict
