"""The house's structure, checked: arrows point inward and each room has one obvious name.

- The core (``soraflow/``) never imports Prefect or the orchestration layers (``soraflow.flows``,
  ``soraflow.tasks``, ``soraflow.deployments``), except the CLI, which runs flows: it imports
  them inside the commands that need them, never at module level, so ``estimate`` starts fast.
- Each top-level module or package of the core sits on one floor of the journey (``FLOORS``,
  the ground floor first) and imports only from its own floor or below; the imports of one
  floor's rooms form no circle.
- ``settings`` and ``errors`` import nothing from ``ledger``, ``providers`` or ``models``.
- No two top-level names differ only by a suffix (``plan``/``planning``, ``storing``/``storage``).
- Every package of the core is installed (listed in pyproject.toml).
"""

from __future__ import annotations

import ast
import os
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "soraflow"

# The journey's floors, ground floor first: a room imports only from its floor or below.
FLOORS: list[tuple[str, set[str]]] = [
    ("ground", {"terminal", "redaction", "errors", "spend_caps", "settings", "documents", "images", "stop"}),
    ("vocabulary", {"models", "storyboard", "prompts", "media", "storage"}),
    ("plan", {"plan"}),
    ("endpoints", {"simulator", "providers", "references"}),
    ("record", {"ledger", "limits", "provenance"}),
    ("journey", {"budget", "generation", "archive", "assembly", "preflight", "recovery", "watch", "output_lock", "inbox", "review", "choices", "webhooks"}),
    ("front door", {"cli", "screening"}),  # the command line, and the review page it serves
]
FLOOR_OF = {room: i for i, (_, rooms) in enumerate(FLOORS) for room in rooms}
ORCHESTRATION = ("soraflow.flows", "soraflow.tasks", "soraflow.deployments")


def rooms() -> list[str]:
    """Every top-level module and package of the core."""
    names = []
    for path in CORE.iterdir():
        if path.suffix == ".py" and path.stem != "__init__":
            names.append(path.stem)
        elif path.is_dir() and (path / "__init__.py").is_file():
            names.append(path.name)
    return sorted(names)


def core_files() -> list[Path]:
    return sorted(p for p in CORE.rglob("*.py") if "migrations" not in p.parts)


def imported(path: Path, *, top_level_only: bool = False) -> list[str]:
    """Every module ``path`` imports (lazily inside functions too, unless ``top_level_only``), as
    absolute dotted names."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.stem != "__init__":
        package = package.rsplit(".", 1)[0]
    out = []
    tree = ast.parse(path.read_text(), str(path))
    for node in (tree.body if top_level_only else ast.walk(tree)):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append(module)
            # ``from . import plan`` names a module, not an attribute
            out += [f"{module}.{alias.name}" for alias in node.names if (CORE / Path(*module.split(".")[1:]) / f"{alias.name}.py").is_file()]
    return out


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "soraflow" and len(parts) > 1 and parts[1] in FLOOR_OF else None


def test_every_room_of_the_core_is_on_a_floor():
    assert set(rooms()) == set(FLOOR_OF), "a new top-level module needs a floor in FLOORS (or a name that says which room it joins)"


def test_the_core_never_imports_prefect_or_the_orchestration():
    offenders = []
    for path in core_files():
        in_cli = path.relative_to(CORE).parts[0] == "cli"
        for module in imported(path, top_level_only=in_cli):
            if module.split(".")[0] == "prefect" or module.startswith(ORCHESTRATION):
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not offenders, offenders


def test_no_room_imports_from_a_floor_above_it():
    offenders = []
    for path in core_files():
        parts = path.relative_to(CORE).parts
        here = parts[0].removesuffix(".py")
        if here == "__init__":
            continue
        for module in imported(path):
            there = room_of(module)
            if there is not None and FLOOR_OF[there] > FLOOR_OF[here]:
                offenders.append(f"{path.relative_to(ROOT)} ({FLOORS[FLOOR_OF[here]][0]}) imports {module} ({FLOORS[FLOOR_OF[there]][0]})")
    assert not offenders, offenders


def test_the_rooms_imports_form_no_circle():
    edges: dict[str, set[str]] = {room: set() for room in FLOOR_OF}
    for path in core_files():
        here = path.relative_to(CORE).parts[0].removesuffix(".py")
        if here in FLOOR_OF:
            edges[here] |= {r for m in imported(path) if (r := room_of(m)) and r != here}

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    circles = sorted(room for room in edges if room in reach(room))
    assert not circles, f"rooms on an import circle: {circles}"


@pytest.mark.parametrize("ground", ["settings", "errors"])
def test_the_ground_floor_imports_nothing_from_the_ledger_providers_or_models(ground):
    modules = imported(CORE / f"{ground}.py")
    assert not [m for m in modules if room_of(m) in ("ledger", "providers", "models")], modules


def test_no_two_names_differ_only_by_a_suffix():
    names = rooms()
    clashes = [(a, b) for a in names for b in names if a < b and (b.startswith(a) or a.startswith(b))]
    # a shared stem (plan/planning, storing/storage, watch/watching) is two names for one room
    stems = {}
    for name in names:
        stems.setdefault(name.rstrip("s").removesuffix("ing").removesuffix("age")[:5], []).append(name)
    clashes += [tuple(v) for v in stems.values() if len(v) > 1]
    assert not clashes, clashes


def test_every_package_of_the_core_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    on_disk = {
        ".".join(Path(dirpath).relative_to(ROOT).parts)
        for dirpath, _, files in os.walk(CORE)
        if "__init__.py" in files and "__pycache__" not in dirpath
    }
    assert on_disk <= listed, sorted(on_disk - listed)


# --- what leaves the process (docs/secrets.md) ------------------------------------------------------

ORCHESTRATION_DIRS = ("tasks", "flows", "deployments")


def orchestration_files() -> list[Path]:
    return sorted(p for d in ORCHESTRATION_DIRS for p in (ROOT / d).rglob("*.py"))


def test_artifacts_and_events_are_published_through_outbound_only():
    """tasks/outbound.py redacts what it publishes; nothing else calls Prefect's artifact or
    event functions (the CLI's included: the webhooks receiver's events), so a new artifact
    cannot be made around it."""
    offenders = []
    for path in orchestration_files() + sorted((ROOT / "soraflow" / "cli").rglob("*.py")):
        if path == ROOT / "tasks" / "outbound.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in ("prefect.artifacts", "prefect.events", "prefect.events.utilities"):
                names = [a.name for a in node.names if a.name.startswith("create_") or a.name in ("emit_event", "update_progress_artifact", "Artifact")]
                offenders += [f"{path.relative_to(ROOT)} imports {node.module}.{n}" for n in names]
            elif isinstance(node, ast.Import):
                offenders += [f"{path.relative_to(ROOT)} imports {a.name}" for a in node.names if a.name in ("prefect.artifacts",)]
    assert not offenders, offenders


def test_every_task_and_flow_raises_only_soraflow_errors():
    """Each task's and flow's function is wrapped by ``clean_errors`` (tasks/runtime.py): what it
    raises is a soraflow error, safe to pickle into result storage."""
    import importlib

    from prefect import Flow, Task

    unwrapped, checked = [], []
    for path in orchestration_files():
        if "automations" in path.parts:
            continue
        module = importlib.import_module("soraflow." + ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"))
        for name, value in vars(module).items():
            if isinstance(value, (Task, Flow)) and value.fn.__module__ == module.__name__:
                checked.append(name)
                if not getattr(value.fn, "__soraflow_clean_errors__", False):
                    unwrapped.append(f"{module.__name__}.{name}")
    assert not unwrapped, unwrapped
    assert len(checked) >= 24, checked  # every task and flow of soraflow was looked at
