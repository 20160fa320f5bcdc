"""What a large request body costs the server, before and after admission-before-the-body.

    .venv/bin/python bench/admission.py --baseline-src /tmp/tollway-before/src

Starts a real ``tollway serve`` (SQLite, worker off) for each source tree — the baseline tree
given (e.g. ``git archive <commit> src | tar -x -C /tmp/tollway-before``) and this checkout —
and sends, one at a time:

- a 40 MB body (a list of 5 million small JSON objects) to ``POST /v1/customers``, no API key;
- a 100 MB body with an admin key and an ``Idempotency-Key``;
- the same 100 MB streamed without ``Content-Length`` (chunked).

For each it reports the server's CPU seconds (``/proc/<pid>/stat``), its peak resident memory
above the level before the request (``VmHWM`` minus ``VmRSS``), the answer and the wall time.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _common import start_server

MB = 1024 * 1024


def _status(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) * 1024
    return out


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        raw = f.read()
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _body(size: int, *, objects: bool = False) -> bytes:
    """A customer whose name is ``size`` bytes long, or (``objects``) whose metadata holds a list
    of small objects: the kind of document that costs most memory once parsed."""
    if objects:
        head, tail, item = b'{"id": "big", "currency": "USD", "metadata": {"m": [', b'{"a":1}]}}', b'{"a":1},'
        return head + item * ((size - len(head) - len(tail)) // len(item)) + tail
    head, tail = b'{"id": "big", "name": "', b'", "currency": "USD"}'
    return head + b"a" * (size - len(head) - len(tail)) + tail


def _chunks(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:  # "5" resets VmHWM to the current RSS
        f.write("5")


def measure(url: str, pid: int, label: str, send) -> dict[str, object]:  # type: ignore[no-untyped-def]
    _reset_peak(pid)
    before_rss, before_cpu, started = _status(pid)["VmRSS"], _cpu(pid), time.monotonic()
    try:
        answer = str(send().status_code)
    except httpx.HTTPError as exc:  # the server answered early and closed while we were sending
        answer = f"connection closed ({type(exc).__name__})"
    wall = time.monotonic() - started
    time.sleep(0.5)
    peak = _status(pid)["VmHWM"]
    return {
        "case": label,
        "answer": answer,
        "cpu_s": _cpu(pid) - before_cpu,
        "peak_mb": max(0, peak - before_rss) / MB,
        "wall_s": wall,
    }


def run(src: str | None, name: str) -> list[dict[str, object]]:
    """Each case against a fresh server, so one case's memory does not hide the next one's."""
    os.environ["PYTHONPATH"] = src or ""
    forty, hundred = _body(40 * MB, objects=True), _body(100 * MB)
    cases = [
        ("40 MB of small JSON objects, no key", forty, False, None),
        ("100 MB, admin key + Idempotency-Key", hundred, True, "k1"),
        ("100 MB chunked, admin key + Idempotency-Key", hundred, True, "k2"),
    ]
    rows = []
    for label, body, with_key, idem in cases:
        with tempfile.TemporaryDirectory() as tmp:
            server = start_server(f"sqlite:///{tmp}/bench.db", background_worker=False)
            try:
                headers = {"content-type": "application/json"}
                if with_key:
                    headers["Authorization"] = f"Bearer {server.key('admin')}"
                    headers["Idempotency-Key"] = idem or ""
                httpx.get(f"{server.url}/v1/customers", headers=headers)  # warm up
                content = _chunks(body) if "chunked" in label else body
                with httpx.Client(timeout=300) as client:
                    row = measure(
                        server.url,
                        server.proc.pid,
                        label,
                        functools.partial(client.post, f"{server.url}/v1/customers", content=content, headers=headers),
                    )
                assert httpx.get(f"{server.url}/healthz").status_code == 200
            finally:
                server.stop()
        row["tree"] = name
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline-src", help="src/ directory of the baseline tree (before)")
    args = parser.parse_args()
    rows = []
    if args.baseline_src:
        rows += run(args.baseline_src, "before")
    rows += run(str(Path(__file__).parent.parent / "src"), "after")
    print(f"{'tree':<7} {'case':<45} {'answer':<30} {'server CPU s':>12} {'peak MB':>8} {'wall s':>7}")
    for r in rows:
        figures = f"{r['cpu_s']:>12.2f} {r['peak_mb']:>8.1f} {r['wall_s']:>7.2f}"
        print(f"{r['tree']:<7} {r['case']:<45} {r['answer']:<30} {figures}")


if __name__ == "__main__":
    main()
