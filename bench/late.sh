#!/usr/bin/env bash
# Partners that ask for the client certificate late: the CPU a binding spends per
# request, and per request that needs a full upstream handshake, through
# certkeeper to Debian's Apache asking late (TLS 1.2 renegotiation, TLS 1.3
# post-handshake authentication, served by certkeeper's OpenSSL path) and up front
# (served by rustls), against nginx proxying to the same partners with the same
# client certificate, in one run.
#
# CPU is the proxy process's own (all its threads, from /proc/PID/task/*/schedstat,
# in nanoseconds), divided by the requests it answered; the load is one sequential
# keep-alive client (python3), whose CPU is not counted, so a 2-core machine judges
# these figures. Needs: apt-get install -y apache2 nginx python3 openssl.
# N=requests per case (default 2000), ROUNDS=rounds (default 3; each case's proxies
# are measured in turn every round, and the median is shown). OLD=path to an earlier certkeeper binary: its
# agent serves the same bindings too, in the same run (the "before" column: the
# rustls path must not get slower). Prints a table; exit 1 if a case failed.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-2000}
cargo build --release -q -p certkeeper
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] && echo "late.sh: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
bin="$work/certkeeper"
cp target/release/certkeeper "$bin"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done; echo "port $1 never opened" >&2; return 1; }

# The PKI: a server root and a server certificate for localhost; a client CA and
# the client certificate both proxies present.
cd "$work"
root() { # name subject: a self-signed P-256 CA
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.pem" 2>/dev/null
}
issue() { # name subject ca extension: a P-256 certificate issued by ca
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    printf '%s\n' "$4" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -days 2 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
root server-root "Bench Server Root"
issue server localhost server-root "subjectAltName=DNS:localhost"
root client-ca "Bench Client CA"
issue client "bench client" client-ca "extendedKeyUsage=clientAuth"
chmod 644 ./*.pem
cd - >/dev/null

# One Apache per partner: where it asks (late: in <Location /secure/>; upfront: in the
# handshake), the TLS version, and whether it keeps connections alive (off: every
# request is a new upstream connection with a full handshake; session caches and
# tickets are off for everyone).
declare -A partner
apache() { # name tls ask keepalive: sets partner[name] to its port
    local name=$1 tls=$2 ask=$3 keepalive=$4 d="$work/apache-$1" port
    port=$(free_port)
    mkdir -p "$d/docs/secure"
    chmod -R 755 "$d"
    printf 'ok\n' >"$d/docs/secure/index.txt"
    local server_verify="SSLVerifyClient none" location="SSLVerifyClient require"
    if [ "$ask" = upfront ]; then server_verify="SSLVerifyClient require"; location=""; fi
    cat >"$d/httpd.conf" <<EOF
ServerRoot $d
ServerName localhost
DefaultRuntimeDir $d
PidFile $d/apache2.pid
Listen 127.0.0.1:$port
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so
User www-data
Group www-data
ErrorLog $d/error.log
LogLevel ${APACHE_LOG_LEVEL:-warn}
DocumentRoot $d/docs
DirectoryIndex index.txt
KeepAlive $keepalive
MaxKeepAliveRequests 0
<Directory />
  Require all granted
</Directory>
SSLEngine on
SSLSessionCache none
SSLSessionTickets off
SSLCertificateFile $work/server.pem
SSLCertificateKeyFile $work/server.key
SSLCACertificateFile $work/client-ca.pem
SSLVerifyDepth 2
SSLProtocol -all +$tls
$server_verify
<Location /secure/>
  $location
</Location>
EOF
    apache2 -d "$d" -f "$d/httpd.conf" -DFOREGROUND >"$d/stderr.log" 2>&1 &
    pids+=($!)
    wait_port "$port" || { cat "$d/error.log" "$d/stderr.log" >&2; exit 1; }
    partner[$name]=$port
}

cases=()
for tls in TLSv1.3 TLSv1.2; do
    for ask in upfront late; do
        for keepalive in On Off; do
            name="${ask}-${tls#TLSv}-$( [ $keepalive = On ] && echo reuse || echo handshake )"
            [[ "$name" =~ ${ONLY:-.} ]] || continue
            apache "$name" "$tls" "$ask" "$keepalive"
            cases+=("$name")
            # curl (OpenSSL) reaches it: the partner is set up right.
            got=$(curl -sS --max-time 10 --cert "$work/client.pem" --key "$work/client.key" \
                --cacert "$work/server-root.pem" "https://localhost:${partner[$name]}/secure/" || true)
            [ "$got" = ok ] || { echo "late.sh: curl does not reach $name: $got" >&2; exit 1; }
        done
    done
done

# certkeeper: a home, the client certificate, the server root, one binding per partner.
export CERTKEEPER_HOME="$work/home"
"$bin" init >/dev/null
cat "$work/client.pem" "$work/client.key" >"$work/client-bundle.pem"
"$bin" import "$work/client-bundle.pem" --name bench >/dev/null
"$bin" import "$work/client-ca.pem" >/dev/null
"$bin" import "$work/server-root.pem" --store root >/dev/null
declare -A ck_port nginx_port
for name in "${cases[@]}"; do
    ck_port[$name]=$(free_port)
    "$bin" bind "$name" --cert bench --upstream "https://localhost:${partner[$name]}" \
        --listen "127.0.0.1:${ck_port[$name]}" >/dev/null
done
"$bin" agent --socket "$work/agent.sock" >"$work/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
# The earlier binary, on a home of its own with the same bindings on other ports.
declare -A old_port
if [ -n "${OLD:-}" ]; then
    cp "$OLD" "$work/certkeeper-old"
    old_home="$work/home-old"
    CERTKEEPER_HOME=$old_home "$work/certkeeper-old" init >/dev/null
    CERTKEEPER_HOME=$old_home "$work/certkeeper-old" import "$work/client-bundle.pem" --name bench >/dev/null
    CERTKEEPER_HOME=$old_home "$work/certkeeper-old" import "$work/client-ca.pem" >/dev/null
    CERTKEEPER_HOME=$old_home "$work/certkeeper-old" import "$work/server-root.pem" --store root >/dev/null
    for name in "${cases[@]}"; do
        old_port[$name]=$(free_port)
        CERTKEEPER_HOME=$old_home "$work/certkeeper-old" bind "$name" --cert bench \
            --upstream "https://localhost:${partner[$name]}" --listen "127.0.0.1:${old_port[$name]}" >/dev/null
    done
    CERTKEEPER_HOME=$old_home "$work/certkeeper-old" agent --socket "$work/agent-old.sock" \
        >"$work/agent-old.log" 2>&1 &
    old_agent=$!
    pids+=("$old_agent")
fi

# nginx: one worker, no master (one process to measure), the same certificate.
mkdir -p "$work/nginx"
{
    echo "daemon off; master_process off; worker_processes 1; pid $work/nginx/pid; error_log $work/nginx/error.log;"
    echo "events { worker_connections 1024; }"
    echo "http { access_log off; client_body_temp_path $work/nginx/t1; proxy_temp_path $work/nginx/t2;"
    echo "  fastcgi_temp_path $work/nginx/t3; uwsgi_temp_path $work/nginx/t4; scgi_temp_path $work/nginx/t5;"
    for name in "${cases[@]}"; do
        nginx_port[$name]=$(free_port)
        echo "  upstream u-$name { server 127.0.0.1:${partner[$name]}; keepalive 16; }"
        echo "  server { listen 127.0.0.1:${nginx_port[$name]}; location / {"
        echo "    proxy_pass https://u-$name; proxy_http_version 1.1; proxy_set_header Connection \"\";"
        echo "    proxy_set_header Host localhost; proxy_ssl_server_name on; proxy_ssl_name localhost;"
        echo "    proxy_ssl_certificate $work/client.pem; proxy_ssl_certificate_key $work/client.key;"
        echo "    proxy_ssl_trusted_certificate $work/server-root.pem; proxy_ssl_verify on;"
        echo "    proxy_ssl_protocols TLSv1.2 TLSv1.3; } }"
    done
    echo "}"
} >"$work/nginx/nginx.conf"
nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" &
nginx=$!
pids+=("$nginx")
for name in "${cases[@]}"; do wait_port "${ck_port[$name]}"; wait_port "${nginx_port[$name]}"; done

cpu_ns() { cat /proc/"$1"/task/*/schedstat | awk '{ s += $1 } END { print s }'; }
# N sequential keep-alive GETs of /secure/; prints how many answered 200 "ok".
load() {
    python3 - "$1" "$2" <<'EOF'
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
ok = failed = 0
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for _ in range(n):
    try:
        conn.request("GET", "/secure/")
        r = conn.getresponse()
        body = r.read()
        good = r.status == 200 and body == b"ok\n"
    except Exception:
        good = False
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    ok += good
    failed = 0 if good else failed + 1
    if failed == 3:
        break  # this proxy does not reach this partner
print(ok)
EOF
}
measure() { # pid port -> "µs-per-request ok"
    local before after ok
    ok=$(load "$2" 50) # warm: pools, the switch to OpenSSL, nginx's keepalive
    if [ "$ok" = 0 ]; then echo "- 0"; return; fi
    before=$(cpu_ns "$1")
    ok=$(load "$2" "$N")
    after=$(cpu_ns "$1")
    if [ "$ok" = 0 ]; then echo "- 0"; return; fi
    awk -v b="$before" -v a="$after" -v n="$ok" -v ok="$ok" 'BEGIN { printf "%.1f %d\n", (a - b) / n / 1000, ok }'
}

ROUNDS=${ROUNDS:-3}
median() { tr ' ' '\n' | { grep -v '^-*$' || true; } | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else print v[int((NR + 1) / 2)] }'; }
ratio() { awk -v c="$1" -v g="$2" 'BEGIN { if (c == "-" || g == "-" || g == 0) print "-"; else printf "%.2fx", c / g }'; }
failed=0
printf '\n%-22s %14s %14s %8s %14s %8s   %s\n' "partner (asks-TLS-mode)" "certkeeper µs" "nginx µs" "ratio" "before µs" "ratio" \
    "answered in the last round (certkeeper / nginx / before, of $N)"
for name in "${cases[@]}"; do
    cks="" ngs="" olds="" old_ok="-"
    for _ in $(seq "$ROUNDS"); do
        read -r ck ck_ok < <(measure "$agent" "${ck_port[$name]}")
        read -r ng ng_ok < <(measure "$nginx" "${nginx_port[$name]}")
        cks+=" $ck" ngs+=" $ng"
        if [ -n "${OLD:-}" ]; then
            read -r old old_ok < <(measure "$old_agent" "${old_port[$name]}")
            olds+=" $old"
        fi
        [ "$ck_ok" = "$N" ] || failed=1
    done
    ck=$(echo "$cks" | median) ng=$(echo "$ngs" | median) old=$(echo "${olds:- -}" | median)
    printf '%-22s %14s %14s %8s %14s %8s   %s / %s / %s\n' "$name" "$ck" "$ng" "$(ratio "$ck" "$ng")" \
        "$old" "$(ratio "$ck" "$old")" "$ck_ok" "$ng_ok" "$old_ok"
done
echo
echo "certkeeper's TLS library per partner (from the agent's log):"
grep -o 'egress [^:]*: .* now use OpenSSL' "$work/agent.log" | sed 's/^/  /' || echo "  (every partner on rustls)"
if [ "$failed" = 1 ]; then
    echo "late.sh: certkeeper did not answer every request of a case" >&2
    exit 1
fi
