# shellcheck shell=bash
# `scripts/playground export OUT`: the playground's certificates and per-component TOML in the
# layout a `tiup cluster` TLS deployment has, plus a topology.yaml, so the config tried here is
# the one deployed there. tiup keeps, in each instance's deploy dir, tls/ca.crt,
# tls/<role>.crt and tls/<role>.pem (the key), and points [security] at them; its own client
# cert is ~/.tiup/storage/cluster/clusters/<name>/tls/{ca.crt,client.crt,client.pem}. The CA
# keys are never exported. Needs common.sh and config.sh.

PG_DEPLOY=/tidb-deploy

# pg_ex_tls DEST ROLE CERT_PREFIX: DEST/tls/{ca.crt,ROLE.crt,ROLE.pem} from the cluster set.
pg_ex_tls() {
    mkdir -p "$1/tls" "$1/conf" || return 1
    install -m 0644 "$CERTS/ca.pem" "$1/tls/ca.crt" &&
        install -m 0644 "$CERTS/$3.pem" "$1/tls/$2.crt" &&
        install -m 0600 "$CERTS/$3-key.pem" "$1/tls/$2.pem"
}

# pg_ex_toml SRC ROLE INSTANCE: the playground's TOML with its paths moved to the deploy dir.
pg_ex_toml() {
    local dep=$PG_DEPLOY/$3
    sed -e "s#\"$CERTS/ca.pem\"#\"$dep/tls/ca.crt\"#" \
        -e "s#\"$CERTS/$2-server.pem\"#\"$dep/tls/$2.crt\"#" \
        -e "s#\"$CERTS/$2-server-key.pem\"#\"$dep/tls/$2.pem\"#" \
        -e "s#\"$MYCERTS/ca.pem\"#\"$dep/tls/mysql-ca.crt\"#" \
        -e "s#\"$MYCERTS/server.pem\"#\"$dep/tls/mysql-server.crt\"#" \
        -e "s#\"$MYCERTS/server-key.pem\"#\"$dep/tls/mysql-server.pem\"#" \
        -e "s#\"$CIPHER\"#\"$dep/conf/cipher-file-256\"#" \
        -e "s#^\\(\\# .*\\) of the tisim playground#\\1 (exported from the tisim playground)#" "$1"
}

# pg_ex_yaml_config TOML: the [security] keys of TOML as tiup's per-instance `config:` lines.
pg_ex_yaml_config() {
    sed -n 's/^\([a-z-]*\) *= *\(.*\)$/      security.\1: \2/p' "$1"
}

pg_ex_instances() {
    local out=$1 i inst
    for ((i = 0; i < NPD; i++)); do
        inst=pd-${PD_C[$i]}
        pg_ex_tls "$out/deploy/$inst" pd pd-server || return 1
        pg_ex_toml "$CONF/pd$((i + 1)).toml" pd "$inst" >"$out/deploy/$inst/conf/pd.toml" || return 1
    done
    for ((i = 0; i < NTIKV; i++)); do
        inst=tikv-${KV[$i]}
        pg_ex_tls "$out/deploy/$inst" tikv tikv-server || return 1
        install -m 0600 "$CIPHER" "$out/deploy/$inst/conf/cipher-file-256" || return 1
        pg_ex_toml "$CONF/tikv$((i + 1)).toml" tikv "$inst" >"$out/deploy/$inst/conf/tikv.toml" || return 1
    done
    inst=tidb-$MY
    pg_ex_tls "$out/deploy/$inst" tidb tidb-server || return 1
    install -m 0644 "$MYCERTS/ca.pem" "$out/deploy/$inst/tls/mysql-ca.crt" &&
        install -m 0644 "$MYCERTS/server.pem" "$out/deploy/$inst/tls/mysql-server.crt" &&
        install -m 0600 "$MYCERTS/server-key.pem" "$out/deploy/$inst/tls/mysql-server.pem" || return 1
    pg_ex_toml "$CONF/tidb.toml" tidb "$inst" >"$out/deploy/$inst/conf/tidb.toml"
}

pg_ex_clients() {
    local out=$1
    mkdir -p "$out/tiup-client-tls" "$out/mysql-client" || return 1
    install -m 0644 "$CERTS/ca.pem" "$out/tiup-client-tls/ca.crt" &&
        install -m 0644 "$CERTS/client.pem" "$out/tiup-client-tls/client.crt" &&
        install -m 0600 "$CERTS/client-key.pem" "$out/tiup-client-tls/client.pem" &&
        install -m 0644 "$MYCERTS/ca.pem" "$out/mysql-client/ca.crt" &&
        install -m 0644 "$MYCERTS/client.pem" "$out/mysql-client/client.crt" &&
        install -m 0600 "$MYCERTS/client-key.pem" "$out/mysql-client/client.pem"
}

pg_ex_topology() {
    local out=$1 i inst
    cat <<YAML
# tiup cluster topology, exported by tisim's scripts/playground from $D
# on $(date -u +%F). Hosts are the playground's (127.0.0.1): put your own.
#
# TLS uses the playground's certificates, not tiup's: before 'tiup cluster deploy', copy
# deploy/<instance>/tls and conf/cipher-file-256 to <deploy_dir>/ on each host. Keep
# enable_tls false: with true, tiup makes its own CA and certificates (same layout:
# <deploy_dir>/tls/ca.crt, <role>.crt, <role>.pem) and sets these paths itself; then its
# client certificate's CN is "<cluster-name>-client", which every cert-allowed-cn and
# cluster-verify-cn below must hold, or tiup's status checks are refused.
global:
  user: "tidb"
  deploy_dir: "$PG_DEPLOY"
  data_dir: "/tidb-data"
  enable_tls: false

pd_servers:
YAML
    for ((i = 0; i < NPD; i++)); do
        inst=pd-${PD_C[$i]}
        printf '  - host: 127.0.0.1\n    client_port: %s\n    peer_port: %s\n    deploy_dir: "%s"\n    config:\n' \
            "${PD_C[$i]}" "${PD_P[$i]}" "$PG_DEPLOY/$inst"
        pg_ex_yaml_config "$out/deploy/$inst/conf/pd.toml"
    done
    printf '\ntikv_servers:\n'
    for ((i = 0; i < NTIKV; i++)); do
        inst=tikv-${KV[$i]}
        printf '  - host: 127.0.0.1\n    port: %s\n    status_port: %s\n    deploy_dir: "%s"\n    config:\n' \
            "${KV[$i]}" "${ST[$i]}" "$PG_DEPLOY/$inst"
        pg_ex_yaml_config "$out/deploy/$inst/conf/tikv.toml"
    done
    inst=tidb-$MY
    printf '\ntidb_servers:\n  - host: 127.0.0.1\n    port: %s\n    status_port: %s\n    deploy_dir: "%s"\n    config:\n' \
        "$MY" "$TS" "$PG_DEPLOY/$inst"
    pg_ex_yaml_config "$out/deploy/$inst/conf/tidb.toml"
}

# pg_export OUT: writes the layout; refuses a non-empty OUT.
pg_export() {
    local out=$1
    [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && pg_die "export: $out is not empty; give a new or empty directory"
    (umask 077 && mkdir -p "$out") || pg_die "export: cannot create $out"
    out=$(cd "$out" && pwd)
    pg_ex_instances "$out" || pg_die "export: copying the certificates and configs failed"
    pg_ex_clients "$out" || pg_die "export: copying the client certificates failed"
    pg_ex_topology "$out" >"$out/topology.yaml" || pg_die "export: cannot write topology.yaml"
    pg_say "exported $D to $out:"
    (cd "$out" && find . -type f | sort | sed 's#^\./#  #')
    pg_say "deploy/<instance>/ is <deploy_dir> on the host (tiup's layout: tls/ca.crt, tls/<role>.crt,"
    pg_say "tls/<role>.pem key; conf/<role>.toml); tiup-client-tls/ is what tiup keeps in"
    # shellcheck disable=SC2088 # a path on the tiup host, printed as such
    pg_say "~/.tiup/storage/cluster/clusters/<name>/tls/; mysql-client/ is for MySQL clients."
    pg_say "Check: tiup cluster check $out/topology.yaml; deploy: tiup cluster deploy NAME VERSION $out/topology.yaml"
}
