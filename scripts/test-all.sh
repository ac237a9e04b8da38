#!/usr/bin/env bash
# Runs every Tern test on a fresh Debian 12 machine with Rust installed, installing first
# whatever the tests need. This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# systemd-analyze verifies the units and scores their hardening (tests/systemd-units.rs).
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
# A real browser opens the demo page (tests/browser-*.rs): Debian's Chromium, driven headless by
# playwright-core from npm (pinned in tests/browser/package-lock.json).
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# And Debian's Firefox ESR beside it (tests/browser-firefox-chromium.rs), driven over WebDriver
# BiDi by puppeteer-core (pinned in the same lockfile).
[ -x /usr/bin/firefox-esr ] || need_apt+=(firefox-esr)
command -v npm >/dev/null 2>&1 || need_apt+=(nodejs npm)
# The xdp-* tests build network namespaces and veth pairs (iproute2), ping across them, check
# that no XDP program stays attached with bpftool, and drop privileges with setpriv/prlimit
# (util-linux, always present on Debian).
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v ping >/dev/null 2>&1 || need_apt+=(iputils-ping)
command -v bpftool >/dev/null 2>&1 || [ -x /usr/sbin/bpftool ] || need_apt+=(bpftool)
# tern-tune's AF_XDP checks read and set queues with ethtool (tests/tern-tune-xdp.rs).
command -v ethtool >/dev/null 2>&1 || [ -x /usr/sbin/ethtool ] || need_apt+=(ethtool)
# man renders the man pages (tests/cli-man-page.rs).
command -v man >/dev/null 2>&1 || need_apt+=(man-db)
# tests/ice-tcp-browser.rs puts Chromium in a network namespace of its own (iproute2, above) whose
# nftables output chain drops UDP to the relay.
command -v nft >/dev/null 2>&1 || need_apt+=(nftables)
# Cluster tests (tests/cluster-*.rs) start Debian's etcd themselves.
[ -x /usr/bin/etcd ] || need_apt+=(etcd-server)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

# promtool lints a live /metrics scrape and checks and unit-tests the alert rules
# (tests/metrics-promtool.rs, tests/prometheus-rules.rs). Without recommends: only the tool, no
# node exporter service beside it.
if ! command -v promtool >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "test-all: playwright-core needs Node.js 20 or later, found $(node --version)" >&2
    exit 1
fi
for pkg in playwright-core puppeteer-core; do
    if [ ! -f "tests/browser/node_modules/$pkg/package.json" ]; then
        npm ci --prefix tests/browser
        break
    fi
done

cargo test --workspace --locked

# The short soak: 60 s of tern-load (broadcast, conference and churn waves) against the debug
# binaries just built; fails on RSS drift, fds or threads not returning, a panic or a worker
# restart (bench/scripts/soak.sh; the one-hour run is in perf-reports/).
cargo build --workspace --bins --locked
bin_dir=${CARGO_TARGET_DIR:-target}/debug
TERN_BIN=$bin_dir/tern TERN_LOAD_BIN=$bin_dir/tern-load bench/scripts/soak.sh 60
