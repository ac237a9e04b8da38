#!/usr/bin/env bash
# Soak test: a `tern serve` under a steady tern-load mix (a broadcast and a conference for the
# whole run) plus churn waves (audio rooms that join, talk for a while and leave), sampled every
# 10 s: RSS, open fds, threads, and the relay's counters from /metrics.
#
# usage: bench/scripts/soak.sh DURATION [--netem "loss 1% delay 10ms 5ms"] [--loss RATIO]
#                              [--out DIR]
#   DURATION   seconds, or with a unit: 60, 90s, 10m, 1h
#   --netem    run relay and load in a fresh network namespace whose loopback has this
#              tc-netem discipline (loss and jitter on every packet, both ways); needs a
#              kernel with sch_netem
#   --loss     the steady mix's subscribers drop this fraction of RTP on receipt (tern-load
#              --simulate-loss), so NACK and retransmission run all along; works on any kernel
#   --out DIR  where samples.csv, relay.log, load logs and summary.txt go (default: a new
#              directory under /tmp, printed)
# environment: TERN_BIN, TERN_LOAD_BIN (default target/release/{tern,tern-load}),
#              SOAK_VIDEO (broadcast bitrate, default 500kbps)
#
# Fails (exit 1) on: the relay exiting or panicking, a worker dying or restarting (counters
# reset), RSS growing more than 5 % from the end of warm-up to the end, open fds or threads not
# back to their level between churn waves, a load run whose sessions failed, or a token or the
# JWT secret in any log of the run.
# Prints "soak: 1 passed, 0 failed" or "soak: 0 passed, 1 failed" last.
set -uo pipefail
cd "$(dirname "$0")/../.."

die() { echo "soak: $*" >&2; echo "soak: 0 passed, 1 failed"; exit 1; }

[ $# -ge 1 ] || die "usage: soak.sh DURATION [--netem SPEC] [--out DIR]"
case "$1" in
    *h) DURATION=$(( ${1%h} * 3600 )) ;;
    *m) DURATION=$(( ${1%m} * 60 )) ;;
    *s) DURATION=${1%s} ;;
    *) DURATION=$1 ;;
esac
shift
NETEM="" OUT="" LOSS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --netem) NETEM=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --loss) LOSS=$2; shift 2 ;;
        *) die "unknown argument $1" ;;
    esac
done
[ "$DURATION" -ge 60 ] 2>/dev/null || die "DURATION must be at least 60 s"
TERN=${TERN_BIN:-target/release/tern}
LOAD=${TERN_LOAD_BIN:-target/release/tern-load}
[ -x "$TERN" ] || die "$TERN missing (cargo build --release, or set TERN_BIN)"
command -v curl >/dev/null || die "curl missing"
[ -x "$LOAD" ] || die "$LOAD missing (cargo build --release -p tern-bench, or set TERN_LOAD_BIN)"
TERN=$(realpath "$TERN") LOAD=$(realpath "$LOAD")
OUT=${OUT:-$(mktemp -d /tmp/tern-soak.XXXXXX)}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
SAMPLE_EVERY=10
WAVE_EVERY=30              # a churn wave starts every 30 s and is over within 20 s
WARMUP=$(( DURATION / 5 < 20 ? 20 : DURATION / 5 ))
RSS_GROWTH_PCT=5
FD_SLACK=2                 # HTTP connections may still be closing
THREAD_SLACK=4             # tokio's blocking pool keeps idle threads for 10 s
export TERN_JWT_SECRET="soak-$$-$RANDOM"

NS=""
run() { if [ -n "$NS" ]; then ip netns exec "$NS" "$@"; else "$@"; fi; }
RELAY=""
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    [ -n "$RELAY" ] && kill "$RELAY" 2>/dev/null
    wait 2>/dev/null
    [ -n "$NS" ] && ip netns del "$NS" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ -n "$NETEM" ]; then
    command -v tc >/dev/null || die "tc missing (apt-get install iproute2)"
    NS="tern-soak-$$"
    ip netns add "$NS" || die "cannot create network namespace $NS"
    ip netns exec "$NS" ip link set lo up
    # shellcheck disable=SC2086
    ip netns exec "$NS" tc qdisc add dev lo root netem $NETEM || die "tc netem $NETEM refused"
fi

cat > "$OUT/relay.toml" <<EOF
[http]
listen = "127.0.0.1:0"

[media]
port_base = 0
placement = "unbound"

[limits]
sessions_per_ip = 10000
requests_per_minute = 1000000
max_subscribers_per_stream = 1000
EOF
# Started directly (not through `run`, a function, which `&` would put in a subshell), so
# that $! is the relay itself: `ip netns exec` execs it.
if [ -n "$NS" ]; then
    ip netns exec "$NS" "$TERN" serve --config "$OUT/relay.toml" > "$OUT/relay.log" 2>&1 &
else
    "$TERN" serve --config "$OUT/relay.toml" > "$OUT/relay.log" 2>&1 &
fi
RELAY=$!
URL=""
for _ in $(seq 100); do
    URL=$(grep -m1 -o 'http=http://[0-9.:]*' "$OUT/relay.log" | cut -d= -f2)
    [ -n "$URL" ] && break
    sleep 0.2
done
[ -n "$URL" ] || die "relay did not start: $(cat "$OUT/relay.log")"
[ "$(readlink "/proc/$RELAY/exe")" = "$TERN" ] || die "cannot find the relay's pid"
echo "soak: relay pid $RELAY at $URL for ${DURATION}s (warm-up ${WARMUP}s${NETEM:+, netem $NETEM}, loss $LOSS); output in $OUT"

load() { # NAME ARGS...: one tern-load run in room soak-NAME in the background, its log and
         # exit code kept
    local name=$1 token; shift
    token=$("$TERN" token --room "soak-$name" --publish --subscribe --ttl "$(( DURATION + 600 ))s")
    ( run "$LOAD" --url "$URL" --token "$token" --room "soak-$name" --quiet \
        --json "$OUT/$name.json" "$@" > "$OUT/$name.log" 2>&1; echo $? > "$OUT/$name.rc" ) &
    PIDS+=($!)
}
# The steady mix, for the whole run.
load broadcast --scenario broadcast --publishers 2 --subscribers 4 \
    --video "${SOAK_VIDEO:-500kbps}" --duration "$(( DURATION - 5 ))s" --warmup 0s \
    --simulate-loss "$LOSS"
load conference --scenario conference --participants 3 --video 300kbps \
    --duration "$(( DURATION - 5 ))s" --warmup 0s --simulate-loss "$LOSS"

metrics() { run curl -sf --max-time 5 "$URL/metrics"; }
sum_metric() { # NAME: PromQL sum() over every series of NAME in $SCRAPE
    awk -v n="$1" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f", s }' <<< "$SCRAPE"
}
echo "t,phase,rss_kb,fds,threads,sessions_pub,sessions_sub,packets_in,packets_out,media_out,auth_failures,drops,consent_expired,batches,workers_up" > "$OUT/samples.csv"
START=$(date +%s)
# Churn starts 20 s in, during warm-up too: what the first waves allocate for good (allocator
# arenas, the blocking pool's stacks) is part of the level, not growth (the first one-hour run,
# whose waves began at the end of warm-up, rose 10 MB over its first waves and 0.5 % after).
NEXT_WAVE=$(( START + 20 ))
WAVE=0
LAST_BATCHES=0
FAILED=""
while :; do
    NOW=$(date +%s)
    T=$(( NOW - START ))
    [ "$T" -ge "$DURATION" ] && break
    if ! kill -0 "$RELAY" 2>/dev/null; then FAILED="the relay exited at ${T}s"; break; fi
    if [ "$NOW" -ge "$NEXT_WAVE" ] && [ $(( T + WAVE_EVERY )) -le "$DURATION" ]; then
        WAVE=$(( WAVE + 1 ))
        load "wave-$WAVE" --scenario audio-rooms --rooms 2 --participants 3 \
            --video 0 --duration 8s --warmup 0s --connect-timeout 8s
        WAVE_STARTED=$NOW
        NEXT_WAVE=$(( NEXT_WAVE + WAVE_EVERY ))
    fi
    # A wave is over (sessions gone) 20 s after it started: samples then are "quiet".
    PHASE=warmup
    if [ "$T" -ge "$WARMUP" ]; then
        PHASE=quiet
        [ "$WAVE" -gt 0 ] && [ $(( NOW - WAVE_STARTED )) -lt 20 ] && PHASE=churn
    fi
    SCRAPE=$(metrics) || { FAILED="/metrics did not answer at ${T}s"; break; }
    RSS=$(awk '/^VmRSS:/ { print $2 }' "/proc/$RELAY/status")
    THREADS=$(awk '/^Threads:/ { print $2 }' "/proc/$RELAY/status")
    FDS=$(ls "/proc/$RELAY/fd" | wc -l)
    BATCHES=$(sum_metric tern_batches_total)
    UP=$(sum_metric tern_worker_up)
    echo "$T,$PHASE,$RSS,$FDS,$THREADS,$(sum_metric 'tern_sessions{kind="publisher"}'),$(sum_metric 'tern_sessions{kind="subscriber"}'),$(sum_metric tern_packets_in_total),$(sum_metric tern_packets_out_total),$(sum_metric tern_media_out_total),$(sum_metric tern_auth_failures_total),$(( $(sum_metric tern_send_queue_full_total) + $(sum_metric tern_ring_full_total) + $(sum_metric tern_pool_empty_total) )),$(sum_metric tern_consent_expired_total),$BATCHES,$UP" >> "$OUT/samples.csv"
    if [ "$BATCHES" -lt "$LAST_BATCHES" ]; then FAILED="worker counters went back (a restart) at ${T}s"; break; fi
    LAST_BATCHES=$BATCHES
    WORKERS=$(grep -c '^tern_worker_up{' <<< "$SCRAPE")
    if [ "$UP" -ne "$WORKERS" ]; then FAILED="a worker died at ${T}s"; break; fi
    sleep $(( SAMPLE_EVERY - ( $(date +%s) - START ) % SAMPLE_EVERY ))
done
END_T=$(( $(date +%s) - START ))
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
PIDS=()

# Verdicts.
{
    echo "soak of ${DURATION}s, ${WAVE} churn waves${NETEM:+, netem $NETEM}, receive loss $LOSS; samples in $OUT/samples.csv"
    [ -n "$FAILED" ] && echo "FAIL: $FAILED"
    kill -0 "$RELAY" 2>/dev/null || echo "FAIL: the relay is not running at the end"
    if grep -qE 'panicked|stopped unexpectedly' "$OUT/relay.log"; then
        echo "FAIL: panic in the relay log: $(grep -m1 -E 'panicked|stopped unexpectedly' "$OUT/relay.log")"
    fi
    # No token (a JWT: base64 of '{"' twice, dot-separated) and not the signing secret in
    # anything the relay or the load wrote, after every session of the run.
    LEAKED=$(grep -lE -e 'eyJ[A-Za-z0-9_-]*\.eyJ' -e "$TERN_JWT_SECRET" "$OUT"/*.log)
    [ -n "$LEAKED" ] && echo "FAIL: a token or the JWT secret in $(tr '\n' ' ' <<< "$LEAKED")"
    for rc in "$OUT"/*.rc; do
        [ "$(cat "$rc")" = 0 ] || echo "FAIL: load run $(basename "$rc" .rc) exited $(cat "$rc"): $(tail -3 "${rc%.rc}.log" | tr '\n' ' ')"
    done
    # Quiet samples after warm-up: the first is the level the rest must keep.
    awk -F, -v growth="$RSS_GROWTH_PCT" -v fds="$FD_SLACK" -v thr="$THREAD_SLACK" '
        NR > 1 && $2 == "quiet" {
            n++
            if (n == 1) { rss0 = $3; fd0 = $4; th0 = $5; t0 = $1 }
            rss = $3; t = $1
            if ($4 > fd0 + fds) printf "FAIL: %d open fds at %ss, %d after warm-up\n", $4, $1, fd0
            if ($5 > th0 + thr) printf "FAIL: %d threads at %ss, %d after warm-up\n", $5, $1, th0
        }
        END {
            if (n < 2) { print "FAIL: fewer than two quiet samples after warm-up"; exit }
            pct = (rss - rss0) * 100 / rss0
            printf "RSS %d kB at %ss -> %d kB at %ss (%+.1f %%, limit %d %%); fds %d, threads %d after warm-up\n", rss0, t0, rss, t, pct, growth, fd0, th0
            if (pct > growth) printf "FAIL: RSS grew %.1f %% after warm-up\n", pct
        }' "$OUT/samples.csv"
    tail -1 "$OUT/samples.csv" | awk -F, '{ printf "counters at the end: %s packets in, %s out, %s media out, %s auth failures, %s drops, %s consent expiries\n", $8, $9, $10, $11, $12, $13 }'
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
if grep -q '^FAIL' "$OUT/summary.txt"; then
    echo "soak: 0 passed, 1 failed"
    exit 1
fi
echo "soak: 1 passed, 0 failed"
