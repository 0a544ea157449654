"""The package's structure drawn from its imports: the floors of STYLE.md, no private
module used across packages, a CLI that holds no database session."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vigie"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[str]:
    """Absolute names of the vigie modules (and third-party roots) ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (
        _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            yield base
            for alias in node.names:
                yield f"{base}.{alias.name}"


def _modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if "migrations" not in path.parts:
            yield _module_name(path), path


def _owner(module: str) -> str:
    """The package a private module belongs to: vigie.scanner.service._mail -> vigie.scanner.service."""
    parts = module.split(".")
    for index, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:index])
    return ""


def test_no_module_imports_another_packages_private_module() -> None:
    # Given every import of the package
    crossings = set()
    for name, path in _modules():
        for imported in _imports(path):
            owner = _owner(imported)
            if owner and imported.startswith("vigie.") and not name.startswith(owner):
                module = (
                    imported
                    if imported.split(".")[-1].startswith("_")
                    else imported.rsplit(".", 1)[0]
                )
                crossings.add(f"{name} -> {module}")
    # Then a private module is only used inside its own package
    assert sorted(crossings) == []


def test_scanner_and_db_do_not_know_each_other() -> None:
    for name, path in _modules():
        imported = list(_imports(path))
        if name.startswith("vigie.scanner"):
            assert not [i for i in imported if i.startswith("vigie.db")], name
        if name.startswith("vigie.db"):
            assert not [i for i in imported if i.startswith("vigie.scanner")], name


def test_the_ground_floor_imports_nothing_above_it() -> None:
    # (lazy imports inside functions count too: _imports walks the whole module)
    ground = ("vigie.model", "vigie.errors", "vigie.config", "vigie.catalogue")
    for name, path in _modules():
        if name in ground:
            above = [
                i for i in _imports(path) if i.startswith("vigie.") and not i.startswith(ground)
            ]
            assert above == [], name


def test_the_cli_holds_no_database_session_or_query() -> None:
    # Given the command modules
    for name, path in _modules():
        if name.startswith("vigie.cli"):
            imported = set(_imports(path))
            # Then none opens a session or builds a query: that is the services' job
            assert "vigie.db.session.session_scope" not in imported, name
            assert not {i for i in imported if i.startswith("sqlmodel")}, name


def test_every_exception_vigie_defines_is_a_vigie_error() -> None:
    # Given every class the package defines whose bases are exceptions
    import importlib
    import inspect

    from vigie.errors import VigieError

    strays = []
    for name, _ in _modules():
        if name.endswith("__main__"):
            continue  # running it is the command line
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            # (a BaseException that is no Exception, like the demo's signal, is not an error)
            own_exception = value.__module__ == name and issubclass(value, Exception)
            if own_exception and not issubclass(value, VigieError):
                strays.append(f"{name}.{value.__name__}")
    # Then each derives from VigieError, so callers catch the level they care about
    assert strays == []
