#!/usr/bin/env bash
# Store benchmarks, whole processes, in one run:
#   1. import of a 1,000-certificate PEM bundle into a fresh home (target: under 1 s);
#   2. `certkeeper show REF` in a home of 10,000 entries, against the floor
#      `openssl x509 -noout -text -in one.pem` (one process parsing one certificate);
#      target: within 1.5x of the floor.
# Prints a table and writes bench/results/store.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
cargo build --release -q -p certkeeper
cargo build --release -q -p certkeeper-testkit --example make_bundle
CK=$PWD/target/release/certkeeper
MAKE=$PWD/target/release/examples/make_bundle
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$MAKE" 1000 "$work/b1000.pem"
"$MAKE" 10000 "$work/b10000.pem"
"$CK" --home "$work/big" import "$work/b10000.pem" >/dev/null
thumb=$("$CK" --home "$work/big" list --json | python3 -c 'import json,sys; print(json.load(sys.stdin)[5000]["thumbprint"])')
"$CK" --home "$work/big" export "$thumb" --format pem --out "$work/one.pem" 2>/dev/null

python3 - "$CK" "$work" "$thumb" "$RUNS" <<'PY'
import os, shutil, statistics, subprocess, sys, time
ck, work, thumb, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def timed(cmd, setup=None, n=runs):
    samples = []
    for _ in range(n):
        if setup: setup()
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)

def fresh():
    shutil.rmtree(f"{work}/fresh", ignore_errors=True)

imp = timed([ck, "--home", f"{work}/fresh", "import", f"{work}/b1000.pem"], setup=fresh, n=max(5, runs // 5))
show = timed([ck, "--home", f"{work}/big", "show", thumb[:12]])
show_json = timed([ck, "--home", f"{work}/big", "show", thumb[:12], "--json"])
floor = timed(["openssl", "x509", "-noout", "-text", "-in", f"{work}/one.pem"])
lines = [
    "| measure | median | peer (floor) | ratio | target |",
    "|---|---|---|---|---|",
    f"| import 1,000-cert PEM bundle (fresh home) | {imp*1000:.0f} ms | - | - | < 1000 ms |",
    f"| show REF, home of 10,000 | {show*1000:.1f} ms | openssl x509 -noout -text: {floor*1000:.1f} ms | {show/floor:.2f}x | <= 1.5x |",
    f"| show REF --json, home of 10,000 | {show_json*1000:.1f} ms | same | {show_json/floor:.2f}x | <= 1.5x |",
]
text = "\n".join(lines)
print(text)
os.makedirs("bench/results", exist_ok=True)
open("bench/results/store.txt", "w").write(text + "\n")
PY
