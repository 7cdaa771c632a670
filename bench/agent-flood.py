#!/usr/bin/env python3
"""One uid floods the agent; another granted uid signs. Prints the victim's signing
latency (p50/p99) and the agent's RSS and descriptors before, during and after.

Run by bench/agent-flood.sh (as root: it starts the clients as other uids)."""
import json, os, socket, struct, subprocess, sys, threading, time

binary, home, sock, thumb, flooder, victim = sys.argv[1:7]
flooder, victim = int(flooder), int(victim)

def frame(obj):
    m = json.dumps(obj).encode()
    return struct.pack(">I", len(m)) + m

def exchange(s, obj):
    s.sendall(frame(obj))
    n = struct.unpack(">I", s.recv(4))[0]
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return json.loads(data)

def agent_pid():
    out = subprocess.run(["pgrep", "-f", sock], capture_output=True, text=True).stdout.split()
    return int(out[0])

def usage(pid):
    rss = 0
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    return rss, fds

def as_uid(uid, fn):
    """Runs fn in a child process with another uid (fork + setuid)."""
    pid = os.fork()
    if pid == 0:
        os.setgroups([]); os.setgid(uid); os.setuid(uid)
        try:
            fn()
        finally:
            os._exit(0)
    return pid

def victim_latencies(n, out_path):
    def run():
        s = socket.socket(socket.AF_UNIX); s.connect(sock)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            r = exchange(s, {"v": 2, "op": "sign", "thumbprint": thumb,
                             "scheme": "ECDSA_NISTP256_SHA256", "data": "aGVsbG8="})
            lat.append(time.perf_counter() - t)
            assert "ok" in r, r
        with open(out_path, "w") as f:
            json.dump(lat, f)
    return as_uid(victim, run)

def flood(stop_path):
    def run():
        held = []
        # Connections up to the per-uid limit and beyond; half of them stuck mid-frame.
        for i in range(200):
            try:
                s = socket.socket(socket.AF_UNIX); s.connect(sock)
                if i % 2:
                    s.sendall(struct.pack(">I", 60000) + b"{\"v\": 2, ")
                held.append(s)
            except OSError:
                pass
        # Expensive lookups on the connections that are free, in four threads.
        def lookups():
            try:
                s = socket.socket(socket.AF_UNIX); s.connect(sock)
            except OSError:
                return
            while not os.path.exists(stop_path):
                try:
                    exchange(s, {"v": 2, "op": "resolve", "reference": "subject:e"})
                except Exception:
                    return
        for s in held[:8]:
            s.close()
        ts = [threading.Thread(target=lookups) for _ in range(4)]
        for t in ts: t.start()
        while not os.path.exists(stop_path):
            time.sleep(0.1)
    return as_uid(flooder, run)

def pct(lat, p):
    lat = sorted(lat)
    return lat[min(len(lat) - 1, int(len(lat) * p))] * 1e3

pid = agent_pid()
import tempfile
tmp = tempfile.mkdtemp()  # the clients write their figures here, as other uids
os.chmod(tmp, 0o777)
rows = []
before = usage(pid)
c = victim_latencies(2000, f"{tmp}/quiet.json"); os.waitpid(c, 0)
quiet = json.load(open(f"{tmp}/quiet.json"))
stop = f"{tmp}/stop"
f = flood(stop)
time.sleep(2)
during = usage(pid)
c = victim_latencies(2000, f"{tmp}/flood.json"); os.waitpid(c, 0)
loud = json.load(open(f"{tmp}/flood.json"))
during2 = usage(pid)
open(stop, "w").close(); os.waitpid(f, 0)
time.sleep(12)
after = usage(pid)
print(f"victim uid {victim} signing (ECDSA P-256, 2000 signatures each):")
print(f"  quiet:        p50 {pct(quiet, .5):.3f} ms  p99 {pct(quiet, .99):.3f} ms")
print(f"  under flood:  p50 {pct(loud, .5):.3f} ms  p99 {pct(loud, .99):.3f} ms  (p99 {pct(loud, .99) / pct(quiet, .99):.2f}x quiet)")
print(f"agent RSS KiB / descriptors: before {before[0]} / {before[1]}, during {max(during[0], during2[0])} / {max(during[1], during2[1])}, after {after[0]} / {after[1]}")
