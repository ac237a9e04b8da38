#!/bin/sh
# tern-load over io = "xdp" and io = "uring" on the same veth pair, one after the other in the
# same run (root). The relay runs in namespace tern-xl-srv on tern0 (10.13.0.1, one queue, one
# worker, native XDP for xdp), tern-load in tern-xl-cli on peer0 (10.13.0.2).
#
#   cargo build --release --bin tern -p tern-bench --bin tern-load
#   sudo bench/xdp-vs-uring-load.sh [SUBSCRIBERS] [DURATION]      # default 50, 20s
#
# Prints tern-load's summary for each backend and leaves its JSON in $OUT (default
# /tmp/tern-xdp-load).
set -eu
SUBS=${1:-50}
DURATION=${2:-20s}
BIN=${BIN:-target/release}
OUT=${OUT:-/tmp/tern-xdp-load}
S=tern-xl-srv
C=tern-xl-cli
mkdir -p "$OUT"

cleanup() {
    [ -n "${RELAY:-}" ] && kill "$RELAY" 2>/dev/null || true
    ip netns del $S 2>/dev/null || true
    ip netns del $C 2>/dev/null || true
}
trap cleanup EXIT INT TERM

ip netns add $S
ip netns add $C
ip -n $S link add tern0 type veth peer name peer0 netns $C
ip -n $S addr add 10.13.0.1/24 dev tern0
ip -n $C addr add 10.13.0.2/24 dev peer0
for ns_dev in "$S tern0" "$C peer0" "$S lo" "$C lo"; do
    set -- $ns_dev
    ip -n "$1" link set "$2" up
done

export TERN_JWT_SECRET=xdp-vs-uring-load
TOKEN=$("$BIN/tern" token --room load --publish --subscribe)

for io in xdp uring; do
    cat >"$OUT/$io.toml" <<EOF
[http]
listen = "10.13.0.1:8080"

[media]
bind = "10.13.0.1"
port_base = 40000
workers = [1]
placement = "pinned"
io = "$io"
interface = "tern0"

[limits]
sessions_per_ip = 1000
requests_per_minute = 100000
EOF
    ip netns exec $S "$BIN/tern" serve --config "$OUT/$io.toml" >"$OUT/$io.log" 2>&1 &
    RELAY=$!
    for _ in $(seq 100); do
        grep -q "tern: serving" "$OUT/$io.log" && break
        kill -0 "$RELAY" 2>/dev/null || { cat "$OUT/$io.log"; exit 1; }
        sleep 0.2
    done
    grep -q "tern: serving" "$OUT/$io.log" || { cat "$OUT/$io.log"; exit 1; }
    echo "## io = $io, broadcast 1 -> $SUBS, $DURATION"
    ip netns exec $C "$BIN/tern-load" --url http://10.13.0.1:8080 --token "$TOKEN" \
        --scenario broadcast --publishers 1 --subscribers "$SUBS" --video 1500kbps \
        --duration "$DURATION" --relay-pid "$RELAY" --json "$OUT/$io.json"
    kill "$RELAY"
    wait "$RELAY" || true
    RELAY=
done
