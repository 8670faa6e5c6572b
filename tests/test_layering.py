"""Imports run one way (docs/architecture.md §9.1): data → model (layers → models →
applications) → tasks → training → evaluation → export, with weights and analysis as side rooms
that import downward only, and the gin configuration and the CLIs at the edge. The benchmark
harness is a checkout tool (``tools/benchmarking``): the installed package never imports it.

The test walks every module's ``import`` statements with ``ast`` (function-level imports
included), so it needs no import of TensorFlow.
"""

import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(REPO, "keras_wideresnet")

# Rank of each part: a module may import its own part and parts of a lower rank only.
RANKS = {
    "_leaf": 0,  # keras_wideresnet/__init__.py and the private helpers (_extras, _lazy, ...)
    "constants": 0,
    "data": 1,
    "layers": 2,
    "models": 3,
    "applications": 4,
    "tasks": 5,
    "training": 6,
    "evaluation": 7,
    "export": 8,
    # Side rooms: above every main part, and nothing in the main parts imports them.
    "weights": 9,
    "analysis": 9,
    # The edge: gin registration and parsing, the gin files, the command-line tools.
    "config": 10,
    "gin_configs": 10,  # package data (the gin files) for the CLIs
    "cli": 10,
}
SIDE_ROOMS = {"weights", "analysis"}
# Side rooms that may import another side room: the analysis reads converted weights.
SIDE_ROOM_IMPORTS = {("analysis", "weights")}


def part_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1].startswith("_"):
        return "_leaf"
    return parts[1]


def module_name(path: str, root: str = REPO) -> str:
    rel = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def package_imports(path: str, root: str = REPO) -> list[tuple[int, str]]:
    """(line, imported module) for every import of ``keras_wideresnet`` in a file."""
    module = module_name(path, root)
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                if not path.endswith("__init__.py"):
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            # `from keras_wideresnet import tasks` imports the part `tasks`.
            if name == "keras_wideresnet":
                found += [(node.lineno, f"keras_wideresnet.{a.name}") for a in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "keras_wideresnet"]


def violations(paths, root: str = REPO) -> list[str]:
    out = []
    for path in paths:
        here = part_of(module_name(path, root))
        for line, name in package_imports(path, root):
            there = part_of(name)
            if there == here or (here, there) in SIDE_ROOM_IMPORTS:
                continue
            where = f"{os.path.relpath(path, root)}:{line} imports {name}"
            if there not in RANKS or here not in RANKS:
                out.append(f"{where}: part {there if there not in RANKS else here!r} has no rank")
            elif there in SIDE_ROOMS and RANKS[here] < RANKS["cli"]:
                out.append(f"{where}: only the CLIs import the side room {there!r}")
            elif RANKS[there] > RANKS[here]:
                out.append(f"{where}: {here!r} (rank {RANKS[here]}) imports upward into "
                           f"{there!r} (rank {RANKS[there]})")
    return out


def package_files() -> list[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(PACKAGE) for f in files
                  if f.endswith(".py"))


def test_imports_run_one_way():
    found = violations(package_files())
    assert not found, "upward imports:\n" + "\n".join(found)


def test_the_package_never_imports_the_checkout_tools():
    found = []
    for path in package_files():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            found += [f"{os.path.relpath(path, REPO)}:{node.lineno} imports {n}" for n in names
                      if n.split(".")[0] == "tools"]
    assert not found, "\n".join(found)


def test_an_upward_import_is_reported(tmp_path):
    """The check itself can fail: a data module that imports the trainer is caught, and so is
    the analysis side room imported by the trainer."""
    os.makedirs(tmp_path / "keras_wideresnet" / "data")
    os.makedirs(tmp_path / "keras_wideresnet" / "training")
    bad = tmp_path / "keras_wideresnet" / "data" / "probe.py"
    bad.write_text("def f():\n    from keras_wideresnet.training import trainer\n")
    side = tmp_path / "keras_wideresnet" / "training" / "probe.py"
    side.write_text("import keras_wideresnet.analysis.paths\n")
    assert violations([str(bad), str(side)], root=str(tmp_path)) == [
        "keras_wideresnet/data/probe.py:2 imports keras_wideresnet.training: 'data' (rank 1) "
        "imports upward into 'training' (rank 6)",
        "keras_wideresnet/training/probe.py:1 imports keras_wideresnet.analysis.paths: only the "
        "CLIs import the side room 'analysis'"]


@pytest.mark.parametrize("module,part", [("keras_wideresnet.tasks.base", "tasks"),
                                         ("keras_wideresnet._extras", "_leaf"),
                                         ("keras_wideresnet.applications", "applications")])
def test_parts(module, part):
    assert part_of(module) == part
