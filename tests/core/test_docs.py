"""The project's docs stand alone: every link in README.md and docs/ points inside the repository
(or to a web page), and no page refers to the team's folders outside it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_links_stay_inside_the_repository() -> None:
    bad = []
    for page in PAGES:
        text = page.read_text()
        if "../shared" in text or "shared/docs" in text:
            bad.append(f"{page.name}: mentions ../shared")
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "mailto:", "#")):
                continue
            resolved = (page.parent / target.split("#")[0]).resolve()
            if ROOT not in resolved.parents and resolved != ROOT:
                bad.append(f"{page.name}: {target} leaves the repository")
            elif not resolved.exists():
                bad.append(f"{page.name}: {target} does not exist")
    assert bad == []
