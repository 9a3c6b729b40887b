#!/usr/bin/env bash
# ca-rotation: PD's CA file replaced while it runs: not reloaded until a restart.
. "$(dirname "$0")/_lib.sh"
title "PD's CA file is replaced by a bundle of the old and a new CA while PD runs" \
    "a client with a certificate from the NEW CA is refused (unknown_ca) until PD restarts, then served"
certs
"$BIN/tisim-certs" ca --out-cert "$W/ca2.pem" --out-key "$W/ca2-key.pem" --cn "tisim CA 2" >/dev/null
"$BIN/tisim-certs" cert --ca-cert "$W/ca2.pem" --ca-key "$W/ca2-key.pem" --cn PD-Control \
    --out-cert "$CERTS/ctl-ca2.pem" --out-key "$CERTS/ctl-ca2-key.pem" >/dev/null
NEWCTL=(--cert "$CERTS/ctl-ca2.pem" --key "$CERTS/ctl-ca2-key.pem")
pd_up
cp "$CERTS/ca.pem" "$W/ca1.pem"
PDCTL=("$BIN/pd-ctl" -u "$PD_URL" --cacert "$W/ca1.pem")

step "Before: pd-ctl with a PD-Control certificate from the new CA"
run openssl x509 -noout -subject -issuer -in "$CERTS/ctl-ca2.pem"
expect_refused "PD does not know the new CA: unknown_ca" \
    'the server does not trust the CA that signed our certificate \(TLS alert unknown_ca\)$' \
    "${PDCTL[@]}" "${NEWCTL[@]}" health

step "Rotate: ca.pem becomes old CA + new CA (renamed over it), PD keeps running"
cat "$W/ca1.pem" "$W/ca2.pem" >"$W/bundle.pem"
swap "$W/bundle.pem" "$CERTS/ca.pem"
run grep -c 'BEGIN CERTIFICATE' "$CERTS/ca.pem"
expect_refused "still refused: the CA is read once, at start" \
    'the server does not trust the CA that signed our certificate \(TLS alert unknown_ca\)$' \
    "${PDCTL[@]}" "${NEWCTL[@]}" health
expect_log "PD logs the unknown CA" pd \
    '"peer_cn":"PD-Control","result":"fail","reason":"client certificate rejected: certificate is not signed by the trusted CA"'

step "Restart PD: it reads the bundle"
pd_restart
expect_served "the new CA's client is served" '"health": true' "${PDCTL[@]}" "${NEWCTL[@]}" health
expect_served "... and so is the old CA's (the bundle trusts both)" '"health": true' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" health

explain "The CA (trust store) is loaded once, when a daemon starts; the TLS guide: \"Currently, you
cannot reload the CA certificate.\" Only cert-path and key-path are reread for each new connection." \
    "rotate a CA in steps: ship a bundle of old + new CA to every component and restart each one;
then reissue leaf certificates from the new CA (no restart); last, drop the old CA and restart again."
verdict
