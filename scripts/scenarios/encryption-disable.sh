#!/usr/bin/env bash
# encryption-disable: cipher-file removed from an encrypted store's config.
. "$(dirname "$0")/_lib.sh"
title "an encrypted store is restarted without [security] cipher-file" \
    "refused at start, naming the dir and the fix, with the data dir untouched; with its cipher-file it serves its data"
certs
pd_up
tikv_config "$W/plain.toml" ""
tikv_config "$W/enc.toml" "$W/cipher-file-256"
tikv_up tikv "$W/enc.toml"
tikvctl tikv tikv-control

step "An encrypted store with a key in it"
expect_served "raw-put" '^success!$' "${TIKVCTL[@]}" raw-put user:1 secret-value-42
tikv_down tikv
run "$BIN/tikv-ctl" encryption-meta --data-dir "$W/tikv.data"
check "the value is nowhere in the data dir's bytes" bash -c "! grep -rq secret-value-42 '$W/tikv.data'"
BEFORE=$(dir_sum "$W/tikv.data")

step "Broken: the same data dir started without cipher-file"
tikv_cmd tikv "$W/plain.toml"
expect_refused "tikv-server refuses to start, naming the dir and the fix" \
    "encryption cannot be turned off for the encrypted data dir $W/tikv\\.data: set \\[security\\] cipher-file to the file it was written with" \
    "${TIKV_CMD[@]}"
check "the data dir is byte for byte as it was" test "$(dir_sum "$W/tikv.data")" = "$BEFORE"

step "Good case: the same dir with its cipher-file"
tikv_up tikv "$W/enc.toml"
expect_served "the data is intact" '^secret-value-42$' "${TIKVCTL[@]}" raw-get user:1

explain "The TLS guide's limitation: once storage encryption is enabled it cannot be disabled. An
encrypted dir is only readable with its key: without cipher-file the store could read nothing, so it
refuses at start instead of serving an empty or broken store." \
    "keep cipher-file pointing at the file the dir was written with; going back to plaintext means a
new plaintext cluster (all TiKV instances or none: encryption-mixed-stores) and moving the data to it."
verdict
