#!/usr/bin/env bash
# Agent benchmark: signatures per second through the agent (a separate
# process, over its Unix socket) against in-process signing with the same key, for
# ECDSA P-256 and RSA-2048 with 1 and 8 concurrent clients. Target at 8 clients: 0.8x.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p certkeeper
cargo build --release -q -p certkeeper-agent --example sign_bench
mkdir -p bench/results
./target/release/examples/sign_bench "$PWD/target/release/certkeeper" "${SECONDS_PER_CASE:-3}" | tee bench/results/agent.txt
