# An HTTP/2 partner over mutual TLS (python h2) that logs what each stream carried and how it
# ended, and misbehaves as its path says. usage: partner_h2.py PORT; RA_DIR as for partner_h1.py.
import os, socket, ssl, sys, threading, time, itertools
DIR = os.environ["RA_DIR"]
import h2.connection, h2.config, h2.events, h2.errors, h2.settings

PORT = int(sys.argv[1])
LOG = open(DIR + f"/h2partner-{PORT}.log", "a", buffering=1)
ids = itertools.count(1)

def log(*a):
    LOG.write(time.strftime("%H:%M:%S ") + " ".join(str(x) for x in a) + "\n")

def handle(raw, ctx):
    cid = next(ids)
    try:
        s = ctx.wrap_socket(raw, server_side=True)
    except Exception as e:
        log(f"conn={cid} handshake failed {e!r}"); return
    cfg = h2.config.H2Configuration(client_side=False, validate_inbound_headers=False,
                                    normalize_inbound_headers=False, validate_outbound_headers=False,
                                    normalize_outbound_headers=False)
    c = h2.connection.H2Connection(config=cfg)
    c.initiate_connection()
    s.sendall(c.data_to_send())
    streams = {}
    lock = threading.Lock()
    def send():
        d = c.data_to_send()
        if d:
            s.sendall(d)
    def later(delay, fn):
        def run():
            time.sleep(delay)
            with lock:
                try:
                    fn(); send()
                except Exception as e:
                    log(f"conn={cid} later failed {e!r}")
        threading.Thread(target=run, daemon=True).start()
    def respond(sid):
        st = streams[sid]
        h = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v) for k, v in st["headers"])
        path = h.get(":path", "")
        p, _, q = path.partition("?")
        body = (f"conn={cid} stream={sid} path={path} got={st['len']} ended={st['how']}\n").encode()
        if p == "/cl-more":   # content-length 5, DATA of 10
            c.send_headers(sid, [(":status", "200"), ("content-length", "5")]); c.send_data(sid, b"0123456789", end_stream=True); return
        if p == "/cl-less":
            c.send_headers(sid, [(":status", "200"), ("content-length", "50")]); c.send_data(sid, b"0123456789", end_stream=True); return
        if p == "/trailers":
            c.send_headers(sid, [(":status", "200")]); c.send_data(sid, b"data\n")
            c.send_headers(sid, [("x-trailer", "t"), ("content-length", "999")], end_stream=True); return
        if p == "/rst-mid":
            c.send_headers(sid, [(":status", "200"), ("content-length", "100")]); c.send_data(sid, b"half")
            later(0.2, lambda: c.reset_stream(sid, 2)); return
        if p == "/rst-mid-chunked":
            c.send_headers(sid, [(":status", "200")]); c.send_data(sid, b"half")
            later(0.2, lambda: c.reset_stream(sid, int(q or "0"))); return
        if p == "/goaway-mid":
            c.send_headers(sid, [(":status", "200")]); c.send_data(sid, b"half")
            later(0.2, lambda: c.close_connection(error_code=0, last_stream_id=sid)); return
        if p == "/hugeheaders":
            c.send_headers(sid, [(":status", "200")] + [("x-h%d" % i, "v" * 1000) for i in range(200)], end_stream=True); return
        if p == "/hdrinject":  # header values that cannot be HTTP/1.1
            c.send_headers(sid, [(":status", "200"), ("x-a", "1\r\nInjected: yes"), ("content-length", "2")]); c.send_data(sid, b"ok", end_stream=True); return
        if p == "/connhdr":
            c.send_headers(sid, [(":status", "200"), ("connection", "close"), ("transfer-encoding", "chunked"), ("content-length", "2")]); c.send_data(sid, b"ok", end_stream=True); return
        if p == "/upper":
            c.send_headers(sid, [(":status", "200"), ("X-Upper", "1"), ("content-length", "2")]); c.send_data(sid, b"ok", end_stream=True); return
        if p == "/status":
            c.send_headers(sid, [(":status", q or "200")]); c.send_data(sid, b"body-for-" + q.encode(), end_stream=True); return
        if p == "/info":  # 1xx flood then answer
            for i in range(int(q or "100")):
                c.send_headers(sid, [(":status", "103"), ("link", "</x>")])
            c.send_headers(sid, [(":status", "200")]); c.send_data(sid, body, end_stream=True); return
        if p == "/silent":
            return
        c.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
        c.send_data(sid, body, end_stream=True)
    try:
        while True:
            data = s.recv(65536)
            if not data:
                break
            with lock:
                for ev in c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = {"headers": ev.headers, "len": 0, "how": "open"}
                        hs = [(k, v) for k, v in ev.headers]
                        log(f"conn={cid} stream={ev.stream_id} headers={hs}")
                        path = dict(hs).get(b":path", b"")
                        if path.startswith(b"/early"):  # answers before reading the body
                            streams[ev.stream_id]["how"] = "answered-early"
                            respond(ev.stream_id)
                    elif isinstance(ev, h2.events.DataReceived):
                        st = streams.get(ev.stream_id)
                        if st is not None:
                            st["len"] += len(ev.data)
                        c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        st = streams[ev.stream_id]
                        log(f"conn={cid} stream={ev.stream_id} END_STREAM after {st['len']} body bytes")
                        if st["how"] == "open":
                            st["how"] = "end_stream"
                            respond(ev.stream_id)
                    elif isinstance(ev, h2.events.StreamReset):
                        st = streams.get(ev.stream_id, {"len": "?"})
                        log(f"conn={cid} stream={ev.stream_id} RST_STREAM code={ev.error_code} after {st['len']} body bytes")
                    elif isinstance(ev, h2.events.TrailersReceived):
                        log(f"conn={cid} stream={ev.stream_id} trailers={ev.headers}")
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        log(f"conn={cid} GOAWAY from client {ev}")
                send()
    except Exception as e:
        log(f"conn={cid} ended {e!r}")
    log(f"conn={cid} closed")
    try:
        s.close()
    except Exception:
        pass

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(DIR + "/srv.pem", DIR + "/srv.key")
ctx.load_verify_locations(DIR + "/ca.pem")
ctx.verify_mode = ssl.CERT_REQUIRED
ctx.set_alpn_protocols(["h2"])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", PORT)); ls.listen(512)
while True:
    raw, _ = ls.accept()
    threading.Thread(target=handle, args=(raw, ctx), daemon=True).start()
