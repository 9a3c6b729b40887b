#!/usr/bin/env bash
# encryption-mixed-stores: a plaintext store joining a cluster whose stores are encrypted.
. "$(dirname "$0")/_lib.sh"
title "store 1 runs with cipher-file; store 2 is started without one" \
    "PD refuses store 2 (HTTP 409, all TiKV instances or none) and it exits; store 1's data is intact; an encrypted store 2 joins"
certs
pd_up
multi_tikv_config "$W/enc.toml" "$W/cipher-file-256"
multi_tikv_config "$W/plain.toml" ""
tikv_up tikv1 "$W/enc.toml"
tikvctl tikv1 tikv-control

step "An encrypted cluster of one store, with a key in it"
expect_served "raw-put on store 1" '^success!$' "${TIKVCTL[@]}" raw-put user:1 secret-value-42
PDC=("${PDCTL[@]}" --cert "$CERTS/pd-control.pem" --key "$CERTS/pd-control-key.pem")
expect_served "PD shows store 1 encrypted" '"encrypted": true' "${PDC[@]}" store 1

step "Broken: store 2 with no cipher-file"
tikv_cmd tikv2 "$W/plain.toml"
expect_refused "PD refuses it with 409, and tikv-server exits saying so" \
    "refused this store \\(HTTP 409\\): store 127\\.0\\.0\\.1:${KV[tikv2]} has storage encryption off but the cluster's stores have it on: enable or disable cipher-file for all TiKV instances" \
    "${TIKV_CMD[@]}"
expect_served "PD still has one store" '"count": 1' "${PDC[@]}" store
expect_served "store 1's data is intact" '^secret-value-42$' "${TIKVCTL[@]}" raw-get user:1
run find "$W/tikv2.data" -type f
note "(the refused store had created its dir, empty but marked plaintext: it cannot be encrypted now)"

step "Good case: store 2 with the cluster's cipher-file, on a new data dir"
rm -rf "$W/tikv2.data"
tikv_up tikv2 "$W/enc.toml"
two_up() { [ "$("${PDC[@]}" store | grep -c '"state_name": "Up"')" -eq 2 ]; }
check "PD shows both stores Up" wait_until 15 two_up
expect_served "... both encrypted" '' "${PDC[@]}" store
check "... (two \"encrypted\": true)" test "$(grep -c '"encrypted": true' "$W/last.out")" -eq 2
replicated() { [ "$(status_num "${ST[tikv2]}" key_count)" = 1 ]; }
check "store 2 receives store 1's key by Raft" wait_until 20 replicated

explain "The TLS guide's limitation: storage encryption is on for all TiKV instances or for none, as
data move between stores. PD records the first store's state and answers a store that differs with
409; the store treats that as final and exits instead of joining with plaintext replicas." \
    "give every store the same [security] cipher-file (the same key file) before it first starts;
a dir already started the other way must be removed (it is empty when PD refused it)."
verdict
