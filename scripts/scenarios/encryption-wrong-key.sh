#!/usr/bin/env bash
# encryption-wrong-key: an encrypted store restarted with another cipher-file.
. "$(dirname "$0")/_lib.sh"
title "an encrypted store is restarted with a different cipher-file (another key)" \
    "refused at start by the key check in meta.json, nothing cut or rewritten; with its own key it serves its data"
certs
pd_up
tikv_config "$W/enc.toml" "$W/cipher-file-256"
tikv_config "$W/wrong.toml" "$W/other-cipher-file"
tikv_up tikv "$W/enc.toml"
tikvctl tikv tikv-control

step "An encrypted store with a key in it"
expect_served "raw-put" '^success!$' "${TIKVCTL[@]}" raw-put user:1 secret-value-42
tikv_down tikv
run "$BIN/tikv-ctl" encryption-meta --data-dir "$W/tikv.data"
BEFORE=$(dir_sum "$W/tikv.data")

step "Broken: started with other-cipher-file"
run grep cipher-file "$W/wrong.toml"
tikv_cmd tikv "$W/wrong.toml"
expect_refused "tikv-server refuses: the key check does not match" \
    "the cipher-file does not match the key this data dir was encrypted with \\(key check mismatch\\): $W/tikv\\.data" \
    "${TIKV_CMD[@]}"
expect_output_lacks "... and prints neither key's digits" "$(head -c 16 "$W/other-cipher-file")"
expect_output_lacks "... (nor the right one's)" "$(head -c 16 "$W/cipher-file-256")"
check "the data dir is byte for byte as it was (no record taken for a torn tail)" \
    test "$(dir_sum "$W/tikv.data")" = "$BEFORE"

step "Good case: the same dir with its own cipher-file"
tikv_up tikv "$W/enc.toml"
expect_served "the data is intact" '^secret-value-42$' "${TIKVCTL[@]}" raw-get user:1

explain "The key is derived from the cipher-file; meta.json keeps a key check value (not the key).
Another file gives another check value, so the store stops before opening any data file: with the
wrong key every record would fail to decrypt and could be mistaken for damage." \
    "point cipher-file at the file the dir was written with (tikv-ctl encryption-meta shows the
key-check to compare); keep cipher files backed up: without the key the data is gone."
verdict
