# shellcheck shell=bash
# The playground's key material, made once per dir and reused after: the cluster set
# (tisim-certs pki), a cert of the same CA with a CN no list holds, the MySQL-client set from
# its own CA, and TiKV's cipher-file. Needs common.sh.

# pg_make_pki: makes what is missing; says what it made and what it reused.
pg_make_pki() {
    local T=$PG_BIN/tisim-certs
    if [ -f "$CERTS/ca.pem" ]; then
        pg_say "certs: reusing the cluster set in $CERTS"
    else
        "$T" pki --out "$CERTS" >/dev/null || pg_die "tisim-certs pki failed"
        pg_say "certs: made the cluster set in $CERTS (CA, PD-Server, TiKV-Server, TiDB-Server, Control-Client)"
    fi
    if [ ! -f "$CERTS/intruder.pem" ]; then
        "$T" cert --ca-cert "$CERTS/ca.pem" --ca-key "$CERTS/ca-key.pem" --cn Intruder \
            --out-cert "$CERTS/intruder.pem" --out-key "$CERTS/intruder-key.pem" >/dev/null ||
            pg_die "tisim-certs cert (Intruder) failed"
    fi
    pg_make_mysql_pki
    if [ -f "$CIPHER" ]; then
        pg_say "cipher-file: reusing $CIPHER"
    else
        (umask 077 && "$PG_BIN/tikv-ctl" random-hex --len 256 >"$CIPHER") ||
            pg_die "tikv-ctl random-hex failed"
        pg_say "cipher-file: made $CIPHER (tikv-ctl random-hex --len 256)"
    fi
}

# The MySQL-client set: separate from the cluster's, as TiDB's guide has it.
pg_make_mysql_pki() {
    local T=$PG_BIN/tisim-certs
    if [ -f "$MYCERTS/ca.pem" ]; then
        pg_say "certs: reusing the MySQL-client set in $MYCERTS"
        return 0
    fi
    (umask 077 && mkdir -p "$MYCERTS") || pg_die "cannot create $MYCERTS"
    # shellcheck disable=SC2015 # pg_die exits
    "$T" ca --out-cert "$MYCERTS/ca.pem" --out-key "$MYCERTS/ca-key.pem" \
        --cn "tisim MySQL CA" >/dev/null &&
        "$T" cert --ca-cert "$MYCERTS/ca.pem" --ca-key "$MYCERTS/ca-key.pem" \
            --cn tidb-mysql-server --san 127.0.0.1 --san localhost --san ::1 \
            --out-cert "$MYCERTS/server.pem" --out-key "$MYCERTS/server-key.pem" >/dev/null &&
        "$T" cert --ca-cert "$MYCERTS/ca.pem" --ca-key "$MYCERTS/ca-key.pem" --cn app-client \
            --out-cert "$MYCERTS/client.pem" --out-key "$MYCERTS/client-key.pem" >/dev/null ||
        pg_die "tisim-certs failed making the MySQL-client set"
    pg_say "certs: made the MySQL-client set in $MYCERTS (its own CA, tidb-mysql-server, app-client)"
}
