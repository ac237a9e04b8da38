#!/usr/bin/env bash
# Runs every Tern test on a fresh Debian 12 machine with Rust installed, installing first
# whatever the tests need. This is the README's test command and what .ci/run calls.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# Nothing from Debian is needed yet; later issues add chromium, systemd, … here.
if [ ${#need_apt[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need_apt[@]}"
fi

cargo test --workspace --locked
