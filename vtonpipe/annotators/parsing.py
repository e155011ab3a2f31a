"""``parsing``: human parsing of person images, stored in LIP's 20 labels.

Backends: ``geometric`` (default, offline; :mod:`vtonpipe.annotators.parsing_geometric`: person
mask, face, body parts and colour models) and ``schp`` (SCHP's AugmentCE2P with the official LIP or
ATR checkpoint; ATR output is converted to LIP). Every backend returns :func:`parsing_record` so
rows agree field for field.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..converters.labels import NUM_LIP_CLASSES, atr_to_lip
from ..converters.masks import mask_bbox
from ..core import (
    AnnotationFailure,
    AnnotatorSpec,
    Backend,
    Context,
    ImageItem,
    Requirements,
    WeightFile,
)
from ..schemas.parsing import SCHEMA, ParsingRecord
from .registry import register_annotator, register_backend

SPEC = register_annotator(
    AnnotatorSpec(
        name="parsing",
        level="image",
        schema=SCHEMA,
        default_backend="geometric",
        kinds=("person",),
        doc="Per-pixel LIP labels (20 classes) of the person, with per-class pixel counts and the person box.",
    )
)


def parsing_record(parsing: np.ndarray, native_label_set: str, min_person_fraction: float) -> ParsingRecord | AnnotationFailure:
    """The record of a LIP label map ``(H, W)`` uint8, or ``no_person`` below ``min_person_fraction``."""
    person = parsing > 0
    fraction = float(person.mean())
    if fraction < min_person_fraction or not person.any():
        return AnnotationFailure("no_person", f"person pixels cover {fraction:.2%} of the image (< {min_person_fraction:.0%})")
    return ParsingRecord(
        parsing=parsing,
        native_label_set=native_label_set,
        class_pixels=np.bincount(parsing.ravel(), minlength=NUM_LIP_CLASSES).astype(np.int32),
        person_fraction=fraction,
        bbox=mask_bbox(person),
    )


_SCHP_README = "the SCHP README (github.com/GoGoDuck912/Self-Correction-Human-Parsing#trained-models): "
SCHP_WEIGHTS = {
    "lip": WeightFile(
        "schp/exp-schp-201908261155-lip.pth",
        _SCHP_README + "https://drive.google.com/file/d/1ZrTiadzAOM332d896fw7JZQ2lWALedDB/view",
        sha256=None,
        description="SCHP ResNet-101 trained on LIP (20 classes)",
    ),
    "atr": WeightFile(
        "schp/exp-schp-201908301523-atr.pth",
        _SCHP_README + "https://drive.google.com/file/d/1klCtqx51orBkFKdkvYwM4qao_vEFbJ_z/view",
        sha256=None,
        description="SCHP ResNet-101 trained on ATR (18 classes)",
    ),
}


@register_backend
class SCHPParsing(Backend):
    spec = SPEC
    name = "schp"
    version = "1"
    requirements = Requirements(packages=("torch", "cv2"), weights=tuple(SCHP_WEIGHTS.values()))
    default_params = {"dataset": "lip", "input_size": None, "flip": False, "min_person_fraction": 0.01}
    doc = "SCHP (AugmentCE2P, ResNet-101) with the official LIP or ATR checkpoint; ATR labels converted to LIP."

    def __init__(self, params: Mapping[str, Any] | None = None, *, device: str = "cpu"):
        super().__init__(params, device=device)
        if self.params["dataset"] not in SCHP_WEIGHTS:
            raise ValueError(f"parsing/schp: dataset must be one of {sorted(SCHP_WEIGHTS)}, not {self.params['dataset']!r}")
        size = self.params["input_size"]
        if size is not None and (not isinstance(size, int) or size < 32):
            raise ValueError(f"parsing/schp: input_size must be an integer >= 32 px or null (SCHP's), not {size!r}")

    @property
    def weight_file(self) -> WeightFile:
        return SCHP_WEIGHTS[self.params["dataset"]]

    def weight_files(self) -> tuple[WeightFile, ...]:
        return (self.weight_file,)

    def setup(self) -> None:
        from ..models.nets.schp import SCHPParser, load_schp

        dataset = self.params["dataset"]
        model = load_schp(self.weight_file.require(), dataset)
        self.parser = SCHPParser(model, dataset, self.params["input_size"], self.params["flip"], self.device)

    def annotate(self, items: Sequence[ImageItem], ctx: Context) -> list[ParsingRecord | AnnotationFailure]:
        dataset = self.params["dataset"]
        maps = self.parser([item.image for item in items])
        if dataset == "atr":
            maps = [atr_to_lip(m) for m in maps]
        return [parsing_record(m, dataset, self.params["min_person_fraction"]) for m in maps]
