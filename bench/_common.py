"""Helpers shared by the benchmarks: a scratch PostgreSQL database and a real server process."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import httpx
import psycopg

PG_ADMIN = os.environ.get("TOLLWAY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def pg_url(db: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + db


def fresh_database(name: str) -> str:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen[bytes]
    env: dict[str, str]

    def key(self, scope: str) -> str:
        return self.cli("keys", "create", "--scope", scope).strip().splitlines()[-1]

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "tollway", *args], env=self.env, check=True, capture_output=True, text=True
        )
        return out.stdout

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_server(
    db_url: str, workers: int = 1, *, background_worker: bool = True, extra_env: dict[str, str] | None = None
) -> Server:
    """``tollway serve`` on a free port; with its in-process worker (rollups, billing, outbox)."""
    port = free_port()
    env = {
        **os.environ,
        "TOLLWAY_DATABASE_URL": db_url,
        "TOLLWAY_RUN_WORKER_IN_SERVE": "true" if background_worker else "false",
        "TOLLWAY_OUTBOX_POLL_INTERVAL_SECONDS": "0.5",
        **(extra_env or {}),
    }
    # TOLLWAY_BENCH_SERVER_LOG=<file>: the servers' output appended there (default: discarded)
    log_path = os.environ.get("TOLLWAY_BENCH_SERVER_LOG")
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        [sys.executable, "-m", "tollway", "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return Server(url, proc, env)
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


def summary(values: list[float]) -> str:
    values = sorted(values)
    p50 = statistics.median(values)
    p95 = values[min(len(values) - 1, round(0.95 * (len(values) - 1)))]
    return f"p50 {p50:.1f}  p95 {p95:.1f}  min {values[0]:.1f}  max {values[-1]:.1f}  (n={len(values)})"


def _proc_cpu() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, command name, CPU seconds used so far) for every process."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry)] = (int(fields[1]), name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def cpu_by_role(server_pid: int) -> dict[str, float]:
    """CPU seconds used so far by role: the Tollway server (and its worker processes),
    PostgreSQL, this load generator, everything else. Compare two snapshots for a run."""
    roles = {"tollway server": 0.0, "postgresql": 0.0, "load generator": 0.0, "other": 0.0}
    procs = _proc_cpu()
    for pid, (ppid, name, secs) in procs.items():
        if pid == server_pid or ppid == server_pid:
            roles["tollway server"] += secs
        elif name.startswith("postgres"):
            roles["postgresql"] += secs
        elif pid == os.getpid():
            roles["load generator"] += secs
        else:
            roles["other"] += secs
    return roles


def cpu_share(before: dict[str, float], after: dict[str, float], wall: float, items: int | None = None) -> str:
    """Each role's CPU between two snapshots, in cores; with ``items``, also in µs per item (on a
    shared machine steadier than a rate: other tenants slow the work more than they make it cost)."""
    used = {k: after[k] - before[k] for k in before}
    shares = ", ".join(f"{k} {v / wall:.2f} cores" for k, v in used.items())
    if not items:
        return shares
    roles = [k for k in used if k != "other"]
    total = sum(used[k] for k in roles)
    per_item = ", ".join(f"{k} {1e6 * used[k] / items:.1f}" for k in roles)
    return f"{shares}\n    CPU per event (µs): {per_item}; together {1e6 * total / items:.1f}"
