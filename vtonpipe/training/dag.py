"""The training half of the DVC DAG: after ``pack``, the sample's warp and try-on networks and the
landmark network are trained, the trained warp's outputs inferred for the test pairs, the try-on
model evaluated, and the images annotated with the trained landmark network (a second
``landmarks`` stage, ``annotations/landmarks_hrnet/``, beside the geometric one it learnt from). Stages read only ``packed/`` (and the runs before them); each declares its
``metrics.json`` and ``log.csv`` so ``dvc metrics show`` and ``dvc plots show`` work.

The stages' code deps come from the training registry (the task module of each trained model)
like the annotator stages' come from the annotator registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..pipeline.config import StageConfig
from ..pipeline.dag import DagStage, dataset_stages, render_dvc_yaml
from .task import get_task

#: modules every training command runs (the CLI, the trainer and what they import)
TRAIN_MODULES = ("vtonpipe.training.cli", "vtonpipe.training.trainer")


@dataclass(frozen=True)
class TrainStage:
    """One trained model of the DAG: stage ``name`` runs ``vtonpipe train <kind> --model <model>``."""

    name: str
    kind: str
    model: str
    reads: tuple[str, ...] = ("pack",)
    settings: tuple[str, ...] = ()  # extra `--set key=value` of the stage's command


#: the trained models of the DAG, in order
TRAIN_STAGES = (
    TrainStage("train_warp", "warp", "gcl"),
    TrainStage("train_tryon", "tryon", "gcl", reads=("pack", "train_warp")),
    TrainStage("train_landmarks", "landmarks", "sal-hrnet"),
)

#: the stage annotating with the trained landmark network, beside the `landmarks` stage it learnt from
HRNET_STAGE = "landmarks_hrnet"


def run_dir(data: str, kind: str, model: str) -> str:
    """The run directory of ``kind``/``model`` in build ``data`` (the trainer's default)."""
    return f"{data}/runs/{kind}/{model}"


def _params_key(kind: str, model: str) -> str:
    return f"train.{kind}" if kind == "landmarks" else f"train.{kind}.{model}"


def train_stage(stage: TrainStage, data: str) -> DagStage:
    task = get_task(stage.kind, stage.model)
    run = run_dir(data, stage.kind, stage.model)
    model = "" if stage.kind == "landmarks" else f" --model {stage.model}"
    settings = "".join(f" --set {s}" for s in stage.settings)
    return DagStage(
        stage.name,
        f"vtonpipe train {stage.kind}{model} --build {data}{settings}",
        (*TRAIN_MODULES, task.__module__),
        stage.reads,
        (f"{run}/checkpoints", f"{run}/config.json", f"{run}/grids", f"{run}/tb"),
        (_params_key(stage.kind, stage.model),),
        extra={"metrics": [{f"{run}/metrics.json": {"cache": False}}], "plots": [{f"{run}/log.csv": {"x": "step", "cache": False}}]},
    )


def training_stages(params: Mapping[str, Any], dataset: str = "sample") -> list[DagStage]:
    """The training stages of ``dataset``'s DAG (after its ``pack`` stage)."""
    data = f"{params.get('data_root', 'data')}/{dataset}"
    stages = [train_stage(s, data) for s in TRAIN_STAGES]
    stages.append(
        DagStage(
            "infer_warp",
            f"vtonpipe infer warp --model gcl --build {data}",
            ("vtonpipe.training.cli", "vtonpipe.training.infer", get_task("warp", "gcl").__module__),
            ("pack", "train_warp"),
            (f"{data}/inferred/warp/gcl/test",),
            (),
        )
    )
    landmarks_run = run_dir(data, "landmarks", "sal-hrnet")
    hrnet = StageConfig("landmarks", "sal-hrnet", {"checkpoint": f"{landmarks_run}/checkpoints/last.pt"}).make_backend()
    stages.append(
        DagStage(
            HRNET_STAGE,
            f"vtonpipe annotate landmarks --dataset {dataset} --backend sal-hrnet --stage {HRNET_STAGE} --param checkpoint={landmarks_run}/checkpoints/last.pt",
            ("vtonpipe.pipeline.runner", type(hrnet).__module__),
            ("ingest", *hrnet.requires, "train_landmarks"),
            (f"{data}/annotations/{HRNET_STAGE}",),
            ("annotate",),
            persist=True,
        )
    )
    tryon = run_dir(data, "tryon", "gcl")
    stages.append(
        DagStage(
            "evaluate",
            f"vtonpipe eval --run {tryon} --build {data}",
            ("vtonpipe.training.cli", "vtonpipe.training.evaluate", get_task("tryon", "gcl").__module__),
            ("pack", "train_warp", "train_tryon"),
            (),
            (),
            extra={"metrics": [{f"{tryon}/eval/metrics.json": {"cache": False}}]},
        )
    )
    return stages


def dag_stages(params: Mapping[str, Any], dataset: str = "sample") -> list[DagStage]:
    """Every stage of ``dataset``'s DAG: the priors (:func:`vtonpipe.pipeline.dag.dataset_stages`)
    then the training stages."""
    return dataset_stages(params, dataset) + training_stages(params, dataset)


def render_dag(params: Mapping[str, Any], root: Path, dataset: str = "sample") -> str:
    """The ``dvc.yaml`` text ``vtonpipe dag write`` writes."""
    return render_dvc_yaml(dag_stages(params, dataset), root)
