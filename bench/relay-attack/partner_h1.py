# An HTTP/1.1 partner over mutual TLS whose behaviour the request path picks (answering early,
# hostile answers). usage: partner_h1.py PORT [SO_RCVBUF]; RA_DIR holds the PKI and the logs.
# Logs every request it parses to partner-PORT.log as: conn=N req=M <request line> cl=.. te=..
import os, socket, ssl, sys, threading, time, json, itertools
DIR = os.environ["RA_DIR"]

PORT = int(sys.argv[1])
RCVBUF = int(sys.argv[2]) if len(sys.argv) > 2 else 0
LOG = open(DIR + f"/partner-{PORT}.log", "a", buffering=1)
ids = itertools.count(1)

def log(*a):
    LOG.write(time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a) + "\n")

class Conn:
    def __init__(self, s, cid):
        self.s, self.cid, self.buf, self.n = s, cid, b"", 0
    def fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError
        self.buf += d
    def head(self):
        while b"\r\n\r\n" not in self.buf:
            self.fill()
        h, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = h.split(b"\r\n")
        fields = []
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            fields.append((k.strip().lower().decode("latin1"), v.strip().decode("latin1")))
        return lines[0].decode("latin1"), fields
    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        d, self.buf = self.buf[:n], self.buf[n:]
        return d
    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        l, self.buf = self.buf.split(b"\r\n", 1)
        return l
    def body(self, fields):
        f = dict(fields)
        if f.get("transfer-encoding", "").lower() == "chunked":
            out = b""
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line() != b"":
                        pass
                    return out
                out += self.take(size)
                self.take(2)
        n = int(f.get("content-length", "0") or 0)
        return self.take(n)
    def send(self, b):
        self.s.sendall(b)

def answer(body, extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)

def serve(c):
    while True:
        line, fields = c.head()
        c.n += 1
        f = dict(fields)
        path = line.split(" ")[1] if " " in line else ""
        log(f"conn={c.cid} req={c.n} {line!r} cl={f.get('content-length')} te={f.get('transfer-encoding')} fields={fields}")
        p = path.split("?")[0]
        q = path.split("?")[1] if "?" in path else ""
        if p == "/slowread":
            # Answers early, before reading the body; reads the body afterwards, slowly.
            wait = float(q or "1")
            time.sleep(wait)
            c.send(answer(b"early\n"))
            n = int(f.get("content-length", "0"))
            got = 0
            last = b""
            c.s.settimeout(6)
            try:
                while got < n:
                    if not c.buf:
                        c.fill()
                        if n - got - len(c.buf) < 200000: log(f"conn={c.cid} slowread fill: got {got} + {len(c.buf)} of {n}")
                    k = min(len(c.buf), n - got)
                    last = (last + c.buf[:k])[-1000:]; c.buf = c.buf[k:]; got += k
            except Exception as e:
                log(f"conn={c.cid} slowread body got {got}/{n} then {e!r}")
                raise
            finally:
                c.s.settimeout(None)
            log(f"conn={c.cid} slowread body complete {got}/{n}; its last bytes: {last!r}")
            continue
        if p == "/slowread2":
            # Answers early (q: "WAIT,RATE": after WAIT s, before reading the body), then reads
            # the body (either framing) at about RATE bytes/s, until it ends or the connection
            # closes, and logs how far it got and whether anything but the 'A's the attacks
            # send was in it; then serves the next request on the connection, if any.
            wait, _, rate = q.partition(",")
            wait, rate = float(wait or "0.5"), int(rate or "1000000")
            time.sleep(wait)
            c.send(answer(b"early\n"))
            chunked = f.get("transfer-encoding", "").lower() == "chunked"
            n = int(f.get("content-length", "0") or 0)
            got, foreign = 0, b""
            c.s.settimeout(15)
            fill = c.fill
            def slow_fill():
                time.sleep(min(1.0, 16384 / rate)); fill()
            c.fill = slow_fill
            try:
                if chunked:
                    data = c.body(fields); got = n = len(data)
                    foreign = data.replace(b"A", b"")[:80]
                else:
                    while got < n:
                        if not c.buf:
                            c.fill()
                        k = min(len(c.buf), n - got)
                        foreign = foreign or c.buf[:k].replace(b"A", b"")[:80]
                        c.buf = c.buf[k:]; got += k
            except Exception as e:
                log(f"conn={c.cid} slowread2 body got {got}/{n} then {e!r}; not 'A': {foreign!r}")
                raise
            finally:
                c.fill = fill
                c.s.settimeout(None)
            log(f"conn={c.cid} slowread2 body complete {got}/{n}; not 'A': {foreign!r}; next bytes: {c.buf[:80]!r}")
            continue
        if p == "/trickle":
            # Reads the body 2 KiB per 20 ms; answers once `q` bytes of it have come.
            n = int(f.get("content-length", "0")); at = int(q)
            got = 0; answered = False
            c.s.settimeout(10)
            try:
                while got < n:
                    if not answered and got >= at:
                        c.send(answer(b"early\n")); answered = True
                        log(f"conn={c.cid} trickle answered at {got}/{n}")
                    if not c.buf:
                        d = c.s.recv(2048)
                        if not d: raise EOFError
                        c.buf += d
                        time.sleep(0.02)
                    k = min(len(c.buf), n - got); c.buf = c.buf[k:]; got += k
            except Exception as e:
                log(f"conn={c.cid} trickle body got {got}/{n} then {e!r}"); raise
            finally:
                c.s.settimeout(None)
            if not answered:
                c.send(answer(b"late\n"))
            log(f"conn={c.cid} trickle body complete {got}/{n}")
            continue
        body = c.body(fields)
        doc = json.dumps({"port": PORT, "conn": c.cid, "req": c.n, "line": line, "len": len(body), "body": body[:200].decode("latin1")}).encode() + b"\n"
        if p == "/extra":      # the answer, then a second answer nobody asked for
            c.send(answer(doc) + answer(b"EVIL extra answer\n")); continue
        if p == "/extra-late":
            c.send(answer(doc)); time.sleep(float(q or "0.3")); c.send(answer(b"EVIL late answer\n")); continue
        if p == "/204body":
            c.send(b"HTTP/1.1 204 No Content\r\nContent-Length: 38\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nEVIL"); continue
        if p == "/304body":
            c.send(b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nEVIL!\r\n0\r\n\r\n"); continue
        if p == "/headbody":
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"); continue
        if p == "/1xxflood":
            for i in range(int(q or "1000")):
                c.send(b"HTTP/1.1 100 Continue\r\nX-I: %d\r\n\r\n" % i)
            c.send(answer(doc)); continue
        if p == "/1xxslow":
            for i in range(100):
                c.send(b"HTTP/1.1 102 Processing\r\n\r\n"); time.sleep(0.5)
            c.send(answer(doc)); continue
        if p == "/101":
            c.send(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\nRAWBYTES"); continue
        if p == "/drip":  # answer head one byte per 0.5 s
            for b in answer(doc):
                c.send(bytes([b])); time.sleep(0.5)
            continue
        if p == "/dripbody":  # body one byte per second, forever-ish
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for i in range(1000):
                c.send(b"x"); time.sleep(1)
            continue
        if p == "/forever":  # never-ending chunked
            c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while True:
                c.send(b"4000\r\n" + b"y" * 0x4000 + b"\r\n")
        if p == "/hdrflood":
            c.send(b"HTTP/1.1 200 OK\r\n" + b"X-F: " + b"a" * 100 + b"\r\n" * 1)
            for i in range(100000):
                c.send(b"X-F%d: %s\r\n" % (i, b"a" * 100))
            continue
        if p == "/tlsclose":  # half an answer, then close_notify
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            c.s.unwrap(); c.s.close(); return
        if p == "/tcpclose":
            c.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhalf")
            c.s.close(); return
        if p == "/chunkclose":
            c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhalf\r\n")
            c.s.unwrap(); c.s.close(); return
        if p in ("/chunked-close", "/chunked-rst"):
            # A whole chunked answer (keep-alive as far as its head says), then the TCP
            # connection ends at once: a FIN without TLS close_notify, or a reset. TCP_CORK
            # sends the answer's last bytes and the end together.
            c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            close = b"Connection: close\r\n" if q == "close" else b""
            c.send(b"HTTP/1.1 200 OK\r\n%sTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (close, len(doc), doc))
            if p == "/chunked-rst":  # (uncorked first: a reset drops what is unsent)
                c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
                c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            c.s.close(); return
        if p == "/bigchunked":  # q bytes in chunks of 16 KiB, then the last chunk
            n = int(q or "2000000")
            c.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            while n > 0:
                k = min(n, 16384); n -= k
                c.send(b"%x\r\n%s\r\n" % (k, b"z" * k))
            c.send(b"0\r\n\r\n"); continue
        if p == "/untilclose":
            c.send(b"HTTP/1.1 200 OK\r\n\r\nbody until close"); c.s.unwrap(); c.s.close(); return
        if p == "/untilclose-tcp":  # half of a body read until the close, then TCP FIN without close_notify
            c.send(b"HTTP/1.1 200 OK\r\n\r\nthe first half of a body read until close,"); time.sleep(0.2)
            c.s.close(); return
        if p == "/raw":  # q: hex of the raw answer
            c.send(bytes.fromhex(q)); continue
        if p == "/sleep":
            time.sleep(float(q.split("&")[0] or "0.3")); c.send(answer(doc)); continue
        if p == "/silent":
            time.sleep(30); continue
        c.send(answer(doc))

def handle(raw, ctx):
    cid = next(ids)
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except Exception as e:
        log(f"conn={cid} handshake failed {e!r}"); raw.close(); return
    c = Conn(s, cid)
    try:
        serve(c)
    except (EOFError, ConnectionError, ssl.SSLError, OSError, ValueError) as e:
        log(f"conn={cid} ended: {e!r} leftover={c.buf[:120]!r}")
    try:
        s.close()
    except Exception:
        pass

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(DIR + "/srv.pem", DIR + "/srv.key")
ctx.load_verify_locations(DIR + "/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.set_alpn_protocols(["http/1.1"])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if RCVBUF:
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
ls.bind(("127.0.0.1", PORT)); ls.listen(512)
while True:
    raw, _ = ls.accept()
    threading.Thread(target=handle, args=(raw, ctx), daemon=True).start()
