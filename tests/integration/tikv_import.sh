#!/usr/bin/env bash
# Bulk import (TiDB Lightning's note in TiDB's TLS guide: an encrypted cluster needs encrypted
# bulk files): PD + one encrypted TiKV over mutual TLS. tikv-ctl bulk-write with the cluster's
# cipher-file, import, and every key readable; a plaintext file, a file encrypted with another
# key and a garbage file refused with their reasons and none of their keys readable; a CN
# outside cert-allowed-cn refused before the import; the store still serves afterwards.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
make_tikv_certs || { fail "make TiKV certificates and cipher files"; finish; }

# none_readable PREFIX COUNT: passes when no key PREFIX1..PREFIXCOUNT is in the store.
none_readable() {
    local what=$1 prefix=$2 n=$3 i found=0
    for i in $(seq 1 "$n"); do
        ctl "$KV" tikv-control raw-get "$prefix$i" >/dev/null 2>&1 && found=$((found + 1))
    done
    if [ "$found" -eq 0 ]; then pass "$what"; else fail "$what ($found keys found)"; fi
}

PD_C=$(free_port); PD_P=$(free_port); KV=$(free_port); ST=$(free_port)
pd_config "$WORK/pd.toml" '["TiKV-Server", "PD-Control"]'
start_pd pd "$PD_C" "$PD_P" "$WORK/pd.toml" || fail "pd-server starts"
tikv_config "$WORK/tikv.toml" "$WORK/cipher-file-256"
start_tikv tikv "$PD_C" "$KV" "$ST" "$WORK/tikv.toml" || fail "tikv-server starts"

# --- bulk-write with the cluster's key, import, read back
for i in $(seq 1 200); do printf 'bulk:%03d\tvalue %d\twith a tab\n' "$i" "$i"; done >"$WORK/kv.txt"
check_output "bulk-write with the cluster's cipher-file" \
    '^wrote 200 keys to .*good.bulk \(encrypted with the cipher-file.s key\)$' \
    "$BIN/tikv-ctl" bulk-write --input "$WORK/kv.txt" --output "$WORK/good.bulk" \
    --cipher-file "$WORK/cipher-file-256"
if grep -q 'bulk:100' "$WORK/good.bulk"; then
    fail "the encrypted bulk file does not hold the keys in clear"
else
    pass "the encrypted bulk file does not hold the keys in clear"
fi
check_output "import: the store ingests it" '^ingested 200 keys$' \
    ctl "$KV" tikv-control import --file "$WORK/good.bulk"
check_output "raw-get finds an imported key, value as written (tabs kept)" \
    "$(printf '^value 100\twith a tab$')" ctl "$KV" tikv-control raw-get bulk:100
check_output "... in key order, from the first" "$(printf '^bulk:001\tvalue 1\twith a tab$')" \
    ctl "$KV" tikv-control raw-scan --from bulk: --to bulk:~ --limit 1
check_output "... all 200 of them" '"key_count": 200' ctl "$KV" tikv-control status

# --- a plaintext bulk file: refused, none of its keys readable
for i in $(seq 1 20); do printf 'plain:%d\tp%d\n' "$i" "$i"; done >"$WORK/plain.txt"
check_output "bulk-write without --cipher-file writes plaintext" '\(plaintext\)$' \
    "$BIN/tikv-ctl" bulk-write --input "$WORK/plain.txt" --output "$WORK/plain.bulk"
check_fails "a plaintext bulk file is refused by the encrypted cluster, saying why" \
    "^tikv-ctl: BAD_REQUEST: the cluster stores data encrypted: the bulk file must be encrypted with the cluster's cipher-file \(tikv-ctl bulk-write --cipher-file\)$" \
    ctl "$KV" tikv-control import --file "$WORK/plain.bulk"
none_readable "no key of the plaintext file is readable" plain: 20

# --- a file encrypted with another key: refused, none of its keys readable
for i in $(seq 1 20); do printf 'other:%d\to%d\n' "$i" "$i"; done >"$WORK/other.txt"
"$BIN/tikv-ctl" bulk-write --input "$WORK/other.txt" --output "$WORK/other.bulk" \
    --cipher-file "$WORK/other-cipher-file" >/dev/null
check_fails "a bulk file encrypted with another key is refused" \
    'BAD_REQUEST: the bulk file was encrypted with a different key than the cluster.s cipher-file' \
    ctl "$KV" tikv-control import --file "$WORK/other.bulk"
none_readable "no key of the wrong-key file is readable" other: 20

# --- garbage, and a truncated good file
check_fails "a garbage file is refused" \
    'BAD_REQUEST: the bulk file is corrupt at offset 0: not a tisim data file \(bad magic\)' \
    ctl "$KV" tikv-control import --file "$WORK/plain.txt"
for i in $(seq 1 300); do printf 'cut:%d\t%01000d\n' "$i" "$i"; done >"$WORK/cut.txt"
"$BIN/tikv-ctl" bulk-write --input "$WORK/cut.txt" --output "$WORK/cut.bulk" \
    --cipher-file "$WORK/cipher-file-256" >/dev/null
head -c $(($(stat -c %s "$WORK/cut.bulk") - 50)) "$WORK/cut.bulk" >"$WORK/truncated.bulk"
check_fails "a truncated bulk file is refused" 'BAD_REQUEST: the bulk file is corrupt at offset [0-9]+' \
    ctl "$KV" tikv-control import --file "$WORK/truncated.bulk"
none_readable "no key of the truncated file is readable (not even its first records)" cut: 5

# --- the KV service's CN check applies to import too
check_fails "a CN outside cert-allowed-cn cannot import" \
    '^tikv-ctl: UNAUTHENTICATED: Common name check fail, reason: x509_common_name from peer is Control-Client' \
    ctl "$KV" client import --file "$WORK/good.bulk"

# --- a file too big for one request is refused by tikv-ctl
head -c 8388595 /dev/zero >"$WORK/huge.bulk"
check_fails "a file over one request's limit is refused, naming its size and the limit" \
    'the file is 8388595 bytes, over the 8388594-byte limit of one ingest request' \
    ctl "$KV" tikv-control import --file "$WORK/huge.bulk"

# --- the store still serves, and the refusals were logged
check_output "the store still serves after the refusals" "$(printf '^value 7\twith a tab$')" \
    ctl "$KV" tikv-control raw-get bulk:007
check_output "raw-put still works" '^success!$' ctl "$KV" tikv-control raw-put after:1 ok
check_output "the store logs each refused import with its reason" \
    'refused a bulk import from .*different key' cat "$WORK/tikv.log"
stop_pid "$LAST_PID"
start_tikv tikv "$PD_C" "$KV" "$ST" "$WORK/tikv.toml" || fail "tikv-server restarts"
check_output "the imported keys survive a restart" "$(printf '^value 200\twith a tab$')" \
    ctl "$KV" tikv-control raw-get bulk:200

finish
