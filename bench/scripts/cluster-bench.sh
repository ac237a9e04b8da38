#!/usr/bin/env bash
# Cluster cost, measured beside a single node in the same run (issue 11).
#
#   bench/scripts/cluster-bench.sh [SUBSCRIBERS] [DURATION]     (defaults 20, 20s)
#
# Starts Debian's etcd and tern serve processes (media on 127.0.0.1/.2/.3) from target/release,
# then runs tern-load three times with the same load:
#   single  one node takes the publisher and every subscriber          (one relay hop)
#   cascade publisher on node a, subscribers on node b (edge)         (two relay hops)
#   spread  publisher on node a, subscribers spread over nodes b and c (two hops, two edges)
# and prints latency p50/p99 per run, the added latency per extra hop, CPU per egress packet of
# the single node and of the edge (ratio), and etcd writes per second in steady state.
# Everything started is stopped and removed on exit. Needs: cargo build --release --workspace,
# /usr/bin/etcd (apt-get install etcd-server), python3, curl.
set -euo pipefail
SUBS=${1:-20}
DURATION=${2:-20s}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TERN=$ROOT/target/release/tern
LOAD=$ROOT/target/release/tern-load
[ -x "$TERN" ] && [ -x "$LOAD" ] || { echo "build first: cargo build --release --workspace" >&2; exit 1; }
[ -x /usr/bin/etcd ] || { echo "/usr/bin/etcd missing: apt-get install etcd-server" >&2; exit 1; }
DIR=$(mktemp -d /tmp/tern-cluster-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$DIR"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

EC=$(port); EP=$(port)
/usr/bin/etcd --name b --data-dir "$DIR/etcd" --listen-client-urls "http://127.0.0.1:$EC" \
  --advertise-client-urls "http://127.0.0.1:$EC" --listen-peer-urls "http://127.0.0.1:$EP" \
  --initial-advertise-peer-urls "http://127.0.0.1:$EP" --initial-cluster "b=http://127.0.0.1:$EP" \
  --log-level error >"$DIR/etcd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$EC/health" >/dev/null && break; sleep 0.1; done
head -c 32 /dev/urandom | base64 >"$DIR/jwt"; head -c 32 /dev/urandom | base64 >"$DIR/cluster"
head -c 24 /dev/urandom | base64 >"$DIR/admin"

# node NAME MEDIA_IP CLUSTER(yes|no) -> sets URL_<NAME>, PID_<NAME>
node() {
  local name=$1 ip=$2 clustered=$3 http; http=$(port)
  {
    printf '[http]\nlisten = "127.0.0.1:%s"\n\n[media]\nbind = "%s"\nport_base = 0\nworkers = [0]\nplacement = "unbound"\n\n' "$http" "$ip"
    printf '[auth]\njwt_secret_file = "%s"\nadmin_token_file = "%s"\n\n' "$DIR/jwt" "$DIR/admin"
    printf '[limits]\nsessions_per_ip = 10000\nrequests_per_minute = 1000000\n'
    [ "$clustered" = yes ] && printf '\n[cluster]\netcd = ["http://127.0.0.1:%s"]\nnode_id = "%s"\ncluster_secret_file = "%s"\n' "$EC" "$name" "$DIR/cluster"
  } >"$DIR/$name.toml"
  "$TERN" serve --config "$DIR/$name.toml" >"$DIR/$name.log" 2>&1 &
  local pid=$!; PIDS+=("$pid")
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$http/readyz" >/dev/null && break; sleep 0.1; done
  curl -sf "http://127.0.0.1:$http/readyz" >/dev/null || { cat "$DIR/$name.log" >&2; exit 1; }
  eval "URL_$name=http://127.0.0.1:$http; PID_$name=$pid"
}

node single 127.0.0.1 no
node a 127.0.0.1 yes
node b 127.0.0.2 yes
node c 127.0.0.3 yes
TOKEN=$("$TERN" token --room load --publish --subscribe --identity bench --ttl 1h --config "$DIR/a.toml")

run() { # NAME URL SUBSCRIBE_URL RELAY_PID
  "$LOAD" --url "$2" --subscribe-url "$3" --token "$TOKEN" --scenario broadcast --publishers 1 \
    --subscribers "$SUBS" --duration "$DURATION" --warmup 2s --relay-pid "$4" --quiet \
    --json "$DIR/$1.json" >"$DIR/$1.out" 2>&1 || { cat "$DIR/$1.out" >&2; exit 1; }
}
writes() { curl -sf "$1/metrics" | awk '$1 ~ /^tern_cluster_etcd_writes_total/ {s+=$2} END {print s+0}'; }

run single "$URL_single" "$URL_single" "$PID_single"
run cascade "$URL_a" "$URL_b" "$PID_b"
W0=$(( $(writes "$URL_a") + $(writes "$URL_b") + $(writes "$URL_c") )); T0=$(date +%s.%N)
run spread "$URL_a" "$URL_b,$URL_c" "$PID_b"
W1=$(( $(writes "$URL_a") + $(writes "$URL_b") + $(writes "$URL_c") )); T1=$(date +%s.%N)

python3 - "$DIR" "$W0" "$W1" "$T0" "$T1" <<'PY'
import json, sys
d, w0, w1, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
runs = {n: json.load(open(f"{d}/{n}.json")) for n in ("single", "cascade", "spread")}
print(f"{'run':8} {'p50 us':>8} {'p99 us':>8} {'loss':>8} {'subs ok':>8} {'egress pps':>11} {'ns/egress':>10}")
for n, r in runs.items():
    l = r["latency_us"]
    cpu = "-" if n == "spread" else f"{r['relay_cpu_ns_per_egress']:.0f}"  # node b has half the egress
    print(f"{n:8} {l['p50']:>8} {l['p99']:>8} {r['loss_ratio']:>8.5f} {r['subscribers_ok']:>8} {r['egress_pps']:>11.0f} {cpu:>10}")
s, c = runs["single"], runs["cascade"]
print(f"added by the second hop: p50 {c['latency_us']['p50'] - s['latency_us']['p50']} us, p99 {c['latency_us']['p99'] - s['latency_us']['p99']} us")
print(f"edge CPU per egress / single node CPU per egress: {c['relay_cpu_ns_per_egress'] / s['relay_cpu_ns_per_egress']:.3f}")
PY
echo "etcd writes/s per node while the spread run's sessions came, flowed and went: $(python3 -c "print(round(($W1-$W0)/($T1-$T0)/3,3))")"
W2=$(( $(writes "$URL_a") + $(writes "$URL_b") + $(writes "$URL_c") )); sleep 10
W3=$(( $(writes "$URL_a") + $(writes "$URL_b") + $(writes "$URL_c") ))
echo "etcd writes/s per node, steady state after the runs (10 s): $(python3 -c "print(round(($W3-$W2)/10/3,3))")"
R=$(curl -sf "$URL_a/metrics" | awk '$1 ~ /^tern_cluster_lease_renewals_total/ {s+=$2} END {print s+0}')
echo "lease keep-alives sent by node a so far: $R (one per lease_ttl/3, answered by etcd's leader without a log write)"
