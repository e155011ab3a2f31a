"""The DVC DAG, derived from the registry and ``params.yaml`` rather than written by hand.

Each stage's deps are the outputs of the stages it reads (an annotator's: its backend's
``requires``) plus the source files of the code it runs: the static import closure (every
``import`` in a module, at any depth, followed through vtonpipe's own modules and the packages
above them) of the stage's entry modules. Its params are its own ``params.yaml`` sections.
``vtonpipe dag write`` writes ``dvc.yaml``; ``vtonpipe dag check`` (and a test) fails when the
committed file differs from what the code and params say.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ..core import Backend
from ..datasets import get_adapter
from .config import StageConfig, dataset_conf

#: modules every CLI-driven stage runs: the typed configuration it is resolved with
CONFIG_MODULES = ("vtonpipe.pipeline.config",)
PACKAGE = "vtonpipe"


@lru_cache(maxsize=None)
def _source(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)
    return Path(spec.origin) if spec and spec.origin and spec.origin.endswith(".py") else None


def _is_package(module: str) -> bool:
    path = _source(module)
    return path is not None and path.name == "__init__.py"


@lru_cache(maxsize=None)
def _imports(module: str) -> frozenset[str]:
    """The vtonpipe modules ``module`` imports anywhere in its source (functions included)."""
    path = _source(module)
    if path is None:
        return frozenset()
    package = module if _is_package(module) else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            found.add(target)
            if _ours(target) and _is_package(target):  # `from package import submodule`
                found.update(f"{target}.{a.name}" for a in node.names if _source(f"{target}.{a.name}") is not None)
    return frozenset(m for m in found if _ours(m))


def _ours(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def import_closure(modules: Iterable[str]) -> list[str]:
    """Every vtonpipe module the ``modules`` run: themselves, what they import (transitively) and
    the packages above each (their ``__init__`` runs on import), sorted."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        m = todo.pop()
        if m in seen or _source(m) is None:
            continue
        seen.add(m)
        parts = m.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += _imports(m)
    return sorted(seen)


def module_files(modules: Iterable[str], root: Path) -> list[str]:
    """Source files (relative to ``root``, '/'-separated) of :func:`import_closure`."""
    return sorted(_source(m).resolve().relative_to(root.resolve()).as_posix() for m in import_closure(modules))


def stage_order(backends: Mapping[str, Backend]) -> list[str]:
    """Annotator names sorted so that each comes after the upstream ones its backend reads
    (``backends``: annotator -> configured backend); KeyError on a cycle."""
    order: list[str] = []

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in chain:
            raise KeyError(f"annotator dependency cycle: {' -> '.join(chain + (name,))}")
        for dep in backends[name].requires:
            if dep in backends:
                visit(dep, chain + (name,))
        order.append(name)

    for n in backends:
        visit(n, ())
    return order


@dataclass(frozen=True)
class DagStage:
    """One DVC stage: its command, the code it runs, the stages it reads, its outs and params."""

    name: str
    cmd: str
    modules: tuple[str, ...]
    reads: tuple[str, ...]
    outs: tuple[str, ...]
    params: tuple[str, ...]
    persist: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)


def dataset_stages(params: Mapping[str, Any], dataset: str = "sample") -> list[DagStage]:
    """The DAG of ``dataset``: (sample,) ingest, one stage per annotator of ``params.yaml`` in
    dependency order, pack."""
    data = f"{params.get('data_root', 'data')}/{dataset}"
    conf = dataset_conf(params, dataset)
    stages: list[DagStage] = []
    raw: tuple[str, ...] = ()
    suffix = f" --dataset {dataset}"
    if dataset == "sample":
        stages.append(DagStage("sample", "vtonpipe sample", ("vtonpipe.synth",), (), (conf.get("root", f"{data}/raw"),), ("sample", "datasets.sample")))
        raw = ("sample",)
    adapter = type(get_adapter(conf.get("layout", dataset))).__module__
    stages.append(DagStage("ingest", "vtonpipe ingest" + suffix, ("vtonpipe.pipeline.ingest", adapter), raw, (f"{data}/ingest",), ("ingest", f"datasets.{dataset}")))
    backends = {name: StageConfig.resolve(params, name).make_backend() for name in (params.get("annotators") or {})}
    for name in stage_order(backends):
        b = backends[name]
        stages.append(
            DagStage(
                name,
                f"vtonpipe annotate {name}" + suffix,
                ("vtonpipe.pipeline.runner", type(b).__module__),
                ("ingest", *b.requires),
                (f"{data}/annotations/{name}",),
                (f"annotators.{name}", "annotate"),
                persist=True,
            )
        )
    stages.append(DagStage("pack", "vtonpipe pack" + suffix, ("vtonpipe.pipeline.pack",), ("ingest", *stage_order(backends)), (f"{data}/packed",), ("pack",)))
    return stages


def dvc_yaml(stages: list[DagStage], root: Path) -> dict[str, Any]:
    """The ``dvc.yaml`` document of ``stages`` (code deps relative to the repository ``root``)."""
    outs_of = {s.name: s.outs for s in stages}
    doc: dict[str, Any] = {"stages": {}}
    for s in stages:
        deps = [out for name in s.reads for out in outs_of[name]]
        deps += module_files((*s.modules, *CONFIG_MODULES), root)
        entry: dict[str, Any] = {"cmd": s.cmd, "deps": deps, "params": list(s.params)}
        entry["outs"] = [{o: {"persist": True}} for o in s.outs] if s.persist else list(s.outs)
        entry.update(s.extra)
        doc["stages"][s.name] = entry
    return doc


HEADER = """\
# GENERATED by `vtonpipe dag write` from the annotator and training registries and params.yaml: do not edit.
# Each stage's deps are the outputs it reads plus the source files of the code it runs (their
# import closure). After changing a backend in params.yaml or the code's imports, run
# `vtonpipe dag write` (`vtonpipe dag check` and the tests fail while this file is stale).
"""


def render_dvc_yaml(stages: list[DagStage], root: Path) -> str:
    """The ``dvc.yaml`` text of ``stages`` (``vtonpipe dag write`` passes every stage of the DAG:
    :func:`vtonpipe.training.dag.dag_stages`)."""
    return HEADER + yaml.safe_dump(dvc_yaml(stages, root), sort_keys=False, width=120)
