#!/usr/bin/env bash
# Path benchmarks, whole processes, in one run:
#   1. `certkeeper path REF` for a 4-element path (root, two intermediates, leaf) in a
#      home of 10,000 certificates, against
#      `openssl verify -CAfile root.pem -untrusted inter.pem leaf.pem`;
#   2. the whole x509-limbo suite through the path engine (run time, and the counts).
# Prints a table and writes bench/results/path.txt and bench/results/limbo.json.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
cargo build --release -q -p certkeeper
cargo build --release -q -p certkeeper-testkit --example make_bundle --example make_path --example limbo
CK=$PWD/target/release/certkeeper
EX=$PWD/target/release/examples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$EX/make_bundle" 9996 "$work/filler.pem"
"$EX/make_path" "$work"
home="$work/home"
"$CK" --home "$home" import "$work/filler.pem" >/dev/null 2>&1
"$CK" --home "$home" import "$work/root.pem" "$work/inter.pem" >/dev/null
cat "$work/leaf.pem" "$work/leaf.key" > "$work/leaf-with-key.pem"
"$CK" --home "$home" import "$work/leaf-with-key.pem" --name bench >/dev/null
"$CK" --home "$home" path bench >/dev/null   # must be valid (exit 0)
entries=$("$CK" --home "$home" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')

python3 - "$CK" "$work" "$home" "$RUNS" "$entries" <<'PY'
import os, statistics, subprocess, sys, time
ck, work, home, runs, entries = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
def timed(cmd):
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)
ours = timed([ck, "--home", home, "path", "bench"])
peer = timed(["openssl", "verify", "-CAfile", f"{work}/root.pem", "-untrusted", f"{work}/inter.pem", f"{work}/leaf.pem"])
text = "\n".join([
    "| measure | certkeeper | peer | ratio (certkeeper / peer) |",
    "|---|---|---|---|",
    f"| 4-element path, home of {entries} entries | {ours*1000:.1f} ms | openssl verify: {peer*1000:.1f} ms | {ours/peer:.2f}x |",
])
print(text)
os.makedirs("bench/results", exist_ok=True)
open("bench/results/path.txt", "w").write(text + "\n")
PY
"$EX/limbo" bench/results/limbo.json | tee -a bench/results/path.txt
