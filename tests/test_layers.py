"""shared/DESIGN.md "Layout": core → clients → segments → outreach → newsletters, campaigns →
analytics. An app imports only from its own layer's app or the layers below; newsletters and
campaigns never import each other. Checked on every module of every app (function-local
imports included), so a new import across the line fails CI."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [("core",), ("clients",), ("segments",), ("outreach",), ("newsletters", "campaigns"),
          ("analytics",)]
LEVEL = {app: i for i, apps in enumerate(LAYERS) for app in apps}
# Known crossings, each to be removed, never added to: the client list's segment filter and the
# client API's segment codes read segments from clients (function-local imports).
KNOWN = {("clients/selectors.py", "segments"), ("clients/api/clients.py", "segments")}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" not in path.parts:
            yield path


@pytest.mark.parametrize("app", list(LEVEL))
def test_an_app_imports_only_from_its_layer_or_below(app):
    wrong = {}
    for path in _modules(app):
        for name in _imports(path) & set(LEVEL):
            key = (str(path.relative_to(ROOT)), name)
            if name != app and LEVEL[name] >= LEVEL[app] and key not in KNOWN:
                wrong.setdefault(str(path.relative_to(ROOT)), set()).add(name)
    assert wrong == {}, wrong


def test_the_known_crossings_still_exist():
    """When one is fixed, take it off KNOWN so it cannot come back."""
    for module, name in KNOWN:
        assert name in _imports(ROOT / module), (module, name)


def test_the_scan_sees_real_imports():
    assert "outreach" in _imports(ROOT / "newsletters" / "inbound.py")
    assert "clients" in _imports(ROOT / "outreach" / "services.py")
