"""A webhook receiver that verifies Tollway's Standard Webhooks signatures and deduplicates on
``webhook-id``. Standard library HTTP server plus the ``standardwebhooks`` package.

    pip install standardwebhooks
    TOLLWAY_WEBHOOK_SECRET=whsec_... python receiver.py 9000

Answer 2xx quickly (within Tollway's 10 s timeout) and do slow work afterwards: anything else
is retried. Tollway delivers at least once, so a message may arrive more than once.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

WEBHOOK = Webhook(os.environ["TOLLWAY_WEBHOOK_SECRET"])
SEEN: set[str] = set()  # use your database in production: a unique key on webhook-id


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            # Checks the HMAC over "webhook-id.webhook-timestamp.body" and that the timestamp is
            # within 5 minutes (replays of old messages are refused).
            message = WEBHOOK.verify(body, dict(self.headers.items()))
        except WebhookVerificationError as exc:
            self.send_response(400)
            self.end_headers()
            self.wfile.write(f"bad signature: {exc}".encode())
            return
        if message["id"] not in SEEN:  # the same id on every retry of one message
            SEEN.add(message["id"])
            handle(message["type"], message["data"])
        self.send_response(204)
        self.end_headers()


def handle(event_type: str, data: dict[str, object]) -> None:
    if event_type == "alert.triggered":
        print(f"{data['customer']} reached {data['threshold_value']} {data['meter'] or data['metric']}")
    else:
        print(event_type, json.dumps(data))


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
    HTTPServer(("127.0.0.1", port), Receiver).serve_forever()
