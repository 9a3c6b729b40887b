#!/usr/bin/env bash
# http-to-https: TiKV and TiDB configured with an http:// PD URL against a TLS cluster.
. "$(dirname "$0")/_lib.sh"
title "tikv-server --pd http://... and tidb-server --path http://... while their [security] turns TLS on" \
    "both refuse to start, naming the flag and the fix, with nothing created; with https:// (or host:port) they join"
certs
mysql_certs
pd_up '["TiKV-Server", "TiDB-Server", "PD-Control"]'
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
tidb_config "$W/tidb.toml" mutual
KV[tikv]=$(free_port); ST[tikv]=$(free_port); MY[tidb]=$(free_port); TS[tidb]=$(free_port)

step "Broken: the components are given PD as http://127.0.0.1:$PD_C"
expect_refused "tikv-server refuses the http:// PD URL at start" \
    "^tikv-server: --pd http://127\\.0\\.0\\.1:$PD_C: TLS is on \\(\\[security\\] ca-path is set\\), use https:// or host:port\$" \
    "$BIN/tikv-server" --pd "http://127.0.0.1:$PD_C" --addr "127.0.0.1:${KV[tikv]}" \
    --status-addr "127.0.0.1:${ST[tikv]}" --data-dir "$W/tikv.data" --config "$W/tikv.toml"
check "... and created no data dir" test ! -e "$W/tikv.data"
expect_refused "tidb-server refuses it too" \
    "^tidb-server: --path http://127\\.0\\.0\\.1:$PD_C: cluster TLS is on \\(\\[security\\] cluster-ssl-ca is set\\), use https:// or host:port\$" \
    "$BIN/tidb-server" --store tikv --path "http://127.0.0.1:$PD_C" -P "${MY[tidb]}" \
    --status "${TS[tidb]}" --config "$W/tidb.toml"
expect_refused "PD itself answers a plain http:// request with 400" 'error: 400' \
    curl -sS --fail "http://127.0.0.1:$PD_C/pd/api/v1/health"

step "Good case: https:// for TiKV, host:port for TiDB (https when TLS is on)"
run_bg tikv "$BIN/tikv-server" --pd "https://127.0.0.1:$PD_C" --addr "127.0.0.1:${KV[tikv]}" \
    --status-addr "127.0.0.1:${ST[tikv]}" --data-dir "$W/tikv.data" --config "$W/tikv.toml" \
    --log-file "$W/tikv.log"
check "the store registers with PD" wait_log 15 tikv 'registered with PD https://127\.0\.0\.1:[0-9]+ as store 1'
tidb_up tidb "$W/tidb.toml"
expect_served "TiDB reaches the cluster: a mutual-TLS login and a query" '^1$' \
    mariadb -h 127.0.0.1 -P "${MY[tidb]}" -u root --ssl-ca="$MYCERTS/ca.pem" \
    --ssl-cert="$MYCERTS/client.pem" --ssl-key="$MYCERTS/client-key.pem" -N -e "SELECT 1"

explain "With [security] set, every link to PD is TLS; an http:// URL would mean plaintext, so it is
refused at start instead of failing each request later (real components dial it and get PD's 400)." \
    "write PD's endpoints as https://host:port (or host:port, which means https when TLS is on), in
--pd / --path and in every pd-address of the topology."
verdict
