"""The package layout is a layering, not a tangle: each room imports only from the rooms below it, no module is
part of an import cycle (deferred imports inside functions count too), and ``trackers`` stands alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

#: room -> rooms it may import from (besides itself). The README's layout section states the same order.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "trackers": set(),
    "mot": {"core", "trackers"},
    "nuscenes": {"core", "mot"},
    "training": {"core", "trackers", "mot"},
    "tracking": {"core", "trackers", "mot", "training"},
    "analysis": {"core", "mot", "training"},
    "demo": {"core"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    files = list((REPO / "yolox_finetune").rglob("*.py")) + list((REPO / "trackers").rglob("*.py"))
    return {module_name(p): p for p in files}


def room(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] == "trackers":
        return "trackers"
    if parts[0] == "yolox_finetune" and len(parts) > 1:
        return parts[1]
    return None


def imported_modules(path: Path, modules: dict[str, Path]) -> set[str]:
    """Project modules imported anywhere in ``path`` (top level, inside functions, under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imported_modules(path, modules) - {name} for name, path in modules.items()}


def test_every_room_imports_only_from_the_rooms_below_it():
    offences = []
    for module, targets in import_graph().items():
        own = room(module)
        if own is None:
            continue
        for target in targets:
            other = room(target)
            if other is not None and other != own and other not in ALLOWED[own]:
                offences.append(f"{module} -> {target}")
    assert not offences, "imports against the layering:\n" + "\n".join(sorted(offences))


def test_no_import_cycles_even_deferred_ones():
    graph = import_graph()
    # package __init__ files only hold docstrings here, so an edge into a package is an edge into its __init__.
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_real_edges():
    """Guards the two tests above against passing on an empty or blind graph."""
    graph = import_graph()
    assert "yolox_finetune.training.exp" in graph["yolox_finetune.training.schedule"]
    assert "yolox_finetune.mot.formats" in graph["yolox_finetune.nuscenes.mot_export"]
    assert len(graph) > 50


def _import_alone(module: str) -> tuple[str, int, str]:
    proc = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    return module, proc.returncode, proc.stderr[-800:]


@pytest.mark.slow
def test_every_module_imports_in_a_fresh_interpreter():
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(_import_alone, sorted(project_modules())))
    failures = [f"{m}: {err}" for m, code, err in results if code != 0]
    assert not failures, "\n".join(failures)


LIGHT_ROOMS = {
    "trackers": ("torch", "yolox", "yolox_finetune", "matplotlib", "pandas"),
    "yolox_finetune.core.errors": ("torch", "yolox", "numpy"),
    "yolox_finetune.core.atomic_io": ("torch", "yolox", "numpy"),
    "yolox_finetune.core.groups": ("torch", "yolox", "numpy"),
    "yolox_finetune.mot.formats": ("torch", "yolox", "matplotlib"),
    "yolox_finetune.mot.evaluate": ("torch", "yolox", "matplotlib"),
}


@pytest.mark.parametrize("module", sorted(LIGHT_ROOMS))
def test_light_modules_do_not_pull_in_heavy_packages(module):
    forbidden = LIGHT_ROOMS[module]
    code = (f"import sys, {module}; heavy = [m for m in {forbidden!r} if m in sys.modules]; "
            "print(','.join(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
    assert proc.stdout.strip() == "", f"import {module} also imported {proc.stdout.strip()}"
