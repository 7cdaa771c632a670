#!/usr/bin/env bash
# Egress benchmark: runs ../shared/bench/egress (nginx, HAProxy, stunnel as
# egress proxies, same client certificate, same load, one run) with certkeeper's agent
# as the candidate. Needs: apt-get install -y nginx haproxy stunnel4 wrk.
# QUICK=1 for a smoke run. Results: $BENCH_OUT/runs/<time>/summary.md (printed).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p certkeeper
bin=$(mktemp -d)/certkeeper
cp target/release/certkeeper "$bin"
export CANDIDATE_NAME=certkeeper
export CANDIDATE_CMD="$PWD/bench/egress-candidate.sh $bin {workdir} {bundle} {ca} {upstream_url} {listen_port}"
exec bash ../shared/bench/egress/bench.sh
