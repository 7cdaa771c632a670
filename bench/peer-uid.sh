#!/usr/bin/env bash
# What a binding pays to ask the kernel who connected (socket diagnostics), per new
# application connection, against the loopback connect + accept itself, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p certkeeper-agent --example peer_uid
mkdir -p bench/results
./target/release/examples/peer_uid "${CONNECTIONS:-5000}" | tee bench/results/peer-uid.txt
