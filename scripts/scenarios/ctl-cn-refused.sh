#!/usr/bin/env bash
# ctl-cn-refused: pd-ctl with a certificate whose CN is not in PD's cert-allowed-cn.
. "$(dirname "$0")/_lib.sh"
title "pd-ctl presents a certificate of the cluster's CA whose CN is not in PD's list" \
    "PD refuses it in the TLS handshake (access_denied); a PD-Control certificate is served"
certs

step "PD with the guide's list"
pd_up '["TiKV-Server", "TiDB-Server", "PD-Control"]'
run grep cert-allowed-cn "$W/pd.toml"

step "Broken: pd-ctl with the shared client certificate"
run openssl x509 -noout -subject -in "$CERTS/client.pem"
expect_refused "pd-ctl (CN Control-Client) is refused in the handshake, and says why" \
    "the server refused our certificate: its Common Name is not in the server's allow-list \\(TLS alert access_denied\\)" \
    "${PDCTL[@]}" --cert "$CERTS/client.pem" --key "$CERTS/client-key.pem" health
expect_log "PD logs the refused handshake, naming the CN" pd \
    '"peer_cn":"Control-Client","result":"fail","reason":"client certificate rejected: its Common Name \\"Control-Client\\" is not in the allow-list"'

step "Good case: the same PD, a certificate with CN PD-Control"
expect_served "pd-ctl (CN PD-Control) is served" '"health": true' \
    "${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem" health
expect_log "PD logs the handshake as ok" pd '"peer_cn":"PD-Control","result":"ok"'

explain "PD checks cert-allowed-cn in the TLS handshake: a certificate signed by the right CA is
not enough, its subject CN must be listed exactly (case and spaces count)." \
    "issue the ctl tool a certificate with a listed CN, or add its CN to PD's cert-allowed-cn
(\`openssl x509 -noout -subject -in cert.pem\` shows it) and restart PD."
verdict
