#!/usr/bin/env bash
# tidb-server on PD + three encrypted TiKV stores: kill -9 of the region's leader while a
# client inserts rows one statement at a time. TiDB's KV bridge finds the new leader (PD's
# region, the other peers, NOT_LEADER), statements caught in the election wait rather than
# fail, and every row the client saw acknowledged is read back afterwards.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
make_tikv_certs || { fail "make TiKV certificates and cipher files"; finish; }
make_mysql_certs || { fail "make the MySQL-client certificates"; finish; }

PD_C=$(free_port); PD_P=$(free_port); MY=$(free_port); TS=$(free_port)
pd_config "$WORK/pd.toml" '["TiKV-Server", "TiDB-Server", "PD-Control"]'
start_pd pd "$PD_C" "$PD_P" "$WORK/pd.toml" || fail "pd-server starts"
multi_tikv_config "$WORK/tikv.toml" "$WORK/cipher-file-256"
declare -a KV ST PID
for i in 1 2 3; do
    KV[$i]=$(free_port); ST[$i]=$(free_port)
    start_tikv "tikv$i" "$PD_C" "${KV[$i]}" "${ST[$i]}" "$WORK/tikv.toml" || fail "tikv-server $i starts"
    PID[$i]=$LAST_PID
done
tidb_config "$WORK/tidb.toml" oneway
start_tidb tidb "$PD_C" "$MY" "$TS" "$WORK/tidb.toml" || fail "tidb-server starts"
TLS=(--ssl --ssl-ca="$MYCERTS/ca.pem" --ssl-verify-server-cert)

leader() {
    local i
    for i in 1 2 3; do
        tikv_status "${ST[$i]}" | grep -q '"role": "leader"' && { echo "$i"; return 0; }
    done
    return 1
}
all_voters() {
    local l
    l=$(leader) || return 1
    [ "$(tikv_status "${ST[$l]}" | grep -c '"member": "voter"')" -eq 2 ]
}
check "the three stores form one Raft group" wait_until 30 all_voters
check "a table through TiDB" my "$MY" root "${TLS[@]}" -e \
    "CREATE DATABASE app; CREATE TABLE app.t (id BIGINT PRIMARY KEY, v VARCHAR(20))"
L=$(leader)

: >"$WORK/acked"
(for n in $(seq 1 300); do
    my "$MY" root "${TLS[@]}" -e "INSERT INTO app.t VALUES ($n, 'v$n')" >/dev/null 2>&1 &&
        echo "$n" >>"$WORK/acked"
done) &
WRITER=$!
sleep 2
kill -9 "${PID[$L]}"
wait "${PID[$L]}" 2>/dev/null
before=$(wc -l <"$WORK/acked")
wait "$WRITER"
after=$(wc -l <"$WORK/acked")
if [ "$after" -gt "$before" ]; then
    pass "inserts go on after the leader's kill -9 ($before acknowledged before, $after in all)"
else
    fail "inserts go on after the leader's kill -9 ($before before, $after in all)"
fi
my "$MY" root "${TLS[@]}" -N -e "SELECT id FROM app.t" | sort -n >"$WORK/have"
missing=$(sort -n "$WORK/acked" | comm -23 - "$WORK/have" | wc -l)
if [ "$after" -gt 0 ] && [ "$missing" -eq 0 ]; then
    pass "every acknowledged row is there: $after of $after"
else
    fail "$missing of $after acknowledged rows are missing"
fi
check_output "COUNT(*) agrees with the rows read" "^$(wc -l <"$WORK/have")$" \
    my "$MY" root "${TLS[@]}" -N -e "SELECT COUNT(*) FROM app.t"

finish
