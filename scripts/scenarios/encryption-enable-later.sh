#!/usr/bin/env bash
# encryption-enable-later: a cipher-file added to a store whose data dir was written in plaintext.
. "$(dirname "$0")/_lib.sh"
title "a store ran without [security] cipher-file; cipher-file is added and it is restarted" \
    "refused at start, naming the dir and the fix, with the data dir untouched; without the cipher-file it serves its data"
certs
pd_up
tikv_config "$W/plain.toml" ""
tikv_config "$W/enc.toml" "$W/cipher-file-256"
tikv_up tikv "$W/plain.toml"
tikvctl tikv tikv-control

step "A plaintext store with a key in it"
expect_served "raw-put" '^success!$' "${TIKVCTL[@]}" raw-put user:1 kept-in-plaintext
tikv_down tikv
run "$BIN/tikv-ctl" encryption-meta --data-dir "$W/tikv.data"
BEFORE=$(dir_sum "$W/tikv.data")

step "Broken: the same data dir started with cipher-file"
run grep cipher-file "$W/enc.toml"
tikv_cmd tikv "$W/enc.toml"
expect_refused "tikv-server refuses to start, naming the dir and the fix" \
    "encryption cannot be turned on for an existing plaintext data dir $W/tikv\\.data \\(it was written without a cipher-file\\): remove \\[security\\] cipher-file or use a new data dir" \
    "${TIKV_CMD[@]}"
check "the data dir is byte for byte as it was" test "$(dir_sum "$W/tikv.data")" = "$BEFORE"

step "Good case: the same dir without cipher-file"
tikv_up tikv "$W/plain.toml"
expect_served "the data is intact" '^kept-in-plaintext$' "${TIKVCTL[@]}" raw-get user:1

explain "A data dir records at creation whether it is encrypted (meta.json). The TLS guide's limitation:
storage encryption cannot be enabled for a cluster that ran without it; turned on over written data it
would leave plaintext records behind, so the store refuses before opening any data file." \
    "encryption is decided when a cluster is created: keep this one plaintext (remove cipher-file), or
build a new cluster with cipher-file on every store and import the data (bulk files made with its key)."
verdict
