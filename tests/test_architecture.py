"""The structure docs/ARCHITECTURE.md promises: layers that import only downwards, no import
cycles, one registry helper, and a dvc.yaml that is what the code and params.yaml say."""

from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from vtonpipe.config import load_params
from vtonpipe.pipeline.dag import import_closure
from vtonpipe.training.dag import render_dag

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "vtonpipe"

#: bottom to top; a module may import from its own layer and the ones below
LAYERS = (
    ("vtonpipe", "vtonpipe.config", "vtonpipe.console", "vtonpipe.io", "vtonpipe.logs", "vtonpipe.progress"),
    ("vtonpipe.core",),
    ("vtonpipe.schemas", "vtonpipe.converters"),
    ("vtonpipe.models",),
    ("vtonpipe.datasets", "vtonpipe.annotators", "vtonpipe.vis"),
    ("vtonpipe.pipeline",),
    ("vtonpipe.synth", "vtonpipe.bench", "vtonpipe.training", "vtonpipe.exporters"),
    ("vtonpipe.cli",),
)


def _layer(module: str) -> int:
    best = None
    for level, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and (best is None or len(p) > len(best[1])):
                best = (level, p)
    assert best is not None, f"{module} is in no layer of docs/ARCHITECTURE.md"
    return best[0]


@lru_cache(maxsize=1)
def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(module: str, path: Path, top_level_only: bool) -> set[str]:
    """vtonpipe modules imported by ``module`` (all imports, or those that run at import time)."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = ast.walk(tree) if not top_level_only else _import_time_nodes(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in _modules())
    return {m for m in found if (m == "vtonpipe" or m.startswith("vtonpipe.")) and m != module}


def _import_time_nodes(tree: ast.Module):
    """Import statements that run when the module is imported (not in functions, not TYPE_CHECKING)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        todo.extend(ast.iter_child_nodes(node))


def test_every_import_points_to_the_same_layer_or_below():
    violations = []
    for module, path in _modules().items():
        for target in _imports(module, path, top_level_only=False):
            if target not in _modules():
                violations.append(f"{module} imports {target}, which does not exist")
            elif _layer(target) > _layer(module):
                violations.append(f"{module} (layer {_layer(module)}) imports {target} (layer {_layer(target)})")
    assert not violations, "\n".join(violations)


def test_no_import_cycles():
    graph = {m: _imports(m, p, top_level_only=True) for m, p in _modules().items()}
    # a package's __init__ importing its own submodules is not a cycle of theirs
    graph = {m: {t for t in deps if not m.startswith(t + ".")} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                cycles.append(" -> ".join(stack[stack.index(t):] + [t]) if t in stack else f"{m} -> {t}")
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles, "\n".join(cycles)


def test_one_registry_helper():
    """Every registry is a vtonpipe.core.registry.Registry: no module-level dicts of plugins."""
    from vtonpipe.annotators import ANNOTATORS, BACKENDS
    from vtonpipe.bench.accuracy import EVALUATORS
    from vtonpipe.core import Registry
    from vtonpipe.datasets import ADAPTERS
    from vtonpipe.schemas import SCHEMAS
    from vtonpipe.vis import DRAWERS

    for registry in (ANNOTATORS, BACKENDS, SCHEMAS, ADAPTERS, DRAWERS, EVALUATORS):
        assert isinstance(registry, Registry) and len(registry) > 0
    assert set(DRAWERS.keys()) <= set(ANNOTATORS.keys()) and set(EVALUATORS.keys()) <= set(ANNOTATORS.keys())
    for (annotator, _), backend in BACKENDS.items():
        assert backend.spec is ANNOTATORS.get(annotator)


def test_committed_dvc_yaml_is_the_generated_one():
    committed = (REPO / "dvc.yaml").read_text()
    assert committed == render_dag(load_params(REPO / "params.yaml"), REPO), "dvc.yaml is stale: run `vtonpipe dag write`"


def test_each_stage_depends_on_the_code_it_runs():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    deps = {name: set(stage["deps"]) for name, stage in stages.items()}
    # the files the hand-written dvc.yaml missed (issue 8)
    assert {"vtonpipe/annotators/densepose_render.py", "vtonpipe/core/backend.py", "vtonpipe/pipeline/runner.py"} <= deps["smpl_flow"]
    assert {"vtonpipe/converters/labels.py", "vtonpipe/schemas/parsing.py", "data/sample/annotations/garment_mask"} <= deps["parsing"]
    assert "vtonpipe/models/render/iuv.py" in deps["parsing"]  # geometric parsing reads DensePose part names
    # and nothing it does not run
    assert not any(d.startswith("vtonpipe/models/nets/schp") for d in deps["keypoints"])
    assert "vtonpipe/synth/__init__.py" not in deps["keypoints"]


def test_import_closure_follows_function_level_imports():
    closure = import_closure(["vtonpipe.annotators.parsing"])  # SCHP is imported inside setup()
    assert "vtonpipe.models.nets.schp" in closure and "vtonpipe.core.backend" in closure


def test_a_backend_with_params_dependent_upstreams_changes_the_dag():
    params = load_params(REPO / "params.yaml")
    params["annotators"]["parsing"]["params"] = {"body_parts": "densepose"}
    params["annotators"]["body"]["params"]["parsing_weight"] = 0.0  # else body -> parsing -> densepose -> body is a cycle
    with pytest.raises(KeyError, match="cycle: parsing -> densepose -> parsing"):  # densepose's parsing_hands reads parsing
        render_dag(params, REPO)
    assert "data/sample/annotations/parsing" in yaml.safe_load(render_dag(load_params(REPO / "params.yaml"), REPO))["stages"]["densepose"]["deps"]
    params["annotators"]["densepose"]["params"]["parsing_hands"] = False
    stages = yaml.safe_load(render_dag(params, REPO))["stages"]
    assert "data/sample/annotations/densepose" in stages["parsing"]["deps"]
    names = list(stages)
    assert names.index("densepose") < names.index("parsing")
