#!/bin/sh
# The tests as the README runs them: install what they need (scripts/test-deps.sh),
# then every test of the workspace. Arguments go to cargo test.
set -eu
cd "$(dirname "$0")/.."
sh scripts/test-deps.sh
exec cargo test --workspace "$@"
