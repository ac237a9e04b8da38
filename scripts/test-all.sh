#!/usr/bin/env bash
# Runs every Tern test on a fresh Debian 12 machine with Rust installed, installing first
# whatever the tests need. This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# systemd-analyze verifies the units and scores their hardening (tests/systemd-units.rs).
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

cargo test --workspace --locked
