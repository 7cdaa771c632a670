#!/usr/bin/env bash
# The attacks on the bindings' relay (attacks.py), against a partner set up here: a PKI, Debian's
# nginx (one server with HTTP/2, one HTTP/1.1 only, both with ssl_verify_client on) with a backend
# that records what it parsed, partner_h1.py and partner_h2.py, a home with one binding to each,
# and the agent. Everything lives in one temporary directory, removed at the end.
# usage: run.sh CERTKEEPER [ATTACK...]    (ports RA_BASE+1..+144 on loopback, RA_BASE=18400)
#        RA_HOLD=1 run.sh CERTKEEPER       (set up, print how to run attacks.py by hand, wait)
# Run as root: some attacks run their attacker as uid 65534 (setpriv), granted the key here,
# and h2-uids / h2-dial-queue grant (then revoke) uids 61001 and up.
# Needs nginx, openssl, python3; partner_h2.py needs python's h2 (installed into a venv in the
# temporary directory when missing; without it the attack on that partner is skipped).
set -euo pipefail
ck=$(realpath "$1"); shift
src=$(cd "$(dirname "$0")" && pwd)
base=${RA_BASE:-18400}
dir=$(mktemp -d /tmp/relay-attack.XXXXXX)
chmod 755 "$dir"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -f $dir/partner_h1.pid ]] && kill "$(cat "$dir/partner_h1.pid")" 2>/dev/null || true
    [[ -f $dir/ngx/nginx.pid ]] && kill "$(cat "$dir/ngx/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
export RA_DIR=$dir RA_SRC=$src
export RA_H2=$((base + 143)) RA_H1=$((base + 144)) RA_P1=$((base + 101)) RA_P2=$((base + 102))
export RA_P1_UP=$((base + 1)) RA_P2_UP=$((base + 2))
h2up=$((base + 2)) ngx2=$((base + 43)) ngx1=$((base + 44)) backend=$((base + 90))

cd "$dir"
ec() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }
ec -x509 -keyout ca.key -out ca.pem -days 2 -subj "/CN=relay-attack CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
ec -keyout srv.key -out srv.csr -subj "/CN=127.0.0.1"
printf "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n" > srv.ext
openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile srv.ext 2>/dev/null
ec -keyout cli.key -out cli.csr -subj "/CN=relay-attack client"
printf "extendedKeyUsage=clientAuth\n" > cli.ext
openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cli.pem -days 2 -extfile cli.ext 2>/dev/null
openssl pkcs12 -export -in cli.pem -inkey cli.key -certfile ca.pem -out cli.pfx -passout pass:

mkdir -p ngx/logs ngx/html
echo hello > ngx/html/index.html
head -c 3000000 /dev/urandom > ngx/html/big.bin
head -c 20000000 /dev/zero > ngx/html/huge.bin
chmod -R a+rX ngx/html
cat > ngx/nginx.conf <<CONF
worker_processes 1;
daemon off;
pid $dir/ngx/nginx.pid;
error_log $dir/ngx/logs/error.log info;
events { worker_connections 2048; }
http {
  access_log off;
  log_format parsed '\$server_port c=\$connection n=\$connection_requests "\$request" cl=\$content_length st=\$status';
  client_body_temp_path $dir/ngx/body; proxy_temp_path $dir/ngx/proxy;
  fastcgi_temp_path $dir/ngx/fcgi; uwsgi_temp_path $dir/ngx/uwsgi; scgi_temp_path $dir/ngx/scgi;
  ssl_certificate $dir/srv.pem; ssl_certificate_key $dir/srv.key;
  ssl_client_certificate $dir/ca.pem; ssl_verify_client on;
  root $dir/ngx/html;
  server {
    listen 127.0.0.1:$ngx2 ssl http2;
    access_log $dir/ngx/logs/parsed.log parsed;
    # The same files with no content-length (SSI drops it): chunked over HTTP/1.1.
    location /nocl/ { alias $dir/ngx/html/; ssi on; ssi_types *; }
    location = /early { return 200 "early\n"; }
    location /be/ { proxy_pass http://127.0.0.1:$backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$ngx1 ssl;
    access_log $dir/ngx/logs/parsed.log parsed;
    location /nocl/ { alias $dir/ngx/html/; ssi on; ssi_types *; }
    location = /early { return 200 "early\n"; }
    location /be/ { proxy_pass http://127.0.0.1:$backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nice nginx -c "$dir/ngx/nginx.conf" -p "$dir/ngx" >/dev/null 2>&1 &
nice python3 "$src/backend.py" "$backend" >/dev/null 2>&1 & pids+=($!)
nice python3 "$src/partner_h1.py" "$RA_P1_UP" 4096 >/dev/null 2>&1 & echo $! > partner_h1.pid
py_h2=python3
if ! python3 -c 'import h2' 2>/dev/null; then
    if python3 -m venv venv >/dev/null 2>&1 && venv/bin/pip install -q h2 >/dev/null 2>&1; then
        py_h2=$dir/venv/bin/python
    else
        py_h2=
    fi
fi
[[ -n $py_h2 ]] && { nice "$py_h2" "$src/partner_h2.py" "$h2up" >/dev/null 2>&1 & pids+=($!); }

home=$dir/home
"$ck" --home "$home" init >/dev/null
"$ck" --home "$home" import cli.pfx --name cli >/dev/null
"$ck" --home "$home" import ca.pem --store root >/dev/null
# A second application uid (nobody), so that attacker and victim can be different uids.
"$ck" --home "$home" grant cli uid:65534 >/dev/null
"$ck" --home "$home" bind h2 --cert cli --upstream "https://127.0.0.1:$ngx2" --listen "127.0.0.1:$RA_H2" >/dev/null
"$ck" --home "$home" bind h1 --cert cli --upstream "https://127.0.0.1:$ngx1" --listen "127.0.0.1:$RA_H1" >/dev/null
"$ck" --home "$home" bind p1 --cert cli --upstream "https://127.0.0.1:$RA_P1_UP" --listen "127.0.0.1:$RA_P1" >/dev/null
"$ck" --home "$home" bind p2 --cert cli --upstream "https://127.0.0.1:$h2up" --listen "127.0.0.1:$RA_P2" >/dev/null
"$ck" --home "$home" config client_timeout 3 >/dev/null
"$ck" --home "$home" config upstream_timeout 3 >/dev/null
"$ck" --home "$home" agent --socket "$dir/agent.sock" >agent.log 2>&1 & pids+=($!)
sleep 2

# The attacks that run as uid 65534 need a python it can run (not one under /root).
export RA_CK=$ck RA_HOME=$home RA_NOBODY_PY=${RA_NOBODY_PY:-/usr/bin/python3} RA_AGENT_PID=${pids[-1]}
if [[ -n ${RA_HOLD:-} ]]; then
    # Keeps the set-up until stopped (TERM or INT), for running attacks.py by hand.
    export -p | grep -E ' RA_' > env
    echo "ready: . $dir/env; python3 $src/attacks.py ATTACK...  (stop: kill $$)"
    sleep infinity & pids+=($!)
    wait $!
fi
attacks=("$@")
if [[ ${#attacks[@]} -eq 0 ]]; then
    attacks=(smuggle smuggle-xuid h2-unread h2-streams h2-bighdr h2-xuid h2-uids h2-dial-queue slow-upload
             slow-reader stale-error h2-goaway hostile-h1)
    [[ -n $py_h2 ]] && attacks+=(h2-rst-noerror)
fi
python3 "$src/attacks.py" "${attacks[@]}"
echo "===== the agent's log"
cat agent.log
