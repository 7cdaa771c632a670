#!/usr/bin/env bash
# Soak of a binding: steady application load through certkeeper's agent for
# SOAK_SECONDS (default 600) while the partner behind the binding misbehaves on a
# schedule (bench/soak.py: resets mid-answer, stalls past the upstream timeout,
# close_notify mid-answer and handshake alerts, quick idle closes, restarts).
#
# Passes when: no answer reaches the wrong request; every complete 200 is the right
# one, byte for byte; every failure the applications see is a 502 or 504 whose body
# says why ("certkeeper binding soak: ..."), or a 200 cut off visibly (the partner
# broke off mid-answer); no request takes longer than SOAK_BOUND seconds, and no 200
# comes later than the upstream timeout allows; the agent's RSS and open descriptors
# stay flat after the warm-up (sampled every 5 s).
#
# usage: bench/soak.sh            (needs python3 and openssl; no build: it runs
#                                 $CERTKEEPER, default target/release/certkeeper)
#        bench/soak.sh repro      (needs curl) instead of the soak, one request per case
#                                 the soak checks: answers the partner cuts off, one
#                                 per framing and HTTP version, and a POST whose
#                                 partner holds its answer past the upstream timeout;
#                                 says for each whether the application got what the
#                                 criteria ask (exit 1 if not for any).
# env:   SOAK_SECONDS=600 SOAK_RATE=150 (requests/s) SOAK_CLIENTS=9 SOAK_PHASE=30
#        (seconds per partner phase) SOAK_TIMEOUT=3 (the home's upstream_timeout)
#        SOAK_WARMUP=60 SOAK_BOUND=15 SOAK_RANDOM=1 SOAK_UNFRAMED=1 (0: no partner
#        answers without framing and no HTTP/1.0 application, whose cut answers
#        certkeeper cannot show as cut today: see `bench/soak.sh repro`)
# out:   bench/results/soak-<time>/summary.md (printed) and the raw files beside it.
# Exit:  0 PASS, 1 FAIL, 2 could not set up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ck=${CERTKEEPER:-$root/target/release/certkeeper}
seconds=${SOAK_SECONDS:-600}
rate=${SOAK_RATE:-150}
clients=${SOAK_CLIENTS:-9}
unframed=${SOAK_UNFRAMED:-1}
phase=${SOAK_PHASE:-30}
timeout=${SOAK_TIMEOUT:-3}
bound=${SOAK_BOUND:-15}
random=${SOAK_RANDOM:-1}
warmup=${SOAK_WARMUP:-$((seconds / 4 < 60 ? seconds / 4 : 60))}
py="python3 $root/bench/soak.py"

[[ -x $ck ]] || { echo "soak: no certkeeper binary at $ck (set CERTKEEPER)" >&2; exit 2; }
out=$root/bench/results/soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$out"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/certkeeper-soak.XXXXXX")
partner_pid='' agent_pid='' load_pid=''
# A copy, so that a rebuild during the run does not change the binary under test.
cp "$ck" "$tmp/certkeeper"
{ sha256sum "$ck"; "$ck" --version; } >>"$out/setup.log" 2>&1 || true
ck=$tmp/certkeeper

stop() { # pid seconds: TERM, then KILL after the bound; says whether it ended in time
  local pid=$1 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  return 1
}
cleanup() {
  stop "$load_pid" 5 || true
  stop "$partner_pid" 5 || true
  stop "$agent_pid" 15 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- PKI: a test CA, the partner's certificate (127.0.0.1, localhost), a client
# certificate with its key as one PEM bundle.
pki=$tmp/pki
mkdir -p "$pki"
(
  cd "$pki"
  key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  key ca.key
  openssl req -new -x509 -key ca.key -sha256 -days 30 -subj "/CN=certkeeper soak test CA" \
    -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem 2>/dev/null
  leaf() { # name CN extensions...
    local n=$1 cn=$2; shift 2
    key "$n.key"
    openssl req -new -key "$n.key" -subj "/CN=$cn" -out "$n.csr" 2>/dev/null
    printf '%s\n' "basicConstraints=critical,CA:false" "$@" >"$n.ext"
    openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
      -sha256 -days 30 -extfile "$n.ext" -out "$n.pem" 2>/dev/null
  }
  leaf server localhost "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" \
    "subjectAltName=DNS:localhost,IP:127.0.0.1"
  leaf client soak-client "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
  cat client.pem client.key >client-bundle.pem
)

ports=$(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
read -r upstream_port listen_port <<<"$ports"

# ---- the home and the binding
home=$tmp/home
ckh() { "$ck" --home "$home" "$@"; }
{
  ckh init
  ckh import "$pki/client-bundle.pem" --name soak-client
  ckh import "$pki/ca.pem" --store root
  ckh config upstream_timeout "$timeout"
  ckh bind soak --cert soak-client --upstream "https://127.0.0.1:$upstream_port" \
    --listen "127.0.0.1:$listen_port"
} >>"$out/setup.log" 2>&1 || { echo "soak: setting up the home failed:" >&2; cat "$out/setup.log" >&2; exit 2; }

# ---- partner, agent
$py partner --port "$upstream_port" --cert "$pki/server.pem" --key "$pki/server.key" \
  --ca "$pki/ca.pem" --t0-file "$out/t0" --out "$out" --phase "$phase" --random "$random" \
  --stall $((timeout + 2)) >"$out/partner.log" 2>&1 &
partner_pid=$!
"$ck" --home "$home" agent --socket "$tmp/agent.sock" >"$out/agent.log" 2>&1 &
agent_pid=$!

if ! $py probe --port "$listen_port" --binding soak --wait 30 >>"$out/setup.log" 2>&1; then
  echo "soak: the binding never answered:" >&2
  tail -5 "$out/setup.log" "$out/agent.log" "$out/partner.log" >&2
  exit 2
fi

if [[ ${1:-} == repro ]]; then
  # No t0 file: the partner stays in its normal phase and misbehaves only as each
  # request's X-Soak-Action says.
  # HTTP version, answer framing, what the partner does, where it cuts (body bytes
  # of its framing sent: 30000 is half way)
  size=60000 n=0 wrong=0
  for case in "1.1 cl reset_mid 30000" "1.1 chunked reset_mid 30000" "1.1 close reset_mid 30000" \
    "1.0 cl reset_mid 30000" "1.0 chunked reset_mid 30000" "1.0 chunked notify_mid 30000" \
    "1.0 close reset_mid 30000" "1.1 close stall_mid 30000" "1.0 chunked stall_mid 30000" \
    "1.1 cl reset_mid 0" "1.1 chunked notify_mid 0" "1.1 cl stall_mid 0"; do
    read -r version enc action cut <<<"$case"
    n=$((n + 1)) id=cut-0-$n rc=0
    rm -f "$tmp/body"
    args=(-sS -o "$tmp/body" -w '%{http_code}' -H "X-Soak-Id: $id" -H "X-Soak-Action: $action"
      -H "X-Soak-Cut: $cut")
    [[ $version == 1.0 ]] && args+=(-0)
    code=$(curl "${args[@]}" "http://127.0.0.1:$listen_port/soak/$id?size=$size&enc=$enc" \
      2>"$tmp/err") || rc=$?
    got=$(stat -c %s "$tmp/body" 2>/dev/null || echo 0)
    if [[ $rc == 0 && ($code == 502 || $code == 504) ]] && grep -q '^certkeeper binding ' "$tmp/body"; then
      verdict="ok: a $code that says why: $(head -c 120 "$tmp/body" | tr -d '\n')"
    elif [[ $rc == 0 && $got -lt $size ]]; then
      verdict="WRONG: curl exit 0, a whole-looking $code of $got bytes"
      wrong=$((wrong + 1))
    elif [[ $code == 000 ]]; then
      verdict="WRONG: no answer at all, not even a 502 (curl exit $rc: $(tr -d '\n' <"$tmp/err"))"
      wrong=$((wrong + 1))
    else
      verdict="ok: the cut shows (curl exit $rc: $(tr -d '\n' <"$tmp/err"))"
    fi
    printf 'HTTP/%s application, answer %-7s %-10s after %5d body bytes -> got %5s of %d; %s\n' \
      "$version" "$enc" "$action" "$cut" "$got" "$size" "$verdict"
  done
  # A POST whose body comes after its head (curl sends the head, then the body when
  # the pipe has it), and a partner that holds its answer for upstream_timeout + 2 s:
  # the application must get a 504 after upstream_timeout seconds.
  n=$((n + 1)) id=cut-0-$n rc=0
  rm -f "$tmp/body"
  result=$({ sleep 0.3; printf '%s|x' "$id"; } | curl -sS -o "$tmp/body" -w '%{http_code} %{time_total}' \
    -X POST -T - -H 'Expect:' -H "X-Soak-Id: $id" -H "X-Soak-Action: stall" \
    "http://127.0.0.1:$listen_port/soak/$id?size=100&enc=cl" 2>"$tmp/err") || rc=$?
  read -r code took <<<"$result"
  if [[ $code == 504 ]] && (($(printf '%.0f' "$took") <= timeout + 1)); then
    verdict="ok: 504 after $took s"
  else
    verdict="WRONG: $code after $took s, not a 504 after ${timeout} s (curl exit $rc)"
    wrong=$((wrong + 1))
  fi
  printf 'HTTP/1.1 application, POST, body after the head, partner holds the answer %d s -> %s\n' \
    $((timeout + 2)) "$verdict"
  echo "relay log:"
  sed 's/^/  /' "$out/agent.log"
  ((wrong == 0)) || exit 1
  exit 0
fi

echo "soak: ${seconds} s at ${rate} requests/s, ${clients} clients, partner phases of ${phase} s;" \
  "agent pid $agent_pid; results in $out" >&2
python3 -c 'import time; print("%.3f" % (time.time() + 1))' >"$out/t0"
$py load --port "$listen_port" --binding soak --t0-file "$out/t0" --duration "$seconds" \
  --rate "$rate" --clients "$clients" --phase "$phase" --bound "$bound" --random "$random" \
  --agent-pid "$agent_pid" --out "$out" --unframed "$unframed" --timeout "$timeout" --progress &
load_pid=$!
wait "$load_pid" || true
load_pid=''

# ---- stop: the partner writes its totals; the agent must still be running, and
# must stop on SIGTERM within its 10 s drain.
stop "$partner_pid" 10 || echo "soak: the partner did not stop on SIGTERM" >&2
partner_pid=''
alive=0
if kill -0 "$agent_pid" 2>/dev/null; then alive=1; fi
t=$(date +%s%N)
if ! stop "$agent_pid" 15; then
  echo "agent: did not stop within 15 s of SIGTERM (killed)" >>"$out/agent.log"
  alive=0
fi
agent_pid=''
echo "agent stopped $((($(date +%s%N) - t) / 1000000)) ms after SIGTERM" >>"$out/setup.log"

set +e
$py report "$out" --phase "$phase" --warmup "$warmup" --timeout "$timeout" --bound "$bound" \
  --agent-alive "$alive"
rc=$?
exit $((rc == 0 ? 0 : 1))
