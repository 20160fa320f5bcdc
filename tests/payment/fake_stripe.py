"""A stateful fake of the few Stripe endpoints Tollway uses, served over HTTP on loopback so that
the real ``stripe`` library talks to it (``TOLLWAY_STRIPE_API_BASE``).

It keeps customers, invoices and invoice items; replays a POST sent again with the same
``Idempotency-Key`` (and refuses the key with other parameters, as Stripe does); records every
request; validates what Stripe validates for these calls (amounts are integers, items go on
draft invoices in the invoice's currency, ``days_until_due`` only with ``send_invoice``); and
can inject faults: a 500 before anything is done, or a response that never comes in time
(the change is applied, then the answer is held past the client's timeout)."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "sk_test_tollway_fake"


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    replayed: bool = False


@dataclass
class Fault:
    method: str
    pattern: str
    mode: str  # "500" or "timeout"
    times: int = 1


def _nest(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``metadata[a]=1`` -> ``{"metadata": {"a": "1"}}`` (Stripe's form encoding)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


@dataclass
class FakeStripe:
    hold_seconds: float = 3.0
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    _keys: dict[str, tuple[str, str, dict[str, Any], int, dict[str, Any]]] = field(default_factory=dict)
    _seq: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                fake.handle(self, method)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, method: str, pattern: str, mode: str = "500", times: int = 1) -> None:
        """The next ``times`` requests matching ``method`` and the path regex ``pattern`` fail."""
        self.faults.append(Fault(method, pattern, mode, times))

    def forget_idempotency_keys(self) -> None:
        """What Stripe does after 24 hours."""
        with self._lock:
            self._keys.clear()

    def posts(self, pattern: str = "") -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and re.search(pattern, r.path)]

    # -- HTTP ----------------------------------------------------------------------------------

    def _fault(self, method: str, path: str) -> str | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and re.search(fault.pattern, path):
                    fault.times -= 1
                    return fault.mode
        return None

    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length).decode() if length else ""
        params = _nest(parse_qsl(split.query if method != "POST" else raw, keep_blank_values=True))
        key = h.headers.get("Idempotency-Key")
        request = Request(method, split.path, params, key)
        with self._lock:
            self.requests.append(request)
        if h.headers.get("Authorization") != f"Bearer {API_KEY}":
            return self._send(h, 401, _error("invalid_request_error", "Invalid API Key provided"))
        mode = self._fault(method, split.path)
        if mode == "500":
            return self._send(h, 500, _error("api_error", "injected failure"))
        with self._lock:
            if method == "POST" and key and key in self._keys:
                k_method, k_path, k_params, status, body = self._keys[key]
                if (k_method, k_path, k_params) != (method, split.path, params):
                    message = f"Key {key} was used with other parameters"
                    status, body = 400, _error("idempotency_error", message)
                request.replayed = True
            else:
                status, body = self._route(method, split.path, params)
                if method == "POST" and key and status < 500:
                    self._keys[key] = (method, split.path, params, status, body)
        if mode == "timeout":
            time.sleep(self.hold_seconds)  # applied, but the answer comes too late
        self._send(h, status, body)

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.send_header("Request-Id", f"req_{len(self.requests)}")
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- the API -------------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._seq += 1
        return f"{prefix}_fake{self._seq:04d}"

    def _route(self, method: str, path: str, p: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if (method, path) == ("POST", "/v1/customers"):
            cus = {"id": self._id("cus"), "object": "customer", "name": p.get("name"), "email": p.get("email"),
                   "metadata": p.get("metadata", {})}  # fmt: skip
            self.customers[cus["id"]] = cus
            return 200, cus
        if (method, path) == ("POST", "/v1/invoices"):
            if p.get("customer") not in self.customers:
                return 400, _error("invalid_request_error", "No such customer", "customer")
            method_ = p.get("collection_method", "charge_automatically")
            if method_ == "send_invoice" and not re.fullmatch(r"[1-9]\d*", p.get("days_until_due", "")):
                return 400, _error("invalid_request_error", "days_until_due must be > 0", "days_until_due")
            if method_ == "charge_automatically" and "days_until_due" in p:
                return 400, _error("invalid_request_error", "days_until_due is only for send_invoice", "days_until_due")
            inv = {"id": self._id("in"), "object": "invoice", "customer": p["customer"],
                   "currency": p.get("currency"), "collection_method": method_,
                   "days_until_due": int(p["days_until_due"]) if "days_until_due" in p else None,
                   "auto_advance": p.get("auto_advance") == "true", "description": p.get("description"),
                   "metadata": p.get("metadata", {}), "status": "draft", "total": 0, "amount_due": 0,
                   "number": None, "hosted_invoice_url": None}  # fmt: skip
            self.invoices[inv["id"]] = inv
            return 200, inv
        if (method, path) == ("POST", "/v1/invoiceitems"):
            inv = self.invoices.get(p.get("invoice", ""))
            if inv is None or inv["status"] != "draft":
                return 400, _error("invalid_request_error", "invoice must be a draft invoice", "invoice")
            if not re.fullmatch(r"-?\d+", p.get("amount", "")):
                return 400, _error("invalid_request_error", "Invalid integer", "amount")
            if p.get("currency") != inv["currency"] or p.get("customer") != inv["customer"]:
                return 400, _error("invalid_request_error", "currency and customer must match the invoice")
            item = {"id": self._id("ii"), "object": "invoiceitem", "invoice": inv["id"], "customer": p["customer"],
                    "amount": int(p["amount"]), "currency": p["currency"], "description": p.get("description"),
                    "metadata": p.get("metadata", {})}  # fmt: skip
            self.items[item["id"]] = item
            inv["total"] += item["amount"]
            inv["amount_due"] = inv["total"]
            return 200, item
        if (method, path) == ("GET", "/v1/invoiceitems"):
            data = [i for i in self.items.values() if i["invoice"] == p.get("invoice")]
            return 200, {"object": "list", "data": data, "has_more": False, "url": "/v1/invoiceitems"}
        m = re.fullmatch(r"/v1/invoices/(in_\w+)(/finalize|/void|/pay)?", path)
        if m and m.group(1) in self.invoices:
            inv = self.invoices[m.group(1)]
            action = m.group(2)
            if method == "GET" and action is None:
                return 200, inv
            if method == "DELETE" and action is None and inv["status"] == "draft":
                del self.invoices[inv["id"]]
                return 200, {"id": inv["id"], "object": "invoice", "deleted": True}
            if method == "POST" and action == "/finalize" and inv["status"] == "draft":
                inv.update(status="open", number=f"FAKE-{len(self.invoices):04d}",
                           hosted_invoice_url=f"{self.url}/hosted/{inv['id']}")  # fmt: skip
                return 200, inv
            if method == "POST" and action == "/pay" and inv["status"] in ("open", "uncollectible"):
                if p.get("paid_out_of_band") != "true":
                    return 402, _error("card_error", "no payment method in the fake")
                inv["status"] = "paid"
                return 200, inv
            if method == "POST" and action == "/void" and inv["status"] in ("open", "uncollectible"):
                inv["status"] = "void"
                return 200, inv
            return 400, _error("invalid_request_error", f"invoice is {inv['status']}")
        return 404, _error("invalid_request_error", f"Unrecognized request URL ({method}: {path})")

    # -- helpers for tests ---------------------------------------------------------------------

    def only_invoice(self) -> dict[str, Any]:
        [inv] = self.invoices.values()
        return inv

    def items_of(self, invoice_id: str) -> list[dict[str, Any]]:
        return [i for i in self.items.values() if i["invoice"] == invoice_id]


def _error(type_: str, message: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, **({"param": param} if param else {})}}


def event(type_: str, invoice: dict[str, Any], *, event_id: str) -> str:
    """A Stripe event body about ``invoice`` (as Stripe sends it: the object in data.object)."""
    return json.dumps({"id": event_id, "object": "event", "api_version": "2026-10-28.endive", "type": type_,
                       "created": int(time.time()), "livemode": False, "data": {"object": invoice}})  # fmt: skip
