#!/usr/bin/env bash
# ctl-client-cn-not-listed: the ctl tools' shared client cert, listed by PD and TiDB but forgotten by TiKV.
. "$(dirname "$0")/_lib.sh"
title "one client certificate (CN Control-Client) for pd-ctl, tidb-ctl and tikv-ctl; TiKV's list forgot it" \
    "pd-ctl and tidb-ctl are served, tikv-ctl gets UNAUTHENTICATED; with Control-Client in TiKV's list all three are"
certs
pd_up '["TiKV-Server", "TiDB-Server", "PD-Control", "Control-Client"]'
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
tikv_up tikv "$W/tikv.toml"
tidb_config "$W/tidb.toml"
echo 'cluster-verify-cn = ["TiDB-Server", "Control-Client"]' >>"$W/tidb.toml"
tidb_up tidb "$W/tidb.toml"
tikvctl tikv client
CLIENT=(--cert "$CERTS/client.pem" --key "$CERTS/client-key.pem")

step "The three lists"
run grep -H -E '^(cert-allowed-cn|cluster-verify-cn)' "$W/pd.toml" "$W/tidb.toml" "$W/tikv.toml"

step "Broken: the shared certificate against each daemon"
expect_served "pd-ctl store: PD lists Control-Client" '"state_name": "Up"' \
    "${PDCTL[@]}" "${CLIENT[@]}" store
expect_served "tidb-ctl: TiDB's cluster-verify-cn lists it" '"connections"' \
    "$BIN/tidb-ctl" -u "https://127.0.0.1:${TS[tidb]}" --ca "$CERTS/ca.pem" \
    --ssl-cert "$CERTS/client.pem" --ssl-key "$CERTS/client-key.pem"
expect_refused "tikv-ctl status: TiKV refuses the same certificate" \
    '^tikv-ctl: UNAUTHENTICATED: Common name check fail, reason: x509_common_name from peer is Control-Client, cert_allowed_cn: \{"TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1"\}$' \
    "${TIKVCTL[@]}" status
expect_log "TiKV logs the refused request and the CN" tikv \
    'refused [a-z_]+ from 127\.0\.0\.1:[0-9]+: Common name check fail, reason: x509_common_name from peer is Control-Client'

step "Good case: Control-Client added to TiKV's list, TiKV restarted"
tikv_down tikv
sed -i 's/^cert-allowed-cn = \[/cert-allowed-cn = ["Control-Client", /' "$W/tikv.toml"
run grep cert-allowed-cn "$W/tikv.toml"
tikv_up tikv "$W/tikv.toml"
expect_served "tikv-ctl status with the shared certificate" '"encrypted": true' "${TIKVCTL[@]}" status
expect_served "pd-ctl still served" '"state_name": "Up"' "${PDCTL[@]}" "${CLIENT[@]}" store

explain "Each daemon checks its own list. A deployment tool that probes every component with one
client certificate sees the one whose list forgot that CN as down (real clusters showed TiKV Down when
TiUP's client CN was not allowed), although the daemon itself is healthy." \
    "put the ctl/deployment client's CN in every list: PD's and TiKV's cert-allowed-cn and TiDB's
cluster-verify-cn (or give each tool a certificate whose CN each list has), and restart."
verdict
