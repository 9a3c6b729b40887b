#!/usr/bin/env bash
# Debian's sysbench 1.0.20, unmodified, against tidb-server over mutual TLS (--mysql-ssl=on:
# client-cert.pem, client-key.pem and cacert.pem from its working directory) and the text
# protocol (--db-ps-mode=disable): prepare, a short run and cleanup of oltp_point_select and
# oltp_insert, on PD + one encrypted TiKV. Every phase must end with no error, the prepared
# table must hold every row, and the rows must read back through the mariadb client.
. "$(dirname "$0")/lib.sh"

make_pki || { fail "make certificates"; finish; }
make_tikv_certs || { fail "make TiKV certificates and cipher files"; finish; }
make_mysql_certs || { fail "make the MySQL-client certificates"; finish; }

PD_C=$(free_port); PD_P=$(free_port); KV=$(free_port); ST=$(free_port)
MY=$(free_port); TS=$(free_port)
pd_config "$WORK/pd.toml" '["TiKV-Server", "TiDB-Server", "PD-Control"]'
start_pd pd "$PD_C" "$PD_P" "$WORK/pd.toml" || fail "pd-server starts"
tikv_config "$WORK/tikv.toml" "$WORK/cipher-file-256"
start_tikv tikv "$PD_C" "$KV" "$ST" "$WORK/tikv.toml" || fail "tikv-server starts"
tidb_config "$WORK/tidb.toml" mutual true
start_tidb tidb "$PD_C" "$MY" "$TS" "$WORK/tidb.toml" || fail "tidb-server starts"
MUTUAL=(--ssl-ca="$MYCERTS/ca.pem" --ssl-cert="$MYCERTS/client.pem" --ssl-key="$MYCERTS/client-key.pem")
my "$MY" root "${MUTUAL[@]}" -e "CREATE USER 'sbtest'@'%' IDENTIFIED BY 'sb-pass' REQUIRE X509; CREATE DATABASE sbtest" ||
    fail "create the sysbench account (REQUIRE X509) and database"

mkdir -p "$WORK/sb"
cp "$MYCERTS/ca.pem" "$WORK/sb/cacert.pem"
cp "$MYCERTS/client.pem" "$WORK/sb/client-cert.pem"
cp "$MYCERTS/client-key.pem" "$WORK/sb/client-key.pem"
ROWS=500
sb() { # sb TEST PHASE: sysbench in its working directory, output in $WORK/sb-TEST-PHASE.out
    (cd "$WORK/sb" && sysbench --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$MY" \
        --mysql-user=sbtest --mysql-password=sb-pass --mysql-db=sbtest --mysql-ssl=on \
        --db-ps-mode=disable --tables=1 --table-size=$ROWS --threads=4 --time=2 "$1" "$2") \
        >"$WORK/sb-$1-$2.out" 2>&1
}

for t in oltp_point_select oltp_insert; do
    if sb "$t" prepare; then pass "$t prepare"; else fail "$t prepare"; tail -5 "$WORK/sb-$t-prepare.out"; fi
    check_output "... wrote all $ROWS rows" "^$ROWS$" \
        my "$MY" root "${MUTUAL[@]}" -N sbtest -e "SELECT COUNT(*) FROM sbtest1"
    check_output "... and made its secondary index k_1 on k" 'KEY `k_1` \(`k`\)' \
        my "$MY" root "${MUTUAL[@]}" -N sbtest -e "SHOW CREATE TABLE sbtest1"
    check_output "... rows read back by primary key" '^[0-9-]+$' \
        my "$MY" root "${MUTUAL[@]}" -N sbtest -e "SELECT c FROM sbtest1 WHERE id=$((ROWS / 2))"
    if sb "$t" run && grep -Eq 'transactions: +[1-9][0-9]* ' "$WORK/sb-$t-run.out" &&
        grep -Eq 'ignored errors: +0 ' "$WORK/sb-$t-run.out"; then
        pass "$t run: $(grep -E 'transactions:' "$WORK/sb-$t-run.out" | sed 's/ \+/ /g'), no errors"
    else
        fail "$t run"
        grep -E 'transactions|errors|FATAL' "$WORK/sb-$t-run.out" | head -5
    fi
    if sb "$t" cleanup; then pass "$t cleanup"; else fail "$t cleanup"; tail -5 "$WORK/sb-$t-cleanup.out"; fi
    check_fails "... the table is gone" "ERROR 1146" \
        my "$MY" root "${MUTUAL[@]}" sbtest -e "SELECT COUNT(*) FROM sbtest1"
done
check_fails "sysbench's account (REQUIRE X509) is refused without its client certificate" \
    'ERROR 1045' my "$MY" sbtest -p'sb-pass' --ssl --ssl-ca="$MYCERTS/ca.pem" -e "SELECT 1"

finish
