#!/usr/bin/env bash
# A/B of two certkeeper builds as binding relays, steadier than the full harness
# (bench/egress.sh) on a noisy machine: the same topology and pinning (wrk and an
# upstream nginx on CPU 0, the relay on CPU 1), the two builds alternated PAIRS times,
# and the relay's user and system CPU per request read from /proc for each run.
# usage: bench/egress-ab.sh BIN_A BIN_B [PAIRS=5] [SECONDS=4] [PATH=small|64k]
# Needs: nginx, wrk, openssl (apt-get install -y nginx wrk openssl).
set -euo pipefail
A=$(realpath "$1") B=$(realpath "$2") PAIRS=${3:-5} SECS=${4:-4} ROUTE=${5:-small}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/egress-ab.XXXX)
PKI=$WORK/pki
PKI=$PKI bash "$HERE/../../shared/bench/egress/gen-pki.sh" >/dev/null
UP=18743 LISTEN=18799
mkdir -p "$WORK/up"
cat >"$WORK/up/nginx.conf" <<EOF
user root; worker_processes 1; daemon off; pid $WORK/up/nginx.pid;
error_log $WORK/up/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 10000000; keepalive_timeout 120s;
  client_body_temp_path $WORK/up/b; proxy_temp_path $WORK/up/p; fastcgi_temp_path $WORK/up/f;
  uwsgi_temp_path $WORK/up/u; scgi_temp_path $WORK/up/s;
  server {
    listen 127.0.0.1:$UP ssl;
    ssl_certificate $PKI/server.fullchain.pem; ssl_certificate_key $PKI/server.key;
    ssl_client_certificate $PKI/root.pem; ssl_verify_client on; ssl_verify_depth 3;
    location = /small { return 200 "hello from upstream\n"; }
    location = /64k { alias $WORK/up/64k.bin; }
  }
}
EOF
head -c 65536 /dev/zero | tr '\0' x >"$WORK/up/64k.bin"
setsid taskset -c 0 nginx -c "$WORK/up/nginx.conf" >/dev/null 2>&1 </dev/null &
UPID=$!
trap 'kill $UPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$UP) 2>/dev/null && break; sleep 0.1; done

run() { # BIN -> one line: name rps p99 usr sys (us per request)
  local bin=$1 h=$WORK/home.$RANDOM
  "$bin" --home "$h" init >/dev/null
  "$bin" --home "$h" import "$PKI/client-ec.bundle.pem" --name bench >/dev/null
  "$bin" --home "$h" import "$PKI/root.pem" --store root >/dev/null
  "$bin" --home "$h" bind ab --cert bench --upstream "https://127.0.0.1:$UP" \
    --listen "127.0.0.1:$LISTEN" >/dev/null
  setsid taskset -c 1 "$bin" --home "$h" agent --socket "$h/a.sock" >/dev/null 2>&1 </dev/null &
  local pid=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$LISTEN) 2>/dev/null && break; sleep 0.1; done
  taskset -c 0 wrk -t2 -c32 -d1s "http://127.0.0.1:$LISTEN/$ROUTE" >/dev/null
  local u0 s0 u1 s1 out
  read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
  out=$(taskset -c 0 wrk -t2 -c32 -d"${SECS}s" --latency "http://127.0.0.1:$LISTEN/$ROUTE")
  read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$h"
  local tick reqs
  tick=$(getconf CLK_TCK)
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  awk -v n="$2" -v r="$reqs" -v t="$tick" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) \
    -v rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
    -v p99="$(awk '$1=="99%"{print $2}' <<<"$out")" \
    'BEGIN { printf "%s %s %s %.2f %.2f\n", n, rps, p99, du*1e6/t/r, ds*1e6/t/r }'
}

{
  for _ in $(seq "$PAIRS"); do run "$A" A; run "$B" B; done
} | tee "$WORK/runs" | awk '{ printf "  %s: %s req/s, p99 %s, user %s us/req, system %s us/req\n", $1, $2, $3, $4, $5 }'
echo "medians ($ROUTE, $PAIRS pairs of ${SECS}s):"
for n in A B; do
  awk -v n=$n '$1==n' "$WORK/runs" | python3 -c '
import sys, statistics as st
rows = [l.split() for l in sys.stdin]
col = lambda i: st.median(float(r[i].rstrip("ms").rstrip("u")) for r in rows)
print("  %s: %.0f req/s, user %.2f us/req, system %.2f us/req" % (rows[0][0], col(1), col(3), col(4)))'
done
