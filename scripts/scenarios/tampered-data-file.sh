#!/usr/bin/env bash
# tampered-data-file: a flipped byte in a stopped encrypted store's data file.
. "$(dirname "$0")/_lib.sh"
title "one byte of an encrypted store's kv.log (then of its raft/log) is flipped while it is stopped" \
    "the store refuses to start with a corruption error naming the file and offset, returns no data, changes nothing; restored, it serves"
certs
pd_up
tikv_config "$W/enc.toml" "$W/cipher-file-256"
tikv_up tikv "$W/enc.toml"
tikvctl tikv tikv-control

step "An encrypted store with five keys, stopped; a copy of its dir kept"
for i in 1 2 3 4 5; do "${TIKVCTL[@]}" raw-put "user:$i" "secret-value-$i" >/dev/null; done
expect_served "the keys are there" '^secret-value-1$' "${TIKVCTL[@]}" raw-get user:1
tikv_down tikv
cp -a "$W/tikv.data" "$W/backup.data"
run ls -l "$W/tikv.data/kv.log" "$W/tikv.data/raft/log"

# flip FILE OFFSET: xor one byte of FILE with 0x01, in place.
flip() {
    local b
    b=$(od -A n -t u1 -j "$2" -N 1 "$1" | tr -d ' ')
    printf '%b' "\\0$(printf '%03o' $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

step "Broken: byte 60 of kv.log flipped (inside the first record, not the last)"
flip "$W/tikv.data/kv.log" 60
BEFORE=$(dir_sum "$W/tikv.data")
tikv_cmd tikv "$W/enc.toml"
expect_refused "tikv-server refuses to start: corrupt, with file and offset" \
    "data file $W/tikv\\.data/kv\\.log is corrupt at offset [0-9]+: authentication failed" "${TIKV_CMD[@]}"
expect_output_lacks "... and no value is printed" "secret-value"
check "nothing in the dir was changed or cut" test "$(dir_sum "$W/tikv.data")" = "$BEFORE"

step "Broken: the good kv.log back, byte 120 of raft/log flipped (its second record)"
rm -rf "$W/tikv.data" && cp -a "$W/backup.data" "$W/tikv.data"
flip "$W/tikv.data/raft/log" 120
BEFORE=$(dir_sum "$W/tikv.data")
expect_refused "tikv-server refuses to start, naming raft/log and the offset" \
    "$W/tikv\\.data/raft/log: (record fails authentication|bad record header|corrupted entry record)[^:]* at offset [0-9]+" \
    "${TIKV_CMD[@]}"
expect_output_lacks "... and no value is printed" "secret-value"
check "nothing in the dir was changed or cut" test "$(dir_sum "$W/tikv.data")" = "$BEFORE"

step "Good case: the untouched copy restored"
rm -rf "$W/tikv.data" && cp -a "$W/backup.data" "$W/tikv.data"
tikv_up tikv "$W/enc.toml"
expect_served "the store starts and serves its keys" '^secret-value-5$' "${TIKVCTL[@]}" raw-get user:5

explain "Every record is sealed with AES-256-GCM, bound to its file and offset: a changed byte fails
authentication, and the store stops rather than return or skip data. (Only the LAST record of kv.log
is treated as a write cut by a crash: a bad tail is dropped with a WARN, not reported as corruption.)" \
    "find out what changed the file (disk, copy, a hand edit); restore the store's dir from a backup,
or remove the store and let Raft re-replicate its region from the other stores."
verdict
