#!/usr/bin/env bash
# One uid floods the agent (200 connections, half stuck mid-frame, four threads of
# `resolve subject:` over a home of ${ENTRIES:-5000} certificates); another granted uid
# signs meanwhile. Reports its p50/p99 signing latency quiet and under the flood, and
# the agent's RSS and descriptors before, during and after. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p certkeeper
bin=$PWD/target/release/certkeeper
work=$(mktemp -d); chmod 755 "$work"
trap 'kill "$agent" 2>/dev/null || true; rm -rf "$work"' EXIT
home=$work/home
"$bin" --home "$home" init >/dev/null
# A key for the victim, and a home of many CA certificates for the lookups to scan.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/k.pem" \
    -out "$work/c.pem" -subj /CN=victim.example -days 30 2>/dev/null
cat "$work/c.pem" "$work/k.pem" > "$work/victim.pem"
"$bin" --home "$home" import "$work/victim.pem" --name victim >/dev/null
python3 - "$work/bulk.pem" "${ENTRIES:-5000}" <<'PY'
import subprocess, sys
out, n = sys.argv[1], int(sys.argv[2])
# One key, many self-signed certificates with different subjects: cheap to make.
subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", out + ".key"], check=True)
with open(out, "w") as f:
    for i in range(n):
        pem = subprocess.run(["openssl", "req", "-x509", "-key", out + ".key", "-subj",
            f"/CN=bulk entry {i}/O=example", "-days", "30"], capture_output=True, text=True, check=True).stdout
        f.write(pem)
PY
"$bin" --home "$home" import "$work/bulk.pem" --store other >/dev/null
"$bin" --home "$home" grant victim uid:4801 >/dev/null
thumb=$("$bin" --home "$home" show victim --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["thumbprint"])')
"$bin" --home "$home" agent --socket "$work/agent.sock" 2>/dev/null &
agent=$!
while [ ! -S "$work/agent.sock" ]; do sleep 0.1; done
mkdir -p bench/results
python3 bench/agent-flood.py "$bin" "$home" "$work/agent.sock" "$thumb" 4800 4801 | tee bench/results/agent-flood.txt
