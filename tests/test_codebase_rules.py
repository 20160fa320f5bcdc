"""Rules of the house that keep the code easy to change, checked over ``src/tollway``:

- no module over 600 lines (split it by use case first, as ``invoice/finalize.py`` and
  ``catalog/plans.py`` were);
- no module uses another module's private (``_name``) functions, classes or constants, and a
  private module (``_fields.py``) is imported only from inside its own package.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tollway

ROOT = Path(tollway.__file__).parent
MAX_LINES = 600


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def _where(path: Path) -> str:
    return str(path.relative_to(ROOT.parent)) if path.is_relative_to(ROOT.parent) else path.name


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _package(module: str, path: Path) -> str:
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _violations(module: str, path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _package(module, path)
    found: list[str] = []
    imported: set[str] = set()  # local names bound to tollway modules or their members

    def check_module(target: str, lineno: int) -> None:
        parts = target.split(".")
        for i, part in enumerate(parts):
            if _private(part):
                owner = ".".join(parts[:i])
                if not (package == owner or package.startswith(owner + ".")):
                    found.append(f"{_where(path)}:{lineno} imports private module {target}")
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.startswith("tollway"):
            check_module(node.module, node.lineno)
            for alias in node.names:
                if _private(alias.name) and node.module != module:
                    found.append(f"{_where(path)}:{node.lineno} imports {node.module}.{alias.name}")
                imported.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tollway"):
                    check_module(alias.name, node.lineno)
                    imported.add((alias.asname or alias.name).split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported
        ):
            found.append(f"{_where(path)}:{node.lineno} uses {node.value.id}.{node.attr}")
    return found


def test_no_module_over_600_lines() -> None:
    long = {
        str(path.relative_to(ROOT.parent)): n
        for _, path in _modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules by use case (at most {MAX_LINES} lines each): {long}"


def test_no_module_uses_another_modules_private_names() -> None:
    found = [v for module, path in _modules() for v in _violations(module, path)]
    assert found == [], "\n".join(found)


def test_the_rules_catch_what_they_are_meant_to(tmp_path: Path) -> None:
    """The checker itself: a private import, a private attribute of an imported module and a
    private module from another package are reported; the same package's private module is not."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from tollway.meter.query import _Partial\n"
        "from tollway.meter import rollup\n"
        "from tollway.pricing._fields import field_path\n"
        "rollup._newer('a', 'b')\n",
        encoding="utf-8",
    )
    found = _violations("tollway.invoice.bad", bad)
    assert len(found) == 3, found
    mixed = tmp_path / "mixed.py"
    mixed.write_text(
        "from tollway.pricing._fields import field_path\nfrom tollway.models._common import utcnow\n", encoding="utf-8"
    )
    assert _violations("tollway.pricing.charges", mixed) == ["mixed.py:2 imports private module tollway.models._common"]
