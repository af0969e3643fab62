"""The layer rules of docs/ARCHITECTURE.md, checked on the imports of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Pure core modules: stdlib and other pure modules only (fmt may use Babel: it is the one formatter).
PURE = {"money", "periods", "errors", "results", "records", "invoicing", "projections"}
RULES: dict[str, tuple[str, ...]] = {
    # package prefix: forbidden import prefixes
    "billing_core": ("slack_sdk", "slack_bolt", "matplotlib", "bot", "charts"),
    "charts": ("slack_sdk", "slack_bolt", "sqlalchemy", "httpx", "bot", "billing_core.db", "billing_core.service"),
    "bot.views": ("sqlalchemy", "httpx", "billing_core.db", "slack_bolt"),
    "bot.handlers": ("sqlalchemy", "billing_core.db"),
    "bot.jobs": ("bot.handlers",),
}
PURE_FORBIDDEN = ("sqlalchemy", "httpx", "jinja2", "weasyprint", "babel", "alembic", "psycopg")


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in ("billing_core", "charts", "bot"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found.append((dotted, path))
    return found


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def violates(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: str(v) if isinstance(v, str) else "")
def test_module_respects_the_layers(module: str, path: Path) -> None:
    imported = imports_of(path)
    for package, forbidden in RULES.items():
        if module == package or module.startswith(package + "."):
            bad = sorted(n for n in imported if violates(n, forbidden))
            assert not bad, f"{module} must not import {bad}"
    if module.startswith("billing_core.") and module.split(".")[1] in PURE and module.count(".") == 1:
        bad = sorted(n for n in imported if violates(n, PURE_FORBIDDEN))
        assert not bad, f"pure core module {module} must not import {bad}"


def test_the_rules_catch_a_violation(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("import slack_sdk\nfrom sqlalchemy import select\n")
    assert violates("slack_sdk", RULES["billing_core"])
    assert {"slack_sdk", "sqlalchemy"} <= imports_of(sample)
