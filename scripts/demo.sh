#!/bin/sh
# The main job as the README runs it: install what the build needs when it is missing
# (scripts/test-deps.sh --build: the C compiler, pkg-config and OpenSSL's headers),
# then build and run `certkeeper demo`. Arguments go to cargo run.
set -eu
cd "$(dirname "$0")/.."
sh scripts/test-deps.sh --build
exec cargo run --release "$@" -- demo
