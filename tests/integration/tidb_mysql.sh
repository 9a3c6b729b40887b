#!/usr/bin/env bash
# PD + one encrypted TiKV + tidb-server with the TLS guide's cluster [security] and a separate
# MySQL-client certificate set, driven by the real mariadb client: one-way and mutual TLS,
# REQUIRE SSL / X509 / SUBJECT / ISSUER, passwords, require-secure-transport, the SQL a client
# session uses (rows land in TiKV, encrypted), MySQL's errors without dropping the connection,
# garbage on the port, the status port and tidb-ctl (its cluster-verify-cn refusals are in
# test_tidb_status and test_tidbctl), the cluster's lists refusing TiDB's cert.
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
tidb_config "$WORK/tidb.toml" mutual
start_tidb tidb "$PD_C" "$MY" "$TS" "$WORK/tidb.toml" || fail "tidb-server starts"
TIDB_PID=$LAST_PID

ONEWAY=(--ssl --ssl-ca="$MYCERTS/ca.pem" --ssl-verify-server-cert)
MUTUAL=(--ssl-ca="$MYCERTS/ca.pem" --ssl-cert="$MYCERTS/client.pem" --ssl-key="$MYCERTS/client-key.pem")

# --- TLS for the MySQL client
check_output "one-way TLS: the session's SHOW STATUS shows TLS 1.2 and its cipher" \
    'Ssl_version	TLSv1\.2' my "$MY" root "${ONEWAY[@]}" -e "SHOW STATUS LIKE 'Ssl%'"
check_output "... and Ssl_cipher, Ssl_server_not_before/after, Ssl_verify_mode" \
    'Ssl_cipher	ECDHE-.*Ssl_server_not_after	[A-Z][a-z]{2} .* GMT.*Ssl_server_not_before	.*Ssl_verify_mode	5' \
    bash -c "$(declare -f my); my $MY root ${ONEWAY[*]} -e \"SHOW STATUS LIKE 'Ssl%'\" | tr '\n' ' '"
check_output "... its Ssl_cipher is the suite the mariadb client says it uses, in OpenSSL's name" \
    '^same ECDHE-ECDSA-[A-Z0-9-]+$' bash -c "$(declare -f my)
    server=\$(my $MY root ${ONEWAY[*]} -N -e \"SHOW STATUS LIKE 'Ssl_cipher'\" | cut -f2)
    client=\$(my $MY root ${ONEWAY[*]} -e 'status' | sed -n 's/.*Cipher in use is //p')
    [ -n \"\$server\" ] && [ \"\$server\" = \"\$client\" ] && echo \"same \$server\" || echo \"server '\$server' client '\$client'\""
check_output "SHOW VARIABLES LIKE '%ssl%' shows have_ssl and the configured files" \
    "have_ssl	YES.*ssl_cert	$MYCERTS/server.pem" \
    bash -c "$(declare -f my); my $MY root ${ONEWAY[*]} -e \"SHOW VARIABLES LIKE '%ssl%'\" | tr '\n' ' '"
check_output "a plaintext session shows no TLS (the check can fail)" '^Ssl_version	$' \
    my "$MY" root --skip-ssl -e "SHOW STATUS LIKE 'Ssl_version'"
check_fails "a client that does not trust the server's CA fails the handshake" \
    'ERROR 2026' my "$MY" root --ssl-ca="$CERTS/ca.pem" --ssl-verify-server-cert -e "SELECT 1"
check_fails "a client certificate from another CA is refused (ssl-ca verifies what is presented)" \
    'ERROR 2026.*unknown ca' my "$MY" root --ssl-ca="$MYCERTS/ca.pem" \
    --ssl-cert="$MYCERTS/other-client.pem" --ssl-key="$MYCERTS/other-client-key.pem" -e "SELECT 1"

# --- accounts and their REQUIRE
my "$MY" root "${MUTUAL[@]}" -e "
CREATE USER 'pw'@'%' IDENTIFIED BY 's3cret-Pass';
CREATE USER 'tls'@'%' REQUIRE SSL;
CREATE USER 'x509'@'%' REQUIRE X509;
CREATE USER 'subj'@'%' REQUIRE SUBJECT '/CN=app-client' AND ISSUER '/CN=MySQL Client CA';
CREATE USER 'wrongsubj'@'%' REQUIRE SUBJECT '/CN=someone-else';" >"$WORK/users.out" 2>&1 ||
    { fail "create the test accounts"; cat "$WORK/users.out"; }
check_output "a password account logs in with its password" '^pw@%$' \
    my "$MY" pw -p's3cret-Pass' --skip-ssl -N -e "SELECT CURRENT_USER()"
check_fails "... and is refused with another, in MySQL's words" \
    "^ERROR 1045 \(28000\): Access denied for user 'pw'@'127.0.0.1' \(using password: YES\)$" \
    my "$MY" pw -p'not-the-Pass9' --skip-ssl -e "SELECT 1"
grep -q 's3cret-Pass\|not-the-Pass9' "$WORK/tidb.log" "$WORK/tidb.out" &&
    fail "the log holds a password" || pass "no password in tidb-server's log"
check_output "REQUIRE SSL: served over TLS" '^tls@%$' my "$MY" tls "${ONEWAY[@]}" -N -e "SELECT CURRENT_USER()"
check_fails "REQUIRE SSL: refused over plaintext" 'ERROR 1045' my "$MY" tls --skip-ssl -e "SELECT 1"
check_output "REQUIRE X509: served with a verified client certificate" '^x509@%$' \
    my "$MY" x509 "${MUTUAL[@]}" -N -e "SELECT CURRENT_USER()"
check_fails "REQUIRE X509: refused over TLS without one" 'ERROR 1045' my "$MY" x509 "${ONEWAY[@]}" -e "SELECT 1"
check_output "REQUIRE SUBJECT AND ISSUER: served when both match" '^subj@%$' \
    my "$MY" subj "${MUTUAL[@]}" -N -e "SELECT CURRENT_USER()"
check_fails "REQUIRE SUBJECT: refused when the subject differs" 'ERROR 1045' \
    my "$MY" wrongsubj "${MUTUAL[@]}" -e "SELECT 1"
check_output "ALTER USER ... REQUIRE NONE lifts it" '^1$' bash -c \
    "$(declare -f my); my $MY root ${MUTUAL[*]} -e \"ALTER USER 'x509'@'%' REQUIRE NONE\" && my $MY x509 --skip-ssl -N -e 'SELECT 1'"
check "DROP USER" my "$MY" root "${MUTUAL[@]}" -e "DROP USER 'tls'@'%'"
check_fails "... then the account is gone" 'ERROR 1045' my "$MY" tls "${ONEWAY[@]}" -e 'SELECT 1'
check_fails "DROP USER of an account that is not there: MySQL's 1396" \
    "ERROR 1396 \(HY000\).*Operation DROP USER failed for 'tls'@'%'" \
    my "$MY" root "${MUTUAL[@]}" -e "DROP USER 'tls'@'%'"

# --- SQL over the cluster's mutual TLS
R=(root "${MUTUAL[@]}")
check_output "what a client sends on connect" \
    "^8\.0\.11-TiDB-tisim	root@%	root@127\.0\.0\.1	NULL	[0-9]+	TiDB Server" \
    my "$MY" "${R[@]}" -N -e "SELECT VERSION(), CURRENT_USER(), USER(), DATABASE(), CONNECTION_ID(), @@version_comment"
check "CREATE DATABASE, CREATE TABLE, multi-row INSERT" my "$MY" "${R[@]}" -e "
CREATE DATABASE shop;
CREATE TABLE shop.items (id BIGINT PRIMARY KEY, name VARCHAR(40) NOT NULL, qty INT DEFAULT 0, note TEXT);
INSERT INTO shop.items VALUES (1, 'distinctive-ROW-8d1e', 5, NULL), (2, 'two', 7, 'x'), (3, 'three', 9, NULL), (10, 'ten', 1, NULL);"
check_output "SHOW DATABASES lists it" '^shop$' my "$MY" "${R[@]}" -N -e "SHOW DATABASES"
check_output "SHOW TABLES in it" '^items$' my "$MY" "${R[@]}" -N shop -e "SHOW TABLES"
check_output "SELECT * WHERE pk = ..." '^2	two	7	x$' my "$MY" "${R[@]}" -N shop -e "SELECT * FROM items WHERE id = 2"
check_output "a primary-key range with LIMIT, in key order" '^2 3 $' bash -c \
    "$(declare -f my); my $MY ${R[*]} -N shop -e 'SELECT id FROM items WHERE id >= 2 AND id < 10 LIMIT 5' | tr '\n' ' '"
check_output "a full scan with a filter and ORDER BY" '^10 3 $' bash -c \
    "$(declare -f my); my $MY ${R[*]} -N shop -e 'SELECT id FROM items WHERE qty < 2 OR id = 3 ORDER BY id DESC' | tr '\n' ' '"
check_output "UPDATE by primary key" '^1	6$' my "$MY" "${R[@]}" -N shop -e "UPDATE items SET qty = qty + 1 WHERE id = 1; SELECT id, qty FROM items WHERE id = 1"
check_output "DELETE by primary key" '^3$' my "$MY" "${R[@]}" -N shop -e "DELETE FROM items WHERE id = 10; SELECT COUNT(*) FROM items"
check_fails "a duplicate primary key is MySQL's 1062" \
    "ERROR 1062 \(23000\).*Duplicate entry '2' for key 'items.PRIMARY'" \
    my "$MY" "${R[@]}" shop -e "INSERT INTO items VALUES (2, 'again', 1, NULL)"
check_fails "an unknown table is 1146" "ERROR 1146 \(42S02\).*Table 'shop.nope' doesn't exist" \
    my "$MY" "${R[@]}" shop -e "SELECT * FROM nope"
check_fails "a syntax error is 1064 with MySQL's wording" \
    "ERROR 1064 \(42000\).*You have an error in your SQL syntax.*near 'FORM items'" \
    my "$MY" "${R[@]}" shop -e "SELECT * FORM items"
check_output "an unsupported statement gets an ERR and the session goes on" \
    "ERROR 1235.*still here" bash -c "$(declare -f my); printf '%s\n' 'SELECT * FROM items JOIN items b;' \"SELECT 'still here';\" | my $MY ${R[*]} --force shop 2>&1 | tr '\n' ' '; true"
# --- many rows: DELETE and DROP TABLE go to TiKV in batches of at most 1000 keys
KEYS_BEFORE=$(status_num "$ST" key_count)
[ -n "$KEYS_BEFORE" ] || fail "TiKV's /status gives its key_count"
big_rows() { seq "$1" "$2" | sed "s/.*/(&, 'u&')/" | paste -sd,; }
check_output "2500 rows with a unique secondary index" '^2500$' my "$MY" "${R[@]}" -N shop -e \
    "CREATE TABLE big (id INT PRIMARY KEY, u VARCHAR(20), UNIQUE KEY uu (u)); INSERT INTO big VALUES $(big_rows 1 2500); SELECT COUNT(*) FROM big"
check_output "DELETE of 1500 of them (3000 keys: several batches)" '^1000$' \
    my "$MY" "${R[@]}" -N shop -e "DELETE FROM big WHERE id <= 1500; SELECT COUNT(*) FROM big"
check_fails "the unique index refuses a value still in use" "ERROR 1062 .*Duplicate entry 'u2000' for key 'big.uu'" \
    my "$MY" "${R[@]}" shop -e "INSERT INTO big VALUES (1, 'u2000')"
check_output "... and takes the deleted rows' values again: their index entries went with them" '^2500$' \
    my "$MY" "${R[@]}" -N shop -e "INSERT INTO big VALUES $(big_rows 1 1500); SELECT COUNT(*) FROM big"
check "DROP TABLE of 2500 rows" my "$MY" "${R[@]}" shop -e "DROP TABLE big"
check_output "... leaves TiKV with the keys it had before the table (key_count $KEYS_BEFORE)" \
    "^$KEYS_BEFORE\$" status_num "$ST" key_count

if grep -rqa 'distinctive-ROW-8d1e' "$WORK/tikv.data"; then
    fail "the row's bytes are in TiKV's data dir in clear"
else
    pass "rows are stored in TiKV, encrypted: the inserted value is nowhere in its data dir"
fi
stop_pid "$TIDB_PID"
start_tidb tidb "$PD_C" "$MY" "$TS" "$WORK/tidb.toml" || fail "tidb-server restarts"
check_output "... and they are in TiKV: a restarted tidb-server reads them back" '^distinctive-ROW-8d1e$' \
    my "$MY" "${R[@]}" -N shop -e "SELECT name FROM items WHERE id = 1"

# --- garbage on the MySQL port: that connection closes, the server goes on
printf '\xff\xff\xff\x00garbage-that-is-no-mysql-packet' >"$WORK/junk"
timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$MY; cat $WORK/junk >&3; cat <&3 >/dev/null" 2>/dev/null
check_output "after garbage on the port, clients are still served" '^1$' \
    my "$MY" "${R[@]}" -N -e "SELECT 1"

# --- the status port and tidb-ctl (the guide's command line)
check_output "GET /status over the cluster's TLS" '"version":"8\.0\.11-TiDB-tisim"' \
    curl -s --cacert "$CERTS/ca.pem" "https://127.0.0.1:$TS/status"
check_output "tidb-ctl -u https://... --ca --ssl-cert --ssl-key prints the status" '"connections"' \
    "$BIN/tidb-ctl" -u "https://127.0.0.1:$TS" --ca "$CERTS/ca.pem" --ssl-cert "$CERTS/client.pem" \
    --ssl-key "$CERTS/client-key.pem"
schema_listed() {
    "$BIN/tidb-ctl" -u "https://127.0.0.1:$TS" --ca "$CERTS/ca.pem" --ssl-cert "$CERTS/client.pem" \
        --ssl-key "$CERTS/client-key.pem" schema in shop | grep -q '"items"'
}
check "tidb-ctl schema in shop lists its table" wait_until 10 schema_listed

# --- require-secure-transport on a second tidb-server
MY2=$(free_port); TS2=$(free_port)
tidb_config "$WORK/tidb2.toml" oneway true
start_tidb tidb2 "$PD_C" "$MY2" "$TS2" "$WORK/tidb2.toml" || fail "a second tidb-server starts"
# a client that connects and never logs in (checked at the end: the server closes it in 10 s)
(exec 3<>"/dev/tcp/127.0.0.1/$MY2" && timeout 30 cat <&3 >/dev/null) &
SILENT=$!
check_fails "require-secure-transport: a plaintext login is refused with 3159" \
    'ERROR 3159 .*Connections using insecure transport are prohibited while --require_secure_transport=ON' \
    my "$MY2" root --skip-ssl -e "SELECT 1"
check_output "... while a TLS login on the same server is served" '^1$' \
    my "$MY2" root "${ONEWAY[@]}" -N -e "SELECT 1"
check_output "a TLS session quiet for longer than the 10 s login deadline is still served" \
    '^before after-quiet $' bash -c "$(declare -f my); { echo \"SELECT 'before';\"; sleep 11;
        echo \"SELECT 'after-quiet';\"; } | my $MY2 root ${ONEWAY[*]} -N | tr '\n' ' '"

# --- the cluster's allow-lists decide what TiDB may reach (its cluster cert's CN)
MY3=$(free_port); TS3=$(free_port)
sed "s#tidb-server.pem#tikv-server.pem#; s#tidb-server-key.pem#tikv-server-key.pem#" \
    "$WORK/tidb.toml" >"$WORK/tidb3.toml"
start_tidb tidb3 "$PD_C" "$MY3" "$TS3" "$WORK/tidb3.toml" || fail "a tidb-server with CN TiKV-Server starts"
check_fails "a CN outside TiKV's cert-allowed-cn: TiKV refuses TiDB in its own words, the client is told" \
    'ERROR 1105 .*UNAUTHENTICATED: Common name check fail, reason: x509_common_name from peer is TiKV-Server' \
    my "$MY3" root "${MUTUAL[@]}" -e "SELECT 1"
MY4=$(free_port); TS4=$(free_port)
sed "s#tidb-server.pem#tikv-control.pem#; s#tidb-server-key.pem#tikv-control-key.pem#" \
    "$WORK/tidb.toml" >"$WORK/tidb4.toml"
start_tidb tidb4 "$PD_C" "$MY4" "$TS4" "$WORK/tidb4.toml" || fail "a tidb-server with CN TiKV-Control starts"
check_fails "a CN outside PD's cert-allowed-cn: PD's refusal reaches the client at once" \
    "ERROR 1105 .*PD https://127.0.0.1:$PD_C refused TiDB: .*Common Name is not in the server.s allow-list" \
    my "$MY4" root "${MUTUAL[@]}" -e "SELECT 1"
check_output "... while the TiDB-Server one is served in the same cluster" '^1$' \
    my "$MY" root "${MUTUAL[@]}" -N -e "SELECT 1"

wait "$SILENT"
check_output "a connection that never logs in is closed by the server (not left open)" \
    'closing 127\.0\.0\.1:[0-9]+: no login within 10 s' cat "$WORK/tidb2.log"

finish
