# shellcheck shell=bash
# One TOML per process with the [security] sections of TiDB's TLS guide (its comments kept),
# each allow-list holding the guide's CNs plus what this topology needs. Written when
# missing, never overwritten: edit one and restart the playground to try a change. Needs
# common.sh.

# The allow-lists. PD: the guide's list, the shared ctl client's CN, and PD-Server when
# there are several members (they dial each other with it). TiKV: the guide's list with
# TiKV-Server (stores dial each other with it) and the ctl CN. TiDB's status port: the
# guide's list and the ctl CN.
pg_pd_allowed() {
    local extra=""
    [ "$NPD" -gt 1 ] && extra=', "PD-Server"'
    echo "[\"TiKV-Server\", \"TiDB-Server\", \"PD-Control\", \"Control-Client\"$extra]"
}
PG_TIKV_ALLOWED='["TiKV-Server", "TiDB-Server", "PD-Server", "TiKV-Control", "RawKvClient1", "Control-Client"]'
PG_TIDB_VERIFY_CN='["TiDB-Server", "TiKV-Control", "Control-Client"]'

pg_write_pd_conf() {
    cat <<TOML
# PD $1 of the tisim playground: the [security] section of TiDB's TLS guide.
[security]
# Path of file that contains list of trusted SSL CAs. If set, following four settings shouldn't be empty
cacert-path = "$CERTS/ca.pem"
# Path of file that contains X509 certificate in PEM format.
cert-path = "$CERTS/pd-server.pem"
# Path of file that contains X509 key in PEM format.
key-path = "$CERTS/pd-server-key.pem"
# Who may call PD: stores, TiDB, the ctl tools' shared client cert (and PD members)
cert-allowed-cn = $(pg_pd_allowed)
TOML
}

pg_write_tikv_conf() {
    cat <<TOML
# TiKV store $1 of the tisim playground: the [security] section of TiDB's TLS guide.
[security]
## The path for TLS certificates. Empty string means that secure connections are disabled.
# Path of file that contains list of trusted SSL CAs. If set, following four settings shouldn't be empty
ca-path = "$CERTS/ca.pem"
# Path of file that contains X509 certificate in PEM format.
cert-path = "$CERTS/tikv-server.pem"
# Path of file that contains X509 key in PEM format.
key-path = "$CERTS/tikv-server-key.pem"
# Check the client certificate's CN. Empty means no check.
# (the guide's list, plus TiKV-Server: stores dial each other with it; plus the ctl CN)
cert-allowed-cn = $PG_TIKV_ALLOWED
# The path of the encryption key file
cipher-file = "$CIPHER"
TOML
}

pg_write_tidb_conf() {
    cat <<TOML
# TiDB of the tisim playground: the [security] section of TiDB's TLS guide.
[security]
# Path of file that contains list of trusted SSL CAs for connection with cluster components.
cluster-ssl-ca = "$CERTS/ca.pem"
# Path of file that contains X509 certificate in PEM format for connection with cluster components.
cluster-ssl-cert = "$CERTS/tidb-server.pem"
# Path of file that contains X509 key in PEM format for connection with cluster components.
cluster-ssl-key = "$CERTS/tidb-server-key.pem"
# Who may call TiDB's status port (checked in the TLS handshake)
cluster-verify-cn = $PG_TIDB_VERIFY_CN
# The MySQL-client set, from its own CA: TLS for MySQL clients, client certs verified
ssl-ca = "$MYCERTS/ca.pem"
ssl-cert = "$MYCERTS/server.pem"
ssl-key = "$MYCERTS/server-key.pem"
require-secure-transport = true
TOML
}

# pg_write_confs: the missing config files; says which were kept.
pg_write_confs() {
    local i kept=()
    mkdir -p "$CONF" || pg_die "cannot create $CONF"
    for ((i = 1; i <= NPD; i++)); do
        pg_conf_once "$CONF/pd$i.toml" pg_write_pd_conf "pd$i" || kept+=("pd$i.toml")
    done
    for ((i = 1; i <= NTIKV; i++)); do
        pg_conf_once "$CONF/tikv$i.toml" pg_write_tikv_conf "$i" || kept+=("tikv$i.toml")
    done
    pg_conf_once "$CONF/tidb.toml" pg_write_tidb_conf || kept+=("tidb.toml")
    if [ ${#kept[@]} -gt 0 ]; then
        pg_say "configs: reusing ${kept[*]} in $CONF (delete one to have it written again)"
    else
        pg_say "configs: wrote one per process in $CONF"
    fi
}

# pg_conf_once FILE WRITER ARGS...: 1 when FILE already exists (kept as it is).
pg_conf_once() {
    local f=$1
    shift
    [ -f "$f" ] && return 1
    "$@" >"$f" || pg_die "cannot write $f"
    return 0
}

# pg_conf_list FILE KEY: the value of KEY (one line) in FILE, as written there.
pg_conf_list() { sed -n "s/^$2 *= *//p" "$1" | head -n 1; }
