"""convo's module layout: no import cycles, and the layers import only downwards.

The import graph is read from the source with ``ast``, never by importing. Two views:

* *load-time* imports: those at module level, not inside a function and not under
  ``if TYPE_CHECKING:``. These run when a module is imported, so a cycle among them is a
  real cycle (a module may see its partner half-initialised); there must be none.
* *all* imports, lazy ones inside functions and type-only ones included: a layer rule is
  about what a package depends on, however late it imports it.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "convo"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, *, load_time: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif load_time and isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            continue  # runs when called, not when the module loads
        elif load_time and isinstance(child, ast.If) and _is_type_checking(child.test):
            yield from (i for n in child.orelse for i in _imports_in(n, load_time=load_time))
        else:
            yield from _imports(child, load_time=load_time)


def _imports_in(node: ast.stmt, *, load_time: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(node, ast.Import | ast.ImportFrom):
        yield node
    else:
        yield from _imports(node, load_time=load_time)


@functools.cache
def imported_names(module: str, *, load_time: bool) -> frozenset[str]:
    """Every module ``module`` imports (any package, convo's or not), by full name."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in _imports(tree, load_time=load_time):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:  # relative: resolve against this module's package
            package = module.split(".")
            if path.name != "__init__.py":
                package.pop()
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        # `from pkg import sub` imports the submodule when there is one, else a name of pkg.
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            found.add(sub if sub in MODULES else base)
    return frozenset(found)


def graph(*, load_time: bool) -> dict[str, set[str]]:
    """convo module -> the convo modules it imports."""
    return {
        m: {n for n in imported_names(m, load_time=load_time) if n in MODULES and n != m}
        for m in MODULES
    }


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component
    with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_path_within(edges, component, v))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _path_within(edges: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    """A shortest path start -> ... -> start inside ``component`` (breadth first)."""
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(edges[v] & component):
                if w == start:
                    path = [v]  # back from v to start, then turned round
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [*reversed(path), start]
                if w not in previous:
                    previous[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{start} is in a component without a cycle back to it")


def test_the_cycle_finder_finds_and_names_a_cycle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert cycles(edges) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_reads_lazy_and_type_only_imports_apart() -> None:
    load_time = graph(load_time=True)
    every = graph(load_time=False)
    # convo.intake names the runtime's TurnEngine for types only.
    assert "convo.runtime" not in load_time["convo.intake"]
    assert "convo.runtime" in every["convo.intake"]
    assert "convo.runtime.system" in load_time["convo.web.app"] or (
        "convo.runtime" in load_time["convo.web.app"]
    )


def test_no_import_cycles_at_load_time() -> None:
    found = cycles(graph(load_time=True))
    assert not found, "import cycles: " + "; ".join(" -> ".join(c) for c in found)


#: package -> what it must never import (convo modules by prefix, or third-party modules).
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # Adapters see neutral values only: no web server, no flows.
    "convo.providers": ("convo.web", "convo.flow", "convo.runtime", "aiohttp"),
    # The engine knows nothing of providers, HTTP or the server.
    "convo.flow": ("convo.web", "convo.providers", "convo.runtime", "aiohttp", "httpx"),
    "convo.store": ("convo.flow", "convo.web", "convo.providers", "convo.runtime"),
    "convo.voice": ("convo.web", "convo.providers", "convo.flow", "convo.runtime"),
    "convo.sms": ("convo.web", "convo.providers", "convo.flow", "convo.runtime"),
    # Everything below the composition root is built by it, never the other way round.
    "convo.outbox": ("convo.web", "convo.runtime"),
    "convo.reconcile": ("convo.web", "convo.runtime"),
    "convo.erasure": ("convo.web", "convo.runtime"),
    # Contacts are data and their reading; starting conversations is below the web.
    "convo.contacts": ("convo.web", "convo.runtime", "convo.flow", "convo.providers"),
    "convo.outbound": ("convo.web", "convo.cli"),
    "convo.runtime": ("convo.cli", "convo.web.app", "convo.web.api", "aiohttp"),
}


#: (module, import) pairs exempt from FORBIDDEN, each with its reason.
EXEMPT: dict[tuple[str, str], str] = {
    ("convo.providers.http", "aiohttp"): (
        "the provider client sends over aiohttp's client pool; adapters see httpx's client "
        "and ProviderAnswer"
    ),
}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_layers_import_only_downwards(package: str) -> None:
    bad = sorted(
        f"{module} imports {name}"
        for module in MODULES
        if _under(module, package)
        for name in imported_names(module, load_time=False)
        if any(_under(name, forbidden) for forbidden in FORBIDDEN[package])
        and (module, name) not in EXEMPT
    )
    assert not bad, "\n".join(bad)
