#!/usr/bin/env bash
# certkeeper as a candidate of ../shared/bench/egress: a fresh home in WORKDIR with the
# client bundle (leaf + intermediate + key) and the upstream's root, one binding, and
# the agent in the foreground serving it.
# usage: egress-candidate.sh CERTKEEPER WORKDIR BUNDLE CA UPSTREAM_URL LISTEN_PORT
set -euo pipefail
ck=$1 work=$2 bundle=$3 ca=$4 upstream=$5 port=$6
home=$work/home
"$ck" --home "$home" init >/dev/null
"$ck" --home "$home" import "$bundle" --name bench >/dev/null
"$ck" --home "$home" import "$ca" --store root >/dev/null
"$ck" --home "$home" bind bench --cert bench --upstream "$upstream" --listen "127.0.0.1:$port" >/dev/null
exec "$ck" --home "$home" agent --socket "$work/agent.sock"
