#!/usr/bin/env bash
# The fleet: how long after `fleet publish` returns the last front-end has applied the
# generation, for 1, 10 and 50 front-ends (agents as processes with their own homes,
# on one machine, one etcd member from Debian), median and worst of ROUNDS publishes,
# with fleet_spread 0; etcd's CPU per publish; the agents' CPU while idle between
# publishes (a watching agent should cost nothing measurable), beside an agent outside
# any fleet measured over the same 30 s. Compared in the same
# run with what administrators do today: copying the home to each front-end with
# rsync (over loopback, to an rsync daemon), one front-end after the other.
#
# "Applied" is when the front-end's status key on etcd names the generation: the
# agent writes it after the home's transaction committed and the export files were
# written. A poller (python3, etcd's JSON gateway, every 5 ms) watches for it.
#
# Needs: apt-get install -y etcd-server rsync openssl python3 (installed when missing,
# as root on Debian). SIZES="1 10 50" and ROUNDS=7 by default.
# Prints a table; the figures are whole-process and include the poller's 5 ms grain.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1 10 50"}
ROUNDS=${ROUNDS:-7}
missing=()
command -v etcd >/dev/null || missing+=(etcd-server)
command -v rsync >/dev/null || missing+=(rsync)
if [ ${#missing[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
cargo build --release -q -p certkeeper
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP_WORK:-}" ] && echo "fleet.sh: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
bin="$work/certkeeper"
cp target/release/certkeeper "$bin"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cd "$work"
client_port=$(free_port)
peer_port=$(free_port)
etcd --data-dir "$work/etcd" --listen-client-urls "http://127.0.0.1:$client_port" \
    --advertise-client-urls "http://127.0.0.1:$client_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port" >etcd.log 2>&1 &
etcd_pid=$!
pids+=("$etcd_pid")
endpoint="http://127.0.0.1:$client_port"
for _ in $(seq 100); do curl -s "$endpoint/health" | grep -q true && break; sleep 0.1; done

# The administrator's home: a CA, five client certificates with keys, their grants,
# export names, one binding.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=Bench Client CA" -keyout ca.key -out ca.pem 2>/dev/null
printf 'extendedKeyUsage=clientAuth\n' >ext
admin="$work/admin"
"$bin" --home "$admin" init >/dev/null
"$bin" --home "$admin" import ca.pem --store root >/dev/null
for i in 1 2 3 4 5; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=client$i" \
        -keyout "c$i.key" -out "c$i.csr" 2>/dev/null
    openssl x509 -req -in "c$i.csr" -CA ca.pem -CAkey ca.key -days 20 -extfile ext \
        -out "c$i.pem" 2>/dev/null
    cat "c$i.pem" "c$i.key" >"c$i.both"
    "$bin" --home "$admin" import "c$i.both" --name "client$i" >/dev/null
    "$bin" --home "$admin" grant "client$i" user:nobody >/dev/null
    "$bin" --home "$admin" export "client$i" --as "client$i.cer" >/dev/null
done
listen_port=$(free_port)
"$bin" --home "$admin" bind partner --cert client1 --upstream https://partner.example \
    --listen "127.0.0.1:$listen_port" >/dev/null
"$bin" --home "$admin" fleet init --etcd "$endpoint" --env bench >/dev/null
"$bin" --home "$admin" config fleet_spread 0 >/dev/null

# rsync's side: a daemon on loopback, one module, one directory per front-end.
rsync_port=$(free_port)
mkdir -p rsync-dest
cat >rsyncd.conf <<EOF
use chroot = no
[homes]
path = $work/rsync-dest
read only = no
uid = root
gid = root
EOF
rsync --daemon --no-detach --config=rsyncd.conf --port="$rsync_port" --address=127.0.0.1 &
pids+=($!)
sleep 0.5

ticks=$(getconf CLK_TCK)
cpu_of() { # utime+stime of a process and its ended threads, in nanoseconds (tick grain)
    awk -v t="$ticks" '{ printf "%.0f\n", ($14 + $15) * 1e9 / t }' "/proc/$1/stat"
}

# The baseline for idle CPU: an agent outside any fleet (the administrator's home).
"$bin" --home "$admin" agent --socket "$work/admin.sock" 2>"$work/admin-agent.log" &
baseline_pid=$!
pids+=("$baseline_pid")

nodes=0
agent_pids=()
printf '%-11s %-24s %-24s %-17s %-34s %-16s\n' "front-ends" "publish->all applied" "rsync home to all" \
    "etcd CPU/publish" "idle CPU per agent (ms/min)" "publish command"
for size in $SIZES; do
    # Grow the fleet to `size` front-ends.
    while [ "$nodes" -lt "$size" ]; do
        nodes=$((nodes + 1))
        home="$work/fe$nodes"
        "$bin" --home "$home" init >/dev/null
        "$bin" --home "$home" config fleet_spread 0 >/dev/null
        ip="127.1.$((nodes / 250)).$((nodes % 250 + 1))"
        fp=$("$bin" --home "$home" fleet join --etcd "$endpoint" --env bench --node "fe$nodes" \
            --listen-host "$ip" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["fingerprint"])')
        "$bin" --home "$admin" fleet approve "fe$nodes" --fingerprint "$fp" >/dev/null
        "$bin" --home "$home" agent --socket "$work/fe$nodes.sock" 2>"$work/fe$nodes.log" &
        agent_pids+=($!)
        pids+=($!)
    done
    # One publish for everyone to catch up (not measured).
    generation=$("$bin" --home "$admin" fleet publish --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])')
    python3 - "$endpoint" "$size" "$generation" <<'EOF'
import base64, json, sys, time, urllib.request
endpoint, size, generation = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
prefix = b"/certkeeper/bench/status/"
body = json.dumps({"key": base64.b64encode(prefix).decode(),
                   "range_end": base64.b64encode(prefix[:-1] + b"0").decode()}).encode()
deadline = time.time() + 120
while time.time() < deadline:
    r = json.load(urllib.request.urlopen(endpoint + "/v3/kv/range", body))
    done = sum(1 for kv in r.get("kvs", []) if json.loads(base64.b64decode(kv["value"]))["generation"] >= generation)
    if done >= size:
        sys.exit(0)
    time.sleep(0.05)
sys.exit("front-ends did not catch up")
EOF
    # Idle: the agents' CPU over 30 s with nothing published.
    base_before=$(cpu_of "$baseline_pid")
    before=0; for p in "${agent_pids[@]}"; do before=$((before + $(cpu_of "$p"))); done
    sleep 30
    after=0; for p in "${agent_pids[@]}"; do after=$((after + $(cpu_of "$p"))); done
    base_after=$(cpu_of "$baseline_pid")
    idle=$(python3 -c "print(f'{($after-$before)/1e6/${#agent_pids[@]}*2:.1f} (alone {($base_after-$base_before)/1e6*2:.1f})')")

    results="$work/results-$size"
    : >"$results"
    etcd_before=$(cpu_of "$etcd_pid")
    for round in $(seq "$ROUNDS"); do
        "$bin" --home "$admin" config client_timeout "$((60 + round))" >/dev/null
        python3 - "$endpoint" "$size" "$bin" "$admin" >>"$results" <<'EOF'
import base64, json, subprocess, sys, time, http.client, urllib.parse
endpoint, size, binary, admin = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
prefix = b"/certkeeper/bench/status/"
body = json.dumps({"key": base64.b64encode(prefix).decode(),
                   "range_end": base64.b64encode(prefix[:-1] + b"0").decode()})
u = urllib.parse.urlparse(endpoint)
conn = http.client.HTTPConnection(u.hostname, u.port)
started = time.monotonic()
out = subprocess.run([binary, "--home", admin, "fleet", "publish", "--json"], check=True,
                     capture_output=True).stdout
returned = time.monotonic()
generation = json.loads(out)["generation"]
while True:
    conn.request("POST", "/v3/kv/range", body)
    r = json.loads(conn.getresponse().read())
    done = sum(1 for kv in r.get("kvs", []) if json.loads(base64.b64decode(kv["value"]))["generation"] >= generation)
    if done >= size:
        break
    if time.monotonic() - returned > 60:
        sys.exit("front-ends did not apply within 60 s")
    time.sleep(0.005)
print(f"{(time.monotonic() - returned) * 1000:.1f} {(returned - started) * 1000:.1f}")
EOF
    done
    etcd_after=$(cpu_of "$etcd_pid")
    etcd_ms=$(python3 -c "print(f'{($etcd_after-$etcd_before)/1e6/$ROUNDS:.1f}')")

    # rsync of the administrator's home to every front-end, one after the other (the
    # database changed by the same kind of edit first).
    rsync_times="$work/rsync-$size"
    : >"$rsync_times"
    for round in $(seq "$ROUNDS"); do
        "$bin" --home "$admin" config client_timeout "$((90 + round))" >/dev/null
        start=$(date +%s.%N)
        for i in $(seq "$size"); do
            rsync -a --delete "$admin/" "rsync://127.0.0.1:$rsync_port/homes/fe$i/" 2>/dev/null
        done
        end=$(date +%s.%N)
        python3 -c "print(f'{($end-$start)*1000:.1f}')" >>"$rsync_times"
    done

    summary=$(python3 - "$results" "$rsync_times" <<'EOF'
import statistics, sys
conv = [float(l.split()[0]) for l in open(sys.argv[1])]
pub = [float(l.split()[1]) for l in open(sys.argv[1])]
rs = [float(l) for l in open(sys.argv[2])]
print(f"{statistics.median(conv):.0f} ms (worst {max(conv):.0f})|{statistics.median(rs):.0f} ms (worst {max(rs):.0f})|{statistics.median(pub):.0f} ms")
EOF
)
    IFS='|' read -r conv rsync_fig publish_fig <<<"$summary"
    printf '%-11s %-24s %-24s %-17s %-34s %-16s\n' "$size" "$conv" "$rsync_fig" "$etcd_ms ms" \
        "$idle" "$publish_fig"
done
echo "(rsync only copies the files; the agents would still need a restart or reload to use them)"
