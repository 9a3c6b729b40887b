#!/usr/bin/env bash
# status-port-cn: a caller outside TiKV's list on the status port: 403 except /metrics and /status.
. "$(dirname "$0")/_lib.sh"
title "curl with a certificate of the CA whose CN (Control-Client) is not in TiKV's list, on the status port" \
    "403 'certificate role error' for other paths, while /metrics and /status answer it (as real TiKV); a listed CN passes"
certs
pd_up '["TiKV-Server", "PD-Control"]'
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
tikv_up tikv "$W/tikv.toml"
S=https://127.0.0.1:${ST[tikv]}
C=(curl -sS --cacert "$CERTS/ca.pem")
OUT=(--cert "$CERTS/client.pem" --key "$CERTS/client-key.pem")
LISTED=(--cert "$CERTS/tikv-control.pem" --key "$CERTS/tikv-control-key.pem")

step "Broken: CN Control-Client (not in cert-allowed-cn) on $S"
expect_served "GET /config: HTTP 403" '^HTTP 403$' \
    "${C[@]}" -w '\nHTTP %{http_code}\n' "${OUT[@]}" "$S/config"
expect_output "... with the body 'certificate role error'" '^certificate role error$' 
expect_served "GET /metrics still answers (Prometheus scrapes with any cluster cert)" \
    'tikv_kv_requests_total' "${C[@]}" "${OUT[@]}" "$S/metrics"
expect_served "GET /status answers too" '"store_id": 1' "${C[@]}" "${OUT[@]}" "$S/status"
expect_log "TiKV let the handshake through (the CN is judged per path)" tikv \
    '"direction":"in",.*"peer_cn":"Control-Client","result":"ok"'

step "Good case: CN TiKV-Control (listed) on the same port"
expect_served "GET /config passes the role check (404: tisim's status port has no /config)" \
    '^HTTP 404$' "${C[@]}" -w '\nHTTP %{http_code}\n' "${LISTED[@]}" "$S/config"
expect_served "GET /metrics" 'tikv_kv_requests_total' "${C[@]}" "${LISTED[@]}" "$S/metrics"

explain "TiKV's status port admits any certificate of the CA in the handshake, then checks the
caller's role per path: /metrics and /status for anyone with a cluster certificate, everything else
only for CNs in cert-allowed-cn (real TiKV answers 403 'certificate role error')." \
    "to use the other endpoints, call with a listed CN (TiKV-Control) or add the caller's CN to
cert-allowed-cn; monitoring needs nothing, it only reads /metrics."
verdict
