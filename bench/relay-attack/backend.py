# A backend behind the partner's nginx: answers each request with what it parsed (method, path,
# headers, body) and appends the same to backend.log. usage: backend.py PORT
import http.server, os, sys, json
DIR = os.environ["RA_DIR"]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def handle_one(self):
        pass
    def do_ANY(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        doc = {"method": self.command, "path": self.path, "headers": list(self.headers.items()), "body": body.decode("latin1")}
        out = (json.dumps(doc) + "\n").encode()
        with open(DIR + "/backend.log", "a") as f: f.write(json.dumps(doc) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(out)
    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = do_OPTIONS = do_ANY
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
