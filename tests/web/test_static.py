"""The shared page stack: vendored files match their recorded checksums and ship with their
licences; static files are served from the package; pages send the security headers."""

from __future__ import annotations

import hashlib
import re

from tollway.web import STATIC_DIR, security_headers


def test_vendored_files_match_the_readme_and_have_licences():
    readme = (STATIC_DIR / "vendor" / "README.md").read_text()
    rows = re.findall(r"\| `([^`]+)` \| `([0-9a-f]{64})` \|", readme)
    assert len(rows) == 3
    for path, digest in rows:
        data = (STATIC_DIR / "vendor" / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, path
        assert (STATIC_DIR / "vendor" / path.split("/")[0] / "LICENSE").is_file()


def test_static_served_from_the_package(anon):
    r = anon.get("/static/vendor/htmx-2.0.11/htmx.min.js")
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert anon.get("/static/tollway.css").status_code == 200
    assert anon.get("/static/vendor/uplot-1.6.32/uPlot.iife.min.js").status_code == 200
    assert anon.get("/static/nope.js").status_code == 404


def test_security_headers():
    h = security_headers(nonce="abc", frame_ancestors=["https://app.example.com"], image_origins=["https://cdn.x"])
    csp = h["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://app.example.com" in csp
    assert "script-src 'self';" in csp and "'nonce-abc'" in csp and "img-src 'self' data: https://cdn.x" in csp
    assert h["Referrer-Policy"] == "no-referrer"
