"""Imports point down the layers of the design (ARCHITECTURE.md), and keras_models stands on tf_keras alone."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Bottom to top. A module may import modules of its own unit and of units on lower layers, never upwards nor
# sideways (two units on the same layer do not know each other).
LAYERS = [
    {"core.errors"},
    {"core.checks", "core.files", "core.atomic", "core.cache", "core.sizes", "core.runtime", "core.text",
     "core.timing"},
    {"core.modelio"},
    {"data", "graph"},
    {"train", "checkpoints"},
    {"prune"},
    {"deploy"},
    {"commands"},
    {"cli"},
]
RANK = {unit: i for i, units in enumerate(LAYERS) for unit in units}


def unit_of(module: str) -> str:
    """A module's unit: its subpackage under edgeprune, or, for the ground floor, ``core.MODULE``."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "core":
        return f"core.{parts[2]}"
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):  # function-level (lazy) imports count too
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            if node.module == package:
                found.update(f"{package}.{a.name}" for a in node.names)
    return found


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_every_unit_has_a_layer():
    top = ROOT / "edgeprune"
    units = {p.stem if p.is_file() else p.name for p in top.iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    units = (units - {"core"}) | {f"core.{p.stem}" for p in (top / "core").glob("*.py") if p.stem != "__init__"}
    assert units == set(RANK), units ^ set(RANK)


def test_the_top_level_shows_only_the_face_the_cli_and_the_layers():
    top = {p.name for p in (ROOT / "edgeprune").iterdir() if p.name != "__pycache__"}
    assert top == {"__init__.py", "cli.py", "core", "data", "graph", "train", "checkpoints", "prune", "deploy",
                   "commands"}, top


def test_edgeprune_imports_point_down():
    wrong = []
    for path in sorted((ROOT / "edgeprune").rglob("*.py")):
        me = module_name(path)
        if me == "edgeprune":  # the package's lazy public API may re-export from any layer
            continue
        mine = unit_of(me)
        for imported in imports_of(path, "edgeprune"):
            if not imported.startswith("edgeprune.") or unit_of(imported) == mine:
                continue
            theirs = unit_of(imported)
            if RANK[theirs] >= RANK[mine]:
                wrong.append(f"{me} ({mine}, layer {RANK[mine]}) imports {imported} ({theirs}, layer {RANK[theirs]})")
    assert not wrong, "\n".join(wrong)


def test_keras_models_does_not_import_edgeprune():
    wrong = [f"{module_name(p)} imports {m}" for p in sorted((ROOT / "keras_models").glob("*.py"))
             for m in imports_of(p, "edgeprune") if m == "edgeprune" or m.startswith("edgeprune.")]
    assert not wrong, "\n".join(wrong)
