"""A webhook receiver, as a team would write one, run as its own process by the tests:

    python receiver.py PORT SECRET MODE OUTFILE

It checks each event's Standard Webhooks signature with SECRET (its own few lines of HMAC, as
docs/api.md shows) and its timestamp, then by MODE answers 204 ("ok"), 500 ("fail"), or never
("hang"). Every verified event is appended to OUTFILE as a JSON line with its webhook-id."""

import base64
import hashlib
import hmac
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, SECRET, MODE, OUTFILE = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


def verified(headers, body: bytes) -> bool:
    msg_id, stamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(time.time() - int(stamp)) > 300:
        return False
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    given = [
        s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")
    ]
    return any(hmac.compare_digest(expected, g) for g in given)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if MODE == "hang":
            time.sleep(3600)
        if not verified(self.headers, body):
            self.send_response(401)
            self.end_headers()
            return
        with open(OUTFILE, "a") as out:
            out.write(json.dumps({"id": self.headers["webhook-id"], **json.loads(body)}) + "\n")
        self.send_response(500 if MODE == "fail" else 204)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
