#!/usr/bin/env bash
# A/B of two certkeeper builds as binding relays, steadier than the full harness
# (bench/egress.sh) on a noisy machine: the same topology and pinning (wrk and an
# upstream nginx on CPU 0, the relay on CPU 1), the two builds and nginx as the same
# egress proxy (configured as the harness configures it) alternated PAIRS times, the
# relay's user and system CPU per request read from /proc for each run, and each
# build's req/s against nginx's in the same round. CPU 0 carries wrk and the
# upstream and bounds req/s once the relay has time to spare, so its busy time per
# request, and the IPIs it sends to wake CPU 1, are reported beside.
# usage: bench/egress-ab.sh BIN_A BIN_B [PAIRS=5] [SECONDS=4] [PATH=small|64k]
# PROXY_QUOTA=50 caps each proxy at 50% of a core (a cgroup CPU quota), so that the
# proxy, not CPU 0, bounds req/s: how the proxies compare when they are the bottleneck.
# Needs: nginx, wrk, openssl (apt-get install -y nginx wrk openssl).
set -euo pipefail
A=$(realpath "$1") B=$(realpath "$2") PAIRS=${3:-5} SECS=${4:-4} ROUTE=${5:-small}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/egress-ab.XXXX)
PKI=$WORK/pki
PKI=$PKI bash "$HERE/../../shared/bench/egress/gen-pki.sh" >/dev/null
UP=18743 LISTEN=18799 PROXY=18798
# The lines both nginx configs (the upstream and nginx as the proxy) share, for DIR.
nginx_preamble() {
  cat <<EOF
user root; worker_processes 1; daemon off; pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 10000000;
  client_body_temp_path $1/b; proxy_temp_path $1/p; fastcgi_temp_path $1/f;
  uwsgi_temp_path $1/u; scgi_temp_path $1/s;
EOF
}
mkdir -p "$WORK/up" "$WORK/px"
{ nginx_preamble "$WORK/up"; cat <<EOF; } >"$WORK/up/nginx.conf"
  keepalive_timeout 120s;
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
{ nginx_preamble "$WORK/px"; cat <<EOF; } >"$WORK/px/nginx.conf"
  upstream partner { server 127.0.0.1:$UP; keepalive 64; keepalive_timeout 120s; }
  server {
    listen 127.0.0.1:$PROXY;
    location / {
      proxy_pass https://partner; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_ssl_certificate $PKI/client-ec.fullchain.pem;
      proxy_ssl_certificate_key $PKI/client-ec.key;
      proxy_ssl_trusted_certificate $PKI/root.pem; proxy_ssl_verify on;
      proxy_ssl_verify_depth 3; proxy_ssl_name localhost; proxy_ssl_session_reuse on;
      proxy_buffer_size 16k; proxy_buffers 8 16k;
    }
  }
}
EOF
setsid taskset -c 0 nginx -c "$WORK/up/nginx.conf" >/dev/null 2>&1 </dev/null &
UPID=$!
CAP=
if [[ -n ${PROXY_QUOTA:-} ]]; then
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then # cgroup v2
    CAP=/sys/fs/cgroup/egress-ab.$$
    mkdir "$CAP" && echo "$((PROXY_QUOTA * 100)) 10000" >"$CAP/cpu.max"
  else # cgroup v1
    CAP=/sys/fs/cgroup/cpu/egress-ab.$$
    mkdir "$CAP" && echo 10000 >"$CAP/cpu.cfs_period_us" &&
      echo "$((PROXY_QUOTA * 100))" >"$CAP/cpu.cfs_quota_us"
  fi
fi
cap() { [[ -z $CAP ]] || echo "$1" >"$CAP/cgroup.procs"; }
trap 'kill $UPID 2>/dev/null; rm -rf "$WORK"; [[ -z $CAP ]] || rmdir "$CAP"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$UP) 2>/dev/null && break; sleep 0.1; done

# CPU 0's busy time (all of it: wrk, the upstream, their kernel work) and the
# interrupts that woke the relay's CPU 1 from idle (function-call IPIs), summed over
# the run; the relay's req/s in this topology is bounded by the first.
cpu0_and_ipis() {
  awk '$1 == "cpu0" { printf "%d ", $2 + $3 + $4 + $7 + $8 }' /proc/stat
  awk '$1 == "CAL:" { printf "%d\n", $3 }' /proc/interrupts
}

measure() { # PID PORT NAME -> one line: name rps p99 usr sys cpu0 ipis (per request)
  local pid=$1 port=$2 name=$3
  taskset -c 0 wrk -t2 -c32 -d1s "http://127.0.0.1:$port/$ROUTE" >/dev/null
  local u0 s0 u1 s1 c0 c1 i0 i1 out
  read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
  read -r c0 i0 < <(cpu0_and_ipis)
  out=$(taskset -c 0 wrk -t2 -c32 -d"${SECS}s" --latency "http://127.0.0.1:$port/$ROUTE")
  read -r c1 i1 < <(cpu0_and_ipis)
  read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
  local tick reqs
  tick=$(getconf CLK_TCK)
  reqs=$(awk '/requests in/{print $1}' <<<"$out")
  awk -v n="$name" -v r="$reqs" -v t="$tick" -v du=$((u1 - u0)) -v ds=$((s1 - s0)) \
    -v dc=$((c1 - c0)) -v di=$((i1 - i0)) \
    -v rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")" \
    -v p99="$(awk '$1=="99%"{print $2}' <<<"$out")" \
    'BEGIN { printf "%s %s %s %.2f %.2f %.2f %.3f\n", n, rps, p99, du*1e6/t/r, ds*1e6/t/r, dc*1e6/t/r, di/r }'
}

run() { # BIN NAME: a certkeeper build as the relay
  local bin=$1 h=$WORK/home.$RANDOM
  "$bin" --home "$h" init >/dev/null
  "$bin" --home "$h" import "$PKI/client-ec.bundle.pem" --name bench >/dev/null
  "$bin" --home "$h" import "$PKI/root.pem" --store root >/dev/null
  "$bin" --home "$h" bind ab --cert bench --upstream "https://127.0.0.1:$UP" \
    --listen "127.0.0.1:$LISTEN" >/dev/null
  setsid taskset -c 1 "$bin" --home "$h" agent --socket "$h/a.sock" >/dev/null 2>&1 </dev/null &
  local pid=$!
  cap "$pid"
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$LISTEN) 2>/dev/null && break; sleep 0.1; done
  measure "$pid" "$LISTEN" "$2"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$h"
}

run_nginx() { # nginx as the same egress proxy, its one worker measured
  setsid taskset -c 1 nginx -c "$WORK/px/nginx.conf" >/dev/null 2>&1 </dev/null &
  local master=$! worker=
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$PROXY) 2>/dev/null && break; sleep 0.1; done
  for _ in $(seq 50); do worker=$(pgrep -P "$master" | head -1) && [[ -n $worker ]] && break; sleep 0.1; done
  cap "$worker"
  measure "$worker" "$PROXY" N
  kill "$master"; wait "$master" 2>/dev/null || true
}

{
  for _ in $(seq "$PAIRS"); do run "$A" A; run "$B" B; run_nginx; done
} | tee "$WORK/runs" | awk '{ printf "  %s: %s req/s, p99 %s, user %s us/req, system %s us/req, CPU 0 %s us/req, IPIs to CPU 1 %s/req\n", $1, $2, $3, $4, $5, $6, $7 }'
echo "medians ($ROUTE, $PAIRS rounds of ${SECS}s${PROXY_QUOTA:+, each proxy capped at $PROXY_QUOTA% of a core}; N = nginx as the same proxy):"
python3 - "$WORK/runs" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
num = lambda v: float(v.rstrip("ms").rstrip("u"))
def ms(v):  # wrk's latency: 850.00us, 1.99ms, 1.02s
    for unit, scale in (("us", 1e-3), ("ms", 1.0), ("s", 1e3)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * scale
    return float(v)
rounds = [rows[i:i + 3] for i in range(0, len(rows) - 2, 3)]
for name in "ABN":
    mine = [r for r in rows if r[0] == name]
    line = ("  %s: %.0f req/s, p99 %.2f ms, user %.2f us/req, system %.2f us/req, "
            "CPU 0 %.2f us/req, IPIs to CPU 1 %.3f/req") % (
        name, st.median(num(r[1]) for r in mine), st.median(ms(r[2]) for r in mine),
        st.median(num(r[3]) for r in mine), st.median(num(r[4]) for r in mine),
        st.median(num(r[5]) for r in mine), st.median(num(r[6]) for r in mine))
    if name != "N":
        ratios = [num(next(x for x in r if x[0] == name)[1]) / num(r[2][1]) for r in rounds]
        line += ", req/s x nginx %.3f (rounds: %s)" % (
            st.median(ratios), " ".join("%.2f" % x for x in ratios))
    print(line)
PY
