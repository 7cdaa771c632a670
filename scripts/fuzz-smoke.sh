#!/bin/sh
# A short coverage-guided run of every fuzz target (fuzz/README.md), from its committed
# corpus, SECONDS each (default 10). Needs the nightly toolchain; installs cargo-fuzz
# when it is missing. New inputs go to a scratch directory, not to the committed
# corpora. Exit 1 when a target finds a crash or a failed check (its input is kept in
# fuzz/artifacts/TARGET/).
set -eu
cd "$(dirname "$0")/../fuzz"
seconds=${SECONDS_PER_TARGET:-10}
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz-smoke: no nightly toolchain (rustup toolchain install nightly); the committed corpora are still replayed by cargo test" >&2
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build -s none
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$scratch/$target"
    if ! cargo +nightly fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -max_len=8192 -print_final_stats=1 >"$scratch/$target.log" 2>&1; then
        tail -40 "$scratch/$target.log" >&2
        echo "fuzz-smoke: $target failed (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/$target.log")
    echo "fuzz-smoke: $target: $runs runs in $seconds s, no failure"
done
