"""The library's shape, read from its imports: layers that only import downwards, no import cycle,
and no generic layer that dispatches on a method's name."""

from __future__ import annotations

import ast
from collections import defaultdict

from helpers import REPO

LIB = REPO / "libs" / "llmclust"
# top-level packages and modules of llmclust, lowest layer first; a module imports only from its own
# layer or below (every import counts, those inside functions too)
LAYERS = [
    {"schema", "config", "optional", "models", "devices", "stalls"},
    {"store", "ray_session"},
    {"pipeline", "llm"},
    {"training"},
    {"methods"},
    {"report", "serve"},
    {"cli"},
    {"__main__"},
]
METHOD_NAMES = {"baseline", "lumi", "clusterllm", "cotrain"}


def _module(path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """llmclust module -> the llmclust modules it imports (``from llmclust import schema`` names schema)."""
    modules = {_module(p) for p in LIB.rglob("*.py")}
    out = defaultdict(set)
    for path in LIB.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("llmclust"):
                for alias in node.names:  # a name that is a module (from pkg import module) is an edge to it
                    full = f"{node.module}.{alias.name}"
                    out[_module(path)].add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                out[_module(path)].update(a.name for a in node.names if a.name.startswith("llmclust"))
    return out


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    return next(i for i, names in enumerate(LAYERS) if top in names)


def test_every_module_has_a_layer_and_imports_only_downwards():
    upward = [(a, b) for a, targets in _imports().items() for b in targets
              if b != "llmclust" and _layer(b) > _layer(a)]
    assert upward == [], f"imports from a lower layer to a higher one: {upward}"


def test_no_import_cycle():
    graph = _imports()
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path[path.index(nxt):] + [nxt])}")
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_no_method_name_is_dispatched_on_outside_methods():
    found = []
    for path in LIB.rglob("*.py"):
        if "methods" in path.relative_to(LIB).parts:
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef)) and n.body
                      and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        found += [f"{path.relative_to(LIB)}:{n.lineno} {n.value!r}" for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in METHOD_NAMES and id(n) not in docstrings]
    assert found == [], f"method names outside llmclust/methods: {found}"
