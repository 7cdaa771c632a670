#!/usr/bin/env python3
"""Soak of a certkeeper binding against a partner that misbehaves on a schedule.

Subcommands (bench/soak.sh runs them; python3 standard library only):

  partner  the partner: TLS 1.2 and 1.3, client certificate required, HTTP/1.1
           keep-alive, Content-Length and chunked answers that echo the request's id.
           It cycles through phases (PHASES below) and misbehaves in them: resets
           mid-answer, stalls past the upstream timeout, close_notify mid-answer and
           handshake alerts, quick idle closes, restarts. It logs what it did with
           each request (actions.csv) and its totals (partner-stats.json).
  probe    one request through the binding, retried until it answers 200 (start-up).
  load     the applications: threads calling the binding, keep-alive and
           connection-per-request, GET and POST (Content-Length and chunked request
           bodies). Each answer is checked against the request that was sent. Samples
           the agent's RSS and descriptors every 5 s. Writes results.json,
           requests.csv, samples.csv.
  report   summary.md from what partner and load wrote, PASS/FAIL (exit 1 on FAIL).

Every request carries a unique id in its path (/soak/ID?size=N&enc=cl|chunked), in
the X-Soak-Id header and, for POSTs, at the start of its body ("ID|..."). The partner
answers with X-Soak-Echo: ID, X-Soak-Digest: the SHA-256 (16 hex digits) of the
request body it received, and a body that is a function of ID and N alone
(expected_body), so the application can check every byte of every 200.
"""

import argparse
import collections
import csv
import hashlib
import json
import os
import random
import re
import signal
import socket
import ssl
import statistics
import struct
import sys
import threading
import time

PHASES = ("normal", "reset", "stall", "tls", "idle", "restart")
# Within a restart phase, the partner goes down at these offsets (fractions of the
# phase) for DOWN seconds.
RESTART_AT = (0.15, 0.6)
FAILURE_PREFIX = "certkeeper binding "


def phase_at(elapsed, phase_s):
    """The partner's phase `elapsed` seconds after t0 (normal before t0)."""
    if elapsed < 0:
        return "normal"
    return PHASES[int(elapsed // phase_s) % len(PHASES)]


def down_at(elapsed, phase_s, down_s):
    """Whether the partner is down (restarting) `elapsed` seconds after t0."""
    if phase_at(elapsed, phase_s) != "restart":
        return False
    into = elapsed % phase_s
    return any(f * phase_s <= into < f * phase_s + down_s for f in RESTART_AT)


def expected_body(rid, size):
    """The partner's answer body for request `rid`: `size` bytes, a function of both."""
    pattern = hashlib.sha256(rid.encode()).hexdigest().encode()
    data = rid.encode() + b"|" + pattern * (size // len(pattern) + 1)
    return data[:size]


def request_body(rid, n):
    """A request body of the id, a bar and `n` bytes that depend on the id."""
    pattern = hashlib.sha256((rid + "/request").encode()).hexdigest().encode()
    return rid.encode() + b"|" + (pattern * (n // len(pattern) + 1))[:n]


def digest(body):
    return hashlib.sha256(body).hexdigest()[:16]


def read_t0(path):
    try:
        with open(path) as f:
            return float(f.read().strip())
    except (OSError, ValueError):
        return None


class Eof(Exception):
    """The peer closed (or reset) the connection."""


class Deadline(Exception):
    """Nothing came before the deadline."""


class Wire:
    """Buffered reads from a socket (plain or TLS) for HTTP/1.1 messages."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.deadline = None

    def more(self):
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise Deadline()
            self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise Deadline() from None
        except (ConnectionError, ssl.SSLError, OSError) as e:
            raise Eof(type(e).__name__) from None
        if not data:
            raise Eof("eof")
        self.buf += data

    def head(self):
        """The next message head (bytes up to CRLFCRLF)."""
        while True:
            at = self.buf.find(b"\r\n\r\n")
            if at >= 0:
                head = bytes(self.buf[: at + 4])
                del self.buf[: at + 4]
                return head
            if len(self.buf) > 256 * 1024:
                raise ValueError("head too large")
            self.more()

    def exactly(self, n):
        while len(self.buf) < n:
            self.more()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def line(self):
        while True:
            at = self.buf.find(b"\r\n")
            if at >= 0:
                line = bytes(self.buf[:at])
                del self.buf[: at + 2]
                return line
            self.more()

    def chunked(self):
        out = bytearray()
        while True:
            size = int(self.line().split(b";")[0].strip(), 16)
            if size == 0:
                while self.line():  # trailers
                    pass
                return bytes(out)
            out += self.exactly(size)
            if self.exactly(2) != b"\r\n":
                raise ValueError("bad chunk end")

    def until_close(self):
        """The rest, up to a clean end of stream (a reset is not an end: Eof)."""
        while True:
            try:
                self.more()
            except Eof as e:
                if str(e) != "eof":
                    raise
                data = bytes(self.buf)
                self.buf.clear()
                return data


def parse_head(head):
    lines = head.decode("latin-1").split("\r\n")
    first = lines[0]
    fields = collections.OrderedDict()
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        name = name.strip().lower()
        value = value.strip()
        fields[name] = fields[name] + ", " + value if name in fields else value
    return first, fields


# ----------------------------------------------------------------------- partner


class Partner:
    def __init__(self, a):
        self.a = a
        self.port = a.port
        self.t0 = None
        self.rng = random.Random(a.random)
        self.rng_lock = threading.Lock()
        self.stats = collections.Counter()
        self.stats_lock = threading.Lock()
        self.conns = set()
        self.conns_lock = threading.Lock()
        self.stopping = threading.Event()
        self.actions = open(os.path.join(a.out, "actions.csv"), "w", buffering=1 << 16)
        self.actions_lock = threading.Lock()
        self.actions.write("t,id,action,phase,tls\n")
        self.ctx = {}
        for version in ("1.2", "1.3"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(a.cert, a.key)
            ctx.load_verify_locations(a.ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.set_alpn_protocols(["http/1.1"])
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            if version == "1.2":
                ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            self.ctx[version] = ctx
        for alert in ("handshake_failure", "internal_error"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(a.cert, a.key)
            ctx.load_verify_locations(a.ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
            code = getattr(ssl, "ALERT_DESCRIPTION_" + alert.upper())
            ctx.sni_callback = lambda _s, _n, _c, code=code: code
            self.ctx["alert-" + alert] = ctx

    def count(self, what, n=1):
        with self.stats_lock:
            self.stats[what] += n

    def random(self):
        with self.rng_lock:
            return self.rng.random()

    def choice(self, seq):
        with self.rng_lock:
            return self.rng.choice(seq)

    def elapsed(self):
        if self.t0 is None:
            self.t0 = read_t0(self.a.t0_file)
            if self.t0 is None:
                return -1.0
        return time.time() - self.t0

    def phase(self):
        return phase_at(self.elapsed(), self.a.phase)

    def down(self):
        return down_at(self.elapsed(), self.a.phase, self.a.down)

    def listen(self):
        while not self.stopping.is_set():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", self.port))
            except OSError:
                s.close()
                time.sleep(0.2)
                continue
            s.listen(256)
            s.settimeout(0.2)
            return s
        return None

    def kill_all(self):
        """Closes every connection (a restart): FIN now, the threads then end."""
        with self.conns_lock:
            conns = list(self.conns)
        for c in conns:
            try:
                dup = socket.socket(fileno=os.dup(c.fileno()))
                dup.shutdown(socket.SHUT_RDWR)
                dup.close()
            except OSError:
                pass
        return len(conns)

    def run(self):
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        listener = self.listen()
        print("partner listening on 127.0.0.1:%d" % self.port, flush=True)
        while not self.stopping.is_set():
            if self.down():
                listener.close()
                killed = self.kill_all()
                self.count("restarts")
                self.count("killed_on_restart", killed)
                while self.down() and not self.stopping.is_set():
                    time.sleep(0.1)
                listener = self.listen()
                if listener is None:
                    break
                continue
            try:
                raw, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                continue
            threading.Thread(target=self.serve, args=(raw,), daemon=True).start()
        if listener is not None:
            listener.close()
        self.kill_all()
        self.actions.flush()
        stats = dict(self.stats)
        with open(os.path.join(self.a.out, "partner-stats.json"), "w") as f:
            json.dump(stats, f, indent=1, sort_keys=True)

    def serve(self, raw):
        phase = self.phase()
        self.count("connections")
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if phase == "tls" and self.random() < 0.2:
            kind = self.choice(["alert-handshake_failure", "alert-internal_error"])
        else:
            kind = self.choice(["1.2", "1.3"])
        raw.settimeout(10)
        try:
            s = self.ctx[kind].wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.count("handshake_" + (kind if kind.startswith("alert") else "failed"))
            if not kind.startswith("alert"):
                self.count("handshake_failed:" + type(e).__name__)
            raw.close()
            return
        self.count("tls" + s.version()[-3:].replace("v", ""))
        with self.conns_lock:
            self.conns.add(s)
        try:
            self.conversation(s)
        finally:
            with self.conns_lock:
                self.conns.discard(s)
            try:
                s.close()
            except OSError:
                pass

    def conversation(self, s):
        wire = Wire(s)
        while not self.stopping.is_set():
            phase = self.phase()
            idle = self.a.idle if phase != "idle" else 0.05 + self.random() * 0.25
            wire.deadline = time.monotonic() + idle
            try:
                if not wire.buf:
                    wire.more()
                wire.deadline = time.monotonic() + 10
                head = wire.head()
                first, fields = parse_head(head)
                if "100-continue" in fields.get("expect", "").lower():
                    s.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                if "chunked" in fields.get("transfer-encoding", "").lower():
                    body = wire.chunked()
                else:
                    body = wire.exactly(int(fields.get("content-length", "0")))
            except Deadline:
                self.count("idle_closed" if not wire.buf else "request_timeout")
                return
            except (Eof, ValueError):
                self.count("peer_closed")
                return
            s.settimeout(10)
            if not self.answer(s, first, fields, body, self.phase()):
                return

    def pick(self, phase):
        r = self.random()
        if phase == "reset":
            if r < 0.10:
                return "reset_before"
            if r < 0.15:
                return "reset_head"
            if r < 0.30:
                return "reset_mid"
        elif phase == "stall":
            if r < 0.10:
                return "stall"
            if r < 0.15:
                return "stall_mid"
        elif phase == "tls":
            if r < 0.05:
                return "notify_before"
            if r < 0.15:
                return "notify_mid"
        elif phase == "idle":
            if r < 0.08:
                return "close_header"
            if r < 0.16:
                return "fin_after"
            if r < 0.24:
                return "notify_after"
        return "ok"

    def answer(self, s, first, fields, body, phase):
        """Answers one request; whether the connection carries another."""
        try:
            method, target, _ = first.split(" ", 2)
            path, _, query = target.partition("?")
            rid = path.rsplit("/", 1)[-1]
            params = dict(p.partition("=")[::2] for p in query.split("&") if p)
            size = int(params.get("size", "16"))
            enc = params.get("enc", "cl")
        except ValueError:
            rid, size, enc, method = "?", 16, "cl", "?"
        problem = None
        if fields.get("x-soak-id") != rid:
            problem = "header id %r, path id %r" % (fields.get("x-soak-id"), rid)
        elif method == "POST" and body.split(b"|", 1)[0] != rid.encode():
            problem = "body id %r, path id %r" % (body[:40], rid)
        if problem:
            self.count("request_mixed_up")
            text = ("partner: request mixed up: %s\n" % problem).encode()
            head = (
                "HTTP/1.1 500 Mixed Up\r\nX-Soak-Problem: mixed\r\nX-Soak-Echo: %s\r\n"
                "Content-Length: %d\r\n\r\n" % (rid, len(text))
            ).encode()
            s.sendall(head + text)
            return True
        # X-Soak-Action (not sent by the load; `soak.sh repro` uses it) picks the action.
        action = fields.get("x-soak-action") or self.pick(phase)
        payload = expected_body(rid, size)
        extra = "Connection: close\r\n" if action == "close_header" else ""
        if enc == "close":
            # No framing: the body ends when the connection does (RFC 9112 6.3).
            framed, framing, extra = payload, "", "Connection: close\r\n"
        elif enc == "chunked":
            parts, at = [], 0
            while at < len(payload):
                n = 1 + int(self.random() * 16384)
                parts.append(b"%x\r\n%s\r\n" % (len(payload[at : at + n]), payload[at : at + n]))
                at += n
            parts.append(b"0\r\n\r\n")
            framed, framing = b"".join(parts), "Transfer-Encoding: chunked\r\n"
        else:
            framed, framing = payload, "Content-Length: %d\r\n" % len(payload)
        head = (
            "HTTP/1.1 200 OK\r\nX-Soak-Echo: %s\r\nX-Soak-Digest: %s\r\n"
            "Content-Type: application/octet-stream\r\n%s%s\r\n"
            % (rid, digest(body), framing, extra)
        ).encode()
        wire = head + framed
        # Mid-answer cuts: half way through the body, or (a quarter of them) right
        # after the head.
        cut = len(head) + (len(framed) // 2 if self.random() < 0.75 else 0)
        if fields.get("x-soak-cut") is not None:
            cut = len(head) + int(fields["x-soak-cut"])
        self.count("answers")
        self.count("action:" + action)
        keep = True
        failed = False
        version = s.version()
        try:
            if action == "ok" and enc == "close":
                s.sendall(wire)
                self.notify(s)
                keep = False
            elif action == "ok":
                s.sendall(wire)
            elif action == "reset_before":
                self.reset(s)
                keep = False
            elif action == "reset_head":
                s.sendall(head[: len(head) // 2])
                self.reset(s)
                keep = False
            elif action == "reset_mid":
                s.sendall(wire[:cut])
                self.reset(s)
                keep = False
            elif action == "stall":
                # Held past the upstream timeout, then sent anyway: a relay that kept
                # this connection would hand the late answer to the next request.
                time.sleep(self.a.stall)
                s.sendall(wire)
                keep = enc != "close"
            elif action == "stall_mid":
                s.sendall(wire[:cut])
                time.sleep(self.a.stall)
                s.sendall(wire[cut:])
                keep = enc != "close"
            elif action == "notify_before":
                self.notify(s)
                keep = False
            elif action == "notify_mid":
                s.sendall(wire[:cut])
                self.notify(s)
                keep = False
            elif action in ("close_header", "notify_after"):
                s.sendall(wire)
                self.notify(s)
                keep = False
            elif action == "fin_after":
                s.sendall(wire)
                dup = socket.socket(fileno=os.dup(s.fileno()))
                dup.shutdown(socket.SHUT_WR)
                dup.close()
                keep = False
        except (OSError, ValueError):
            failed = True
            keep = False
            self.count("send_failed:" + action)
        if action.endswith("_mid") and cut == len(head):
            action += "@head"
        with self.actions_lock:
            self.actions.write(
                "%.3f,%s,%s%s,%s,%s\n"
                % (self.elapsed(), rid, action, "!" if failed else "", phase, version)
            )
        return keep

    def reset(self, s):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()

    def notify(self, s):
        """Sends close_notify and closes."""
        s.settimeout(1)
        try:
            s.unwrap().close()
        except (OSError, ValueError):
            pass


def cmd_partner(a):
    os.makedirs(a.out, exist_ok=True)
    Partner(a).run()


# ------------------------------------------------------------------------- client


class Outcome:
    __slots__ = ("kind", "status", "reason", "detail")

    def __init__(self, kind, status=0, reason="", detail=""):
        # ok; failure (502/504 with a reason); cutoff (a 200 whose framing shows the
        # cut); dropped (pipelined, after the connection closed on an earlier answer);
        # abandoned (the application left after the head, on purpose);
        # truncated (a short 200 ended by a clean close); crosstalk; corrupt;
        # unexplained; hang; late (a 200 that came after the upstream timeout).
        self.kind = kind
        self.status = status
        self.reason = reason
        self.detail = detail


class Client:
    """One application: calls the binding at its share of the rate."""

    KINDS = {
        # name: (keep-alive, HTTP/1.0, requests per write, methods)
        "ka-get": (True, False, 1, ("GET",)),
        "ka-post": (True, False, 1, ("POST",)),
        "ka-chunked": (True, False, 1, ("POST-chunked", "GET")),
        "close-get": (False, False, 1, ("GET",)),
        "close-post": (False, False, 1, ("POST", "POST-chunked")),
        "ka-mixed": (True, False, 1, ("GET", "POST", "POST-chunked")),
        "http10": (True, True, 1, ("GET", "POST")),
        "pipelined": (True, False, 3, ("GET", "POST")),
        # Leaves a third of its answers after their head (the relay then finishes
        # reading them and pools the connection, or closes it).
        "impatient": (True, False, 1, ("GET", "POST")),
    }

    def __init__(self, load, index, kind):
        self.load = load
        self.index = index
        self.kind = kind
        self.keep, self.http10, self.batch, self.methods = self.KINDS[kind]
        self.rng = random.Random(load.a.random * 1000 + index)
        self.sock = None
        self.wire = None
        self.seq = 0

    def size(self):
        r = self.rng.random()
        if r < 0.4:
            return 1 + self.rng.randrange(200)
        if r < 0.8:
            return 200 + self.rng.randrange(8 * 1024)
        return 8 * 1024 + self.rng.randrange(56 * 1024 + 1)

    def close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.wire = None

    def run(self):
        interval = self.batch * len(self.load.clients) / self.load.a.rate
        next_at = time.monotonic() + self.rng.random() * interval
        while not self.load.stop.is_set():
            now = time.monotonic()
            if next_at > now:
                if self.load.stop.wait(next_at - now):
                    break
            elif now - next_at > 1:
                next_at = now
            next_at += interval
            self.one()
        self.close()

    def request(self):
        """A new request: its id, what it asks for and its bytes."""
        self.seq += 1
        rid = "%s-%d-%d" % (self.load.run_id, self.index, self.seq)
        method = self.rng.choice(self.methods)
        size = self.size()
        r = self.rng.random()
        enc = "close" if r < 0.07 and self.load.a.unframed else "chunked" if r < 0.45 else "cl"
        keep_header = self.http10 and self.rng.random() < 0.5
        head = [
            "%s /soak/%s?size=%d&enc=%s HTTP/1.%d"
            % (method.split("-")[0], rid, size, enc, 0 if self.http10 else 1),
            "Host: soak.invalid",
            "X-Soak-Id: " + rid,
        ]
        if not self.keep:
            head.append("Connection: close")
        elif keep_header:
            head.append("Connection: keep-alive")
        parts = []
        sent_body = b""
        if method.startswith("POST"):
            n = self.rng.randrange(100) if self.rng.random() < 0.5 else self.rng.randrange(32 * 1024)
            sent_body = request_body(rid, n)
            head.append("Content-Type: application/octet-stream")
            if self.rng.random() < 0.2 and not self.http10:
                head.append("Expect: 100-continue")
            if method == "POST-chunked":
                head.append("Transfer-Encoding: chunked")
                at = 0
                chunks = bytearray()
                while at < len(sent_body):
                    k = 1 + self.rng.randrange(4096)
                    piece = sent_body[at : at + k]
                    chunks += b"%x\r\n%s\r\n" % (len(piece), piece)
                    at += k
                    if self.rng.random() < 0.3:
                        parts.append(bytes(chunks))
                        chunks = bytearray()
                chunks += b"0\r\n\r\n"
                parts.append(bytes(chunks))
            else:
                head.append("Content-Length: %d" % len(sent_body))
                parts.append(sent_body)
        parts.insert(0, ("\r\n".join(head) + "\r\n\r\n").encode())
        if len(parts) > 1 and len(parts[1]) < 16 * 1024:
            parts[0:2] = [parts[0] + parts[1]]
        return {
            "id": rid, "method": method, "size": size, "enc": enc, "parts": parts,
            "body": sent_body, "keep": self.keep and (not self.http10 or keep_header),
        }

    def one(self):
        batch = [self.request() for _ in range(self.batch)]
        start = time.monotonic()
        elapsed = time.time() - self.load.t0
        for req, outcome, latency in self.exchange(batch, start):
            if latency > self.load.a.bound and outcome.kind not in ("hang", "crosstalk", "corrupt"):
                outcome.detail = "took %.1f s (%s %s) %s" % (
                    latency, outcome.kind, outcome.reason, outcome.detail)
                outcome.kind = "hang"
            self.load.record(self, req, elapsed, latency, outcome)

    def exchange(self, batch, start):
        """Sends the batch's requests in one go, then reads their answers in order;
        yields (request, outcome, latency)."""
        a = self.load.a
        reused = self.sock is not None
        if self.sock is None:
            try:
                self.sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.bound)
            except OSError as e:
                for req in batch:
                    yield req, Outcome("unexplained", 0, "cannot connect to the binding: %s" % e), 0
                return
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wire = Wire(self.sock)
        send_error, failed_at = None, len(batch)
        try:
            self.sock.settimeout(a.bound)
            for i, req in enumerate(batch):
                failed_at = i
                for part in req["parts"]:
                    self.sock.sendall(part)
            failed_at = len(batch)
        except OSError as e:
            # The relay may have answered already (an early failure): read it.
            send_error = type(e).__name__
        ended = None  # why the connection ended before the rest of the batch
        # A pipelined request waits for the answers before it: its time runs from the
        # end of the previous answer.
        since = start
        for i, req in enumerate(batch):
            if ended is not None:
                yield req, Outcome("dropped", 0, "not answered: " + ended), time.monotonic() - since
                continue
            o, closed = self.answer(req, reused or i > 0, send_error if i >= failed_at else None)
            now = time.monotonic()
            if o.kind == "ok" and now - since > a.timeout + 1.5:
                o = Outcome("late", 200, "200 after the upstream timeout",
                            "%.1f s, upstream_timeout %d s" % (now - since, a.timeout))
            yield req, o, now - since
            since = now
            if closed:
                self.close()
                ended = "the connection closed after an earlier answer of the pipeline (%s %s)" % (
                    o.kind, o.status)
        if not batch[-1]["keep"]:
            self.close()

    def answer(self, req, reused, send_error):
        """Reads and checks the answer to `req`; (outcome, whether the connection ended)."""
        a = self.load.a
        wire = self.wire
        wire.deadline = time.monotonic() + a.bound + 5
        try:
            while True:
                head = wire.head()
                first, fields = parse_head(head)
                status = int(first.split(" ", 2)[1])
                if not 100 <= status < 200:
                    break
        except Deadline:
            return Outcome("hang", 0, "no answer head within %d s" % (a.bound + 5)), True
        except (Eof, ValueError, IndexError) as e:
            why = "connection closed without an answer (%s%s%s)" % (
                e, ", while sending: " + send_error if send_error else "",
                ", reused keep-alive connection" if reused else "")
            return Outcome("unexplained", 0, why), True
        if self.kind == "impatient" and status == 200 and self.rng.random() < 0.33:
            return Outcome("abandoned", status, "the application left after the head"), True
        conn = fields.get("connection", "").lower()
        closing = "close" in conn or (self.http10 and "keep-alive" not in conn)
        te = fields.get("transfer-encoding", "").lower()
        framed = True
        try:
            if "chunked" in te:
                body = wire.chunked()
            elif "content-length" in fields:
                body = wire.exactly(int(fields["content-length"]))
            else:
                framed = False
                closing = True
                body = wire.until_close()
        except Deadline:
            return Outcome("hang", status, "answer body stalled past %d s" % (a.bound + 5)), True
        except (Eof, ValueError) as e:
            if status == 200:
                how = "chunked" if "chunked" in te else "content-length" if framed else "reset"
                return Outcome("cutoff", status, "200 cut off (%s)" % how, str(e)), True
            return Outcome("unexplained", status, "%d answer cut off: %s" % (status, e)), True
        if send_error and status == 200:
            return Outcome("unexplained", status,
                           "200 although the request could not be sent (%s)" % send_error), True
        if status == 200:
            # An answer the partner ends by closing (enc "close") may be cut by a clean
            # close (close_notify) that nobody can tell from its end, however the relay
            # frames it for the application.
            if not framed or req["enc"] == "close":
                expected = expected_body(req["id"], req["size"])
                if len(body) < len(expected) and expected.startswith(body):
                    return Outcome("truncated", 200,
                                   "200 ended by a clean close, body short",
                                   "%d of %d bytes" % (len(body), len(expected))), True
            return self.check(req, fields, body), closing
        if status in (502, 504):
            text = body.decode("utf-8", "replace")
            prefix = FAILURE_PREFIX + a.binding + ": "
            if not text.startswith(prefix) or len(text.strip()) <= len(prefix):
                return Outcome("unexplained", status, "%d without a reason" % status, text[:200]), True
            return Outcome("failure", status, text[len(prefix):].strip()), True
        if fields.get("x-soak-problem") == "mixed":
            return Outcome("crosstalk", status, "partner got a mixed-up request",
                           body.decode("latin-1")[:200]), closing
        return Outcome("unexplained", status, "unexpected status %d" % status,
                       body[:200].decode("latin-1")), True

    def check(self, req, fields, body):
        rid = req["id"]
        echo = fields.get("x-soak-echo")
        m = re.match(rb"([0-9a-z]+-\d+-\d+)\|", body)
        if echo != rid or (m and m.group(1).decode() != rid):
            other = echo if echo != rid else m.group(1).decode()
            return Outcome("crosstalk", 200, "answer of another request",
                           "sent %s, got the answer of %s" % (rid, other))
        if fields.get("x-soak-digest") != digest(req["body"]):
            return Outcome("corrupt", 200, "the partner got another request body",
                           "digest %s, sent %s" % (fields.get("x-soak-digest"), digest(req["body"])))
        if body != expected_body(rid, req["size"]):
            return Outcome("corrupt", 200, "complete 200 with a wrong body",
                           "%d bytes, expected %d" % (len(body), req["size"]))
        return Outcome("ok", 200)


def sample_agent(pid):
    """VmRSS (kB), descriptors, of which sockets, threads, CPU seconds; None if gone."""
    try:
        rss = threads = 0
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        fds = sockets = 0
        for name in os.listdir("/proc/%d/fd" % pid):
            fds += 1
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, name)).startswith("socket:"):
                    sockets += 1
            except OSError:
                pass
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        return rss, fds, sockets, threads, cpu
    except (OSError, ValueError, IndexError):
        return None


class Load:
    def __init__(self, a):
        self.a = a
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.t0 = read_t0(a.t0_file)
        self.run_id = "r%x" % random.Random(a.random).randrange(1 << 24)
        self.counts = collections.Counter()
        self.status = collections.Counter()
        self.reasons = collections.Counter()
        self.reason_phase = collections.Counter()
        self.cutoffs = collections.Counter()
        self.dropped = collections.Counter()
        self.truncated = []
        self.suspects = []
        self.fatal = collections.Counter()
        self.examples = collections.defaultdict(list)
        self.latency = collections.defaultdict(list)
        self.by_kind = collections.Counter()
        self.csv = open(os.path.join(a.out, "requests.csv"), "w", buffering=1 << 16)
        self.csv.write("t,client,id,method,size,enc,phase,latency_ms,outcome,status,reason\n")
        kinds = [k for k in Client.KINDS if a.unframed or k != "http10"]
        self.clients = [Client(self, i, kinds[i % len(kinds)]) for i in range(a.clients)]

    def record(self, client, req, elapsed, latency, o):
        rid, method, size, enc = req["id"], req["method"], req["size"], req["enc"]
        phase = phase_at(elapsed, self.a.phase)
        with self.lock:
            self.counts[o.kind] += 1
            self.by_kind[(client.kind, o.kind)] += 1
            if o.status:
                self.status[o.status] += 1
            self.latency[o.kind].append(latency)
            if o.kind == "failure":
                self.reasons[(o.status, o.reason)] += 1
                self.reason_phase[(o.status, o.reason, phase)] += 1
            elif o.kind == "cutoff":
                self.cutoffs[(o.reason, phase)] += 1
            elif o.kind == "dropped":
                self.dropped[o.reason] += 1
            elif o.kind == "truncated":
                self.truncated.append([rid, client.kind, method, enc, phase, o.detail])
            if o.kind in ("unexplained", "hang", "crosstalk", "corrupt", "late") and len(self.suspects) < 10000:
                self.suspects.append([o.kind, rid, client.kind, method, enc, phase, o.reason])
            if o.kind not in ("ok", "failure", "cutoff", "dropped", "abandoned"):
                self.fatal[(o.kind, o.reason)] += 1
                if len(self.examples[o.kind]) < 20:
                    self.examples[o.kind].append({
                        "t": round(elapsed, 3), "id": rid, "client": client.kind,
                        "method": method, "size": size, "enc": enc, "phase": phase,
                        "status": o.status, "reason": o.reason, "detail": o.detail,
                    })
            self.csv.write("%.3f,%s,%s,%s,%d,%s,%s,%.1f,%s,%d,%s\n" % (
                elapsed, client.kind, rid, method, size, enc, phase, latency * 1000,
                o.kind, o.status, '"%s"' % o.reason.replace('"', "'") if o.reason else ""))

    def sampler(self, out):
        with open(os.path.join(self.a.out, "samples.csv"), "w") as f:
            f.write("t,phase,rss_kb,fds,sockets,threads,cpu_s,requests\n")
            while True:
                elapsed = time.time() - self.t0
                s = sample_agent(self.a.agent_pid)
                with self.lock:
                    done = sum(self.counts.values())
                if s is None:
                    out["agent_gone_at"] = round(elapsed, 1)
                    f.write("%.1f,%s,,,,,,%d\n" % (elapsed, phase_at(elapsed, self.a.phase), done))
                    f.flush()
                    return
                f.write("%.1f,%s,%d,%d,%d,%d,%.2f,%d\n" % (
                    (elapsed, phase_at(elapsed, self.a.phase)) + s + (done,)))
                f.flush()
                if self.stop.wait(5):
                    s = sample_agent(self.a.agent_pid)
                    if s:
                        elapsed = time.time() - self.t0
                        f.write("%.1f,%s,%d,%d,%d,%d,%.2f,%d\n" % (
                            (elapsed, phase_at(elapsed, self.a.phase)) + s + (done,)))
                    return

    def run(self):
        a = self.a
        now = time.time()
        if self.t0 > now:
            time.sleep(self.t0 - now)
        extra = {}
        sampler = threading.Thread(target=self.sampler, args=(extra,), daemon=True)
        sampler.start()
        threads = [threading.Thread(target=c.run, daemon=True) for c in self.clients]
        for t in threads:
            t.start()
        end = self.t0 + a.duration
        shown = 0
        while time.time() < end and "agent_gone_at" not in extra:
            time.sleep(min(1.0, max(0.0, end - time.time())))
            minute = int((time.time() - self.t0) // 60)
            if a.progress and minute > shown:
                shown = minute
                with self.lock:
                    print("  %4.0f s: %s" % (time.time() - self.t0, dict(self.counts)),
                          file=sys.stderr, flush=True)
        self.stop.set()
        for t in threads:
            t.join(a.bound + 10)
        stuck = sum(t.is_alive() for t in threads)
        sampler.join(10)
        self.csv.close()

        def pct(xs, p):
            if not xs:
                return None
            xs = sorted(xs)
            return round(xs[min(len(xs) - 1, int(p * len(xs)))] * 1000, 1)

        result = {
            "duration": a.duration,
            "clients": [c.kind for c in self.clients],
            "rate_target": a.rate,
            "binding": a.binding,
            "counts": dict(self.counts),
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "reasons": [[s, r, n] for (s, r), n in self.reasons.most_common()],
            "reason_phase": [[s, r, p, n] for (s, r, p), n in self.reason_phase.most_common()],
            "cutoffs": [[r, p, n] for (r, p), n in self.cutoffs.most_common()],
            "fatal": [[k, r, n] for (k, r), n in self.fatal.most_common()],
            "dropped": [[r, n] for r, n in self.dropped.most_common()],
            "truncated": self.truncated[:10000],
            "suspects": self.suspects,
            "examples": self.examples,
            "by_client": [[c, k, n] for (c, k), n in sorted(self.by_kind.items())],
            "latency_ms": {k: {"p50": pct(v, 0.5), "p99": pct(v, 0.99), "max": pct(v, 1.0)}
                           for k, v in self.latency.items()},
            "clients_stuck_at_end": stuck,
        }
        result.update(extra)
        with open(os.path.join(a.out, "results.json"), "w") as f:
            json.dump(result, f, indent=1)


def cmd_load(a):
    Load(a).run()


def cmd_probe(a):
    """One GET through the binding, retried until a checked 200 or the time is up."""
    load = argparse.Namespace(
        a=argparse.Namespace(random=0, port=a.port, bound=10, binding=a.binding, unframed=0,
                             timeout=60),
        run_id="probe", clients=[None], t0=time.time())
    end = time.time() + a.wait
    last = None
    while time.time() < end:
        c = Client(load, 0, "close-get")
        req = c.request()
        req["size"], req["enc"] = 100, "cl"
        req["parts"] = [("GET /soak/%s?size=100&enc=cl HTTP/1.1\r\nHost: x\r\nX-Soak-Id: %s\r\n"
                         "Connection: close\r\n\r\n" % (req["id"], req["id"])).encode()]
        (_, o, _), = list(c.exchange([req], time.monotonic()))
        c.close()
        if o.kind == "ok":
            print("probe: the binding answers")
            return 0
        last = "%s %s %s %s" % (o.kind, o.status, o.reason, o.detail)
        time.sleep(0.5)
    print("probe: the binding does not answer: %s" % last, file=sys.stderr)
    return 1


# ------------------------------------------------------------------------- report


def read_samples(path):
    rows = []
    try:
        with open(path) as f:
            for r in csv.DictReader(f):
                if r["rss_kb"]:
                    rows.append({k: (r[k] if k == "phase" else float(r[k])) for k in r})
    except OSError:
        pass
    return rows


def flatness(samples, key, warmup, end, allowance_abs=0):
    """Compares the agent's `key` over the last stretch of the run with the first
    stretch after the warm-up (same length, at most one cycle): maxima and medians."""
    after = [s for s in samples if s["t"] >= warmup]
    if len(after) < 4:
        return None
    span = min(end - warmup, 2 * CYCLE_S[0]) / 2
    first = [s[key] for s in after if s["t"] < warmup + span]
    last = [s[key] for s in after if s["t"] >= end - span]
    if not first or not last:
        return None
    at_warmup = after[0][key]
    at_end = samples[-1][key]
    base_max, last_max = max(first), max(last)
    limit = max(base_max * 1.10, base_max + allowance_abs)
    end_limit = max(at_warmup * 1.10, at_warmup + allowance_abs)
    return {
        "at_warmup": at_warmup, "at_end": at_end,
        "max": max(s[key] for s in after), "max_during_warmup": max(
            [s[key] for s in samples if s["t"] < warmup] or [0]),
        "first_window_max": base_max, "last_window_max": last_max,
        "first_window_median": statistics.median(first),
        "last_window_median": statistics.median(last),
        "window_s": span,
        "ok": last_max <= limit and at_end <= max(end_limit, limit),
        "rule": "last %.0f s max <= %.0f (first %.0f s after warm-up max %.0f +10%%%s)"
                " and end <= that or warm-up end +10%%" % (
                    span, limit, span, base_max,
                    ", or +%d" % allowance_abs if allowance_abs else ""),
    }


CYCLE_S = [180.0]


def cmd_report(a):
    d = a.dir
    CYCLE_S[0] = a.phase * len(PHASES)
    try:
        with open(os.path.join(d, "results.json")) as f:
            res = json.load(f)
    except OSError:
        print("no results.json in %s" % d, file=sys.stderr)
        return 1
    try:
        with open(os.path.join(d, "partner-stats.json")) as f:
            partner = json.load(f)
    except (OSError, ValueError):
        partner = {}
    samples = read_samples(os.path.join(d, "samples.csv"))
    agent_log = ""
    try:
        with open(os.path.join(d, "agent.log"), errors="replace") as f:
            agent_log = f.read()
    except OSError:
        pass
    log_lines = collections.Counter()
    for line in agent_log.splitlines():
        m = re.match(r"certkeeper egress [^:]+: \S+ \S+: (?:(\d{3}): )?(.*)", line)
        if m:
            log_lines[(m.group(1) or "-", m.group(2))] += 1
    panics = [l for l in agent_log.splitlines() if "panicked" in l]

    # A 200 cut short and ended by a clean close cannot be told from a whole one. It
    # is the partner's doing when its answer had no framing and it ended it with a
    # clean TLS close (close_notify): nobody on the way could tell. Otherwise the relay
    # knew the answer was cut (a reset, or a chunked body cut off for an HTTP/1.0
    # application) and ended the application's connection as if it were whole.
    wanted = {t[0] for t in res.get("truncated", [])} | {t[1] for t in res.get("suspects", [])}
    actions = collections.defaultdict(list)
    if wanted:
        with open(os.path.join(d, "actions.csv")) as f:
            for row in csv.DictReader(f):
                if row["id"] in wanted:
                    actions[row["id"]].append(row["action"])
    inherent, relay_cut = [], []
    for rid, client, method, enc, phase, detail in res.get("truncated", []):
        acts = actions.get(rid, [])
        entry = {"id": rid, "client": client, "method": method, "enc": enc, "phase": phase,
                 "got": detail, "partner": acts}
        if enc == "close" and acts and acts[-1].startswith("notify_mid"):
            inherent.append(entry)
        else:
            relay_cut.append(entry)

    counts = res["counts"]
    total = sum(counts.values())
    ok = counts.get("ok", 0)
    warmup = a.warmup
    end = res["duration"]
    rss = flatness(samples, "rss_kb", warmup, end)
    fds = flatness(samples, "fds", warmup, end, allowance_abs=a.fd_slack)

    checks = []

    def check(name, passed, text):
        checks.append((name, passed, text))

    check("cross-talk", counts.get("crosstalk", 0) == 0,
          "%d answers delivered to the wrong request" % counts.get("crosstalk", 0))
    check("complete 200s are right", counts.get("corrupt", 0) == 0,
          "%d complete 200s with a wrong body or request body" % counts.get("corrupt", 0))
    unexplained = counts.get("unexplained", 0)
    check("no 200 cut short without a sign", not relay_cut,
          "%d answers the relay knew were cut reached the application as whole 200s "
          "(clean close, no framing to show the cut); %d more cut by the partner's own "
          "clean close of an unframed answer" % (len(relay_cut), len(inherent)))
    check("every failure is a 502/504 with a reason", unexplained == 0,
          "%d failures of another kind (no answer, no reason, other status)" % unexplained)
    check("no hang", counts.get("hang", 0) == 0 and res.get("clients_stuck_at_end", 0) == 0,
          "%d requests over %g s, %d clients stuck at the end"
          % (counts.get("hang", 0), a.bound, res.get("clients_stuck_at_end", 0)))
    check("the upstream timeout holds", counts.get("late", 0) == 0,
          "%d answers came more than upstream_timeout + 1.5 s after the relay had the request"
          % counts.get("late", 0))
    check("RSS flat", bool(rss and rss["ok"]), rss["rule"] if rss else "too few samples")
    check("descriptors flat", bool(fds and fds["ok"]), fds["rule"] if fds else "too few samples")
    alive = "agent_gone_at" not in res and a.agent_alive
    check("agent alive, no panic", alive and not panics,
          ("agent ended at %s s; " % res.get("agent_gone_at") if not alive else "")
          + "%d panics in its log" % len(panics))
    check("load ran", total > 0 and ok / max(total, 1) > 0.5,
          "%d requests, %.1f%% answered 200 whole and right" % (total, 100.0 * ok / max(total, 1)))
    passed = all(c[1] for c in checks)

    L = []
    L.append("# certkeeper binding soak: %s" % ("PASS" if passed else "FAIL"))
    L.append("")
    L.append("Duration %d s, %d application clients (%s), target %g requests/s; partner "
             "phases of %g s cycling %s; upstream_timeout %d s; warm-up %d s."
             % (end, len(res["clients"]), ", ".join(sorted(set(res["clients"]))),
                res["rate_target"], a.phase, " > ".join(PHASES), a.timeout, warmup))
    L.append("")
    L.append("## Criteria")
    L.append("")
    L.append("| check | result | |")
    L.append("|---|---|---|")
    for name, ok_, text in checks:
        L.append("| %s | %s | %s |" % (name, "pass" if ok_ else "**FAIL**", text))
    L.append("")
    L.append("## Requests")
    L.append("")
    L.append("- requests: %d (%.0f/s)" % (total, total / max(end, 1)))
    L.append("- outcomes: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    L.append("- answers by status: " + ", ".join("%s: %d" % kv for kv in res["status"].items()))
    L.append("- cross-talk: %d" % counts.get("crosstalk", 0))
    lat = res["latency_ms"]
    L.append("- latency ms (p50 / p99 / max): " + "; ".join(
        "%s %s / %s / %s" % (k, v["p50"], v["p99"], v["max"]) for k, v in sorted(lat.items())))
    L.append("")
    L.append("### Failures the applications saw (status, reason, count)")
    L.append("")
    if res["reasons"]:
        L.append("| status | reason | count | by phase |")
        L.append("|---|---|---|---|")
        for s, r, n in res["reasons"]:
            phases = ", ".join("%s %d" % (p, m) for s2, r2, p, m in res["reason_phase"]
                               if s2 == s and r2 == r)
            L.append("| %s | %s | %d | %s |" % (s, r.replace("|", "/"), n, phases))
    else:
        L.append("none")
    L.append("")
    L.append("### 200s cut off (the partner broke off mid-answer; framing shows the cut)")
    L.append("")
    if res["cutoffs"]:
        for r, p, n in res["cutoffs"]:
            L.append("- %s in phase %s: %d" % (r, p, n))
    else:
        L.append("none")
    L.append("")
    L.append("### Pipelined requests left unanswered after an answer that closed the connection")
    L.append("")
    L.append("%d (allowed: the application sends them again)" % counts.get("dropped", 0))
    L.append("")
    L.append("Answers the impatient application left after their head, on purpose: %d"
             % counts.get("abandoned", 0))
    if relay_cut or inherent:
        L.append("")
        L.append("### 200s cut short, ended by a clean close (the application cannot tell)")
        L.append("")
        by = collections.Counter((e["client"], e["enc"], "/".join(e["partner"]) or "-")
                                 for e in relay_cut)
        L.append("The relay knew (FAIL): %d" % len(relay_cut))
        for (client, enc, acts), n in by.most_common():
            L.append("- client %s, answer framing %s, partner did %s: %d" % (client, enc, acts, n))
        for e in relay_cut[:5]:
            L.append("  - `%s`" % json.dumps(e))
        L.append("")
        L.append("The partner's own clean close of an unframed answer (allowed): %d" % len(inherent))
    if res.get("suspects"):
        L.append("")
        L.append("### Outside the criteria, with what the partner did to those requests")
        L.append("")
        L.append("(`@head`: the partner cut right after the answer's head; `!`: its write failed)")
        L.append("")
        by = collections.Counter(
            (k, reason, enc, "/".join(actions.get(rid, [])) or "nothing (never reached it)")
            for k, rid, client, method, enc, phase, reason in res["suspects"])
        for (k, reason, enc, acts), n in by.most_common(20):
            L.append("- %s: %s; answer framing %s; partner: %s: %d" % (k, reason, enc, acts, n))
    if res["fatal"]:
        L.append("")
        L.append("### Failures outside the criteria")
        L.append("")
        for k, r, n in res["fatal"]:
            L.append("- %s: %s: %d" % (k, r, n))
        L.append("")
        L.append("Examples:")
        L.append("")
        for k, ex in res["examples"].items():
            for e in ex[:5]:
                L.append("- `%s`" % json.dumps(e))
    L.append("")
    L.append("## Agent (sampled every 5 s)")
    L.append("")
    for label, f, unit in (("RSS", rss, "kB"), ("descriptors", fds, "")):
        if f:
            L.append("- %s: at warm-up end %.0f%s, at the end %.0f%s, max after warm-up %.0f%s "
                     "(max during warm-up %.0f); first/last %.0f s window max %.0f / %.0f, "
                     "median %.0f / %.0f"
                     % (label, f["at_warmup"], unit, f["at_end"], unit, f["max"], unit,
                        f["max_during_warmup"], f["window_s"], f["first_window_max"],
                        f["last_window_max"], f["first_window_median"], f["last_window_median"]))
    if samples:
        L.append("- threads: %d..%d; CPU: %.1f s over the run (%.1f%% of one core)"
                 % (min(s["threads"] for s in samples), max(s["threads"] for s in samples),
                    samples[-1]["cpu_s"] - samples[0]["cpu_s"],
                    100 * (samples[-1]["cpu_s"] - samples[0]["cpu_s"])
                    / max(samples[-1]["t"] - samples[0]["t"], 1)))
    L.append("")
    L.append("## Partner")
    L.append("")
    L.append("- " + ", ".join("%s %s" % kv for kv in sorted(partner.items())))
    L.append("")
    L.append("## Relay log lines (agent.log: status, reason)")
    L.append("")
    for (s, r), n in log_lines.most_common(25):
        L.append("- %s %s: %d" % (s, r, n))
    L.append("")
    L.append("Raw: requests.csv (every request), samples.csv (agent every 5 s), actions.csv "
             "(what the partner did with each request), results.json, partner-stats.json, "
             "agent.log.")
    text = "\n".join(L) + "\n"
    with open(os.path.join(d, "summary.md"), "w") as f:
        f.write(text)
    print(text)
    return 0 if passed else 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(q):
        q.add_argument("--phase", type=float, default=30, help="seconds per partner phase")
        q.add_argument("--random", type=int, default=1,
                       help="which sequence of random choices (the same one repeats a run)")

    q = sub.add_parser("partner")
    common(q)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--cert", required=True, help="server certificate chain (PEM)")
    q.add_argument("--key", required=True)
    q.add_argument("--ca", required=True, help="CA that signs client certificates")
    q.add_argument("--t0-file", required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--stall", type=float, default=5, help="seconds a stalled answer is held")
    q.add_argument("--down", type=float, default=4, help="seconds down in each restart")
    q.add_argument("--idle", type=float, default=20, help="keep-alive idle close (normal)")

    q = sub.add_parser("probe")
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--binding", required=True)
    q.add_argument("--wait", type=float, default=30)

    q = sub.add_parser("load")
    common(q)
    q.add_argument("--port", type=int, required=True)
    q.add_argument("--binding", required=True)
    q.add_argument("--t0-file", required=True)
    q.add_argument("--duration", type=float, required=True)
    q.add_argument("--rate", type=float, default=150)
    q.add_argument("--clients", type=int, default=6)
    q.add_argument("--bound", type=float, default=15, help="a longer request is a hang")
    q.add_argument("--agent-pid", type=int, required=True)
    q.add_argument("--out", required=True)
    q.add_argument("--progress", action="store_true")
    q.add_argument("--timeout", type=int, default=3, help="the home's upstream_timeout")
    q.add_argument("--unframed", type=int, default=1,
                   help="0: no answers without framing, no HTTP/1.0 application")

    q = sub.add_parser("report")
    q.add_argument("dir")
    q.add_argument("--phase", type=float, default=30)
    q.add_argument("--warmup", type=float, default=60)
    q.add_argument("--timeout", type=int, default=3)
    q.add_argument("--bound", type=float, default=15)
    q.add_argument("--fd-slack", type=int, default=4)
    q.add_argument("--agent-alive", type=int, default=1)

    a = p.parse_args()
    if a.cmd == "partner":
        return cmd_partner(a)
    if a.cmd == "probe":
        return cmd_probe(a)
    if a.cmd == "load":
        return cmd_load(a)
    return cmd_report(a)


if __name__ == "__main__":
    sys.exit(main() or 0)
