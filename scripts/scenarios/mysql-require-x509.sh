#!/usr/bin/env bash
# mysql-require-x509: an account created REQUIRE X509, logging in with and without a client certificate.
. "$(dirname "$0")/_lib.sh"
title "CREATE USER 'app'@'%' REQUIRE X509; 'app' logs in over TLS without a client certificate" \
    "1045 Access denied (the log says the REQUIRE is not met); with a certificate of ssl-ca it logs in"
certs
mysql_certs
pd_up '["TiKV-Server", "TiDB-Server", "PD-Control"]'
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
tikv_up tikv "$W/tikv.toml"
tidb_config "$W/tidb.toml" mutual
tidb_up tidb "$W/tidb.toml"
M=(mariadb -h 127.0.0.1 -P "${MY[tidb]}" --connect-timeout=10)
ONEWAY=(--ssl --ssl-ca="$MYCERTS/ca.pem" --ssl-verify-server-cert)
MUTUAL=(--ssl-ca="$MYCERTS/ca.pem" --ssl-cert="$MYCERTS/client.pem" --ssl-key="$MYCERTS/client-key.pem")

step "TiDB with the MySQL-client set (ssl-ca verifies client certificates when presented)"
run grep -E '^ssl-' "$W/tidb.toml"
expect_served "root creates the account" '' "${M[@]}" -u root "${MUTUAL[@]}" \
    -e "CREATE USER 'app'@'%' REQUIRE X509"

step "Broken: 'app' over one-way TLS (no client certificate)"
expect_refused "refused with MySQL's 1045, which names nothing" \
    "^ERROR 1045 \\(28000\\): Access denied for user 'app'@'127\\.0\\.0\\.1' \\(using password: NO\\)\$" \
    "${M[@]}" -u app "${ONEWAY[@]}" -e "SELECT CURRENT_USER()"
expect_log "TiDB's log says which requirement failed" tidb \
    "refused login of 'app' from 127\\.0\\.0\\.1:[0-9]+ \\(TLS on\\): the account's REQUIRE is not met"
expect_refused "plaintext is refused the same way" "ERROR 1045" \
    "${M[@]}" -u app --skip-ssl -e "SELECT CURRENT_USER()"

step "Good case: 'app' with a client certificate of the MySQL CA"
expect_served "logs in" '^app@%$' \
    "${M[@]}" -u app "${MUTUAL[@]}" -N -e "SELECT CURRENT_USER()"
expect_log "TiDB logs the login" tidb "login of 'app'@'%' from 127\\.0\\.0\\.1:[0-9]+ \\(TLS TLSv1\\.2\\)"

explain "REQUIRE X509 means: TLS and a client certificate that verified against TiDB's ssl-ca. MySQL
answers every failed login with the same 1045 so a client learns nothing; the reason is in TiDB's log." \
    "connect with --ssl-cert/--ssl-key from the MySQL-client CA (ssl-ca), or relax the account
(ALTER USER 'app'@'%' REQUIRE SSL, or NONE)."
verdict
