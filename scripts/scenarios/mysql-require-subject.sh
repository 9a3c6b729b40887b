#!/usr/bin/env bash
# mysql-require-subject: REQUIRE SUBJECT matched and mismatched.
. "$(dirname "$0")/_lib.sh"
title "CREATE USER 'app'@'%' REQUIRE SUBJECT '/CN=app-client'; a certificate of the same CA with CN reporting" \
    "the CN=reporting certificate gets 1045 (REQUIRE not met); the CN=app-client one logs in"
certs
mysql_certs
"$BIN/tisim-certs" cert --ca-cert "$MYCERTS/ca.pem" --ca-key "$MYCERTS/ca-key.pem" --cn reporting \
    --out-cert "$MYCERTS/reporting.pem" --out-key "$MYCERTS/reporting-key.pem" >/dev/null
pd_up '["TiKV-Server", "TiDB-Server", "PD-Control"]'
tikv_config "$W/tikv.toml" "$W/cipher-file-256"
tikv_up tikv "$W/tikv.toml"
tidb_config "$W/tidb.toml" mutual
tidb_up tidb "$W/tidb.toml"
M=(mariadb -h 127.0.0.1 -P "${MY[tidb]}" --connect-timeout=10 --ssl-ca="$MYCERTS/ca.pem")

step "The account and the two client certificates"
expect_served "root creates the account" '' "${M[@]}" -u root --ssl-cert="$MYCERTS/client.pem" \
    --ssl-key="$MYCERTS/client-key.pem" -e "CREATE USER 'app'@'%' REQUIRE SUBJECT '/CN=app-client'"
run openssl x509 -noout -subject -issuer -in "$MYCERTS/reporting.pem"
run openssl x509 -noout -subject -issuer -in "$MYCERTS/client.pem"

step "Broken: 'app' with the CN=reporting certificate (valid, same CA, other subject)"
expect_refused "refused with 1045" "^ERROR 1045 \\(28000\\): Access denied for user 'app'@'127\\.0\\.0\\.1'" \
    "${M[@]}" -u app --ssl-cert="$MYCERTS/reporting.pem" --ssl-key="$MYCERTS/reporting-key.pem" \
    -e "SELECT CURRENT_USER()"
expect_log "TiDB's log: TLS with a client certificate, REQUIRE not met" tidb \
    "refused login of 'app' from 127\\.0\\.0\\.1:[0-9]+ \\(TLS on, client certificate\\): the account's REQUIRE is not met"

step "Good case: 'app' with the CN=app-client certificate"
expect_served "logs in" '^app@%$' "${M[@]}" -u app --ssl-cert="$MYCERTS/client.pem" \
    --ssl-key="$MYCERTS/client-key.pem" -N -e "SELECT CURRENT_USER()"

explain "REQUIRE SUBJECT compares the verified client certificate's whole subject, in OpenSSL's
/CN=.../O=... form, with the account's string; any other subject from the same CA is refused (1045)." \
    "take the string from the certificate (openssl x509 -noout -subject -nameopt compat) and
ALTER USER 'app'@'%' REQUIRE SUBJECT '...', or issue the client a certificate with that subject."
verdict
