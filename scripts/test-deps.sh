#!/bin/sh
# Installs what the tests run: every program (or file) in
# crates/certkeeper-testkit/tools.tsv that is missing, with apt-get, when run as root on
# Debian; otherwise says which packages to install. Then checks that the shared test
# corpora are there. Exit 0 when everything is there, 1 when something is missing.
# With --build: only what the build itself needs (the rows marked so), no corpora.
set -eu
cd "$(dirname "$0")/.."
list=crates/certkeeper-testkit/tools.tsv
# The tests also look in the sbin directories (nginx, useradd).
PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

present() {
    case "$1" in
        /*) [ -f "$1" ] ;;
        *) command -v "$1" >/dev/null 2>&1 ;;
    esac
}

only_build=false
[ "${1:-}" = --build ] && only_build=true

# "need package" for each missing need.
missing() {
    grep -v '^#' "$list" | while IFS="$(printf '\t')" read -r need package why; do
        if $only_build; then
            case "$why" in *"(the build itself)"*) ;; *) continue ;; esac
        fi
        [ -n "$need" ] || continue
        present "$need" || printf '%s %s\n' "$need" "$package"
    done
}

todo=$(missing)
if [ -n "$todo" ]; then
    packages=$(printf '%s\n' "$todo" | cut -d' ' -f2 | sort -u | tr '\n' ' ')
    if [ "$(id -u)" = 0 ] && [ -r /etc/debian_version ] && command -v apt-get >/dev/null; then
        echo "test-deps: installing $packages"
        export DEBIAN_FRONTEND=noninteractive
        # Slim Debian images leave out the man directories that the JRE's
        # post-installation step writes into.
        mkdir -p /usr/share/man/man1
        apt-get update -qq
        # shellcheck disable=SC2086 # one word per package
        apt-get install -y -qq --no-install-recommends $packages >/dev/null
        todo=$(missing)
    fi
fi
status=0
if [ -n "$todo" ]; then
    printf '%s\n' "$todo" | while read -r need package; do
        echo "test-deps: $need not found: install it with: apt-get install $package" >&2
    done
    status=1
fi

if $only_build; then
    [ "$status" = 0 ] && echo "test-deps: everything the build needs is there"
    exit "$status"
fi
corpora=${CERTKEEPER_CORPORA:-$(cd .. && pwd)/shared/corpora}
for sub in cryptography_vectors limbo/limbo.json; do
    if [ ! -e "$corpora/$sub" ]; then
        echo "test-deps: test corpus not found: $corpora/$sub (set CERTKEEPER_CORPORA to the directory holding cryptography_vectors/ and limbo/)" >&2
        status=1
    fi
done
[ "$status" = 0 ] && echo "test-deps: every tool and corpus the tests use is there"
exit "$status"
