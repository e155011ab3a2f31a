"""The embedded sample dataset (MPV layout), written by ``vtonpipe sample`` (docs/SAMPLE.md).

Synthetic dressed people rendered from anny (:mod:`vtonpipe.synth.scene`), each in two poses, and
their top alone as the in-shop garment, with exact ground truth (:mod:`vtonpipe.datasets.sample_truth`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from ..datasets.sample_truth import image_truth_path, pair_truth_path, write_truth
from ..io import write_bytes_atomic, write_image, write_json_atomic
from ..progress import progress_bar

GENERATOR_VERSION = 5
TEST_EVERY = 4  # person i is in the test split when i % TEST_EVERY == TEST_EVERY - 1


@dataclass
class SampleSummary:
    """What :func:`write_sample` wrote: ``images`` = 3 per person, ``pairs`` = 1 per person."""

    root: Path
    people: int
    images: int
    pairs: int


def parse_size(size: str) -> tuple[int, int]:
    """``"256x192"`` -> (height 256, width 192)."""
    try:
        h, w = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise ValueError(f"size must be HEIGHTxWIDTH like 256x192, got {size!r}") from None
    if h < 32 or w < 24:
        raise ValueError(f"size {size} is too small")
    return h, w


def write_sample(
    out: str | Path,
    people: int = 8,
    seed: int = 0,
    size: tuple[int, int] = (256, 192),
    show_progress: bool = False,
    back_share: float = 0.0,
    arms_in_front_share: float = 0.0,
    textured_share: float = 0.0,
    side_light_share: float = 0.0,
    one_piece_share: float = 0.0,
    hair_over_shoulders_share: float = 0.0,
    bag_share: float = 0.0,
) -> SampleSummary:
    """Render ``people`` synthetic people in MPV layout under ``out`` (same arguments, same bytes).

    Person ``i`` (product id ``S{i:04d}``) gives ``all/S0000@0=person_whole_<view>.jpg`` (pose A),
    ``...@1=person_whole_<view>.jpg`` (pose B), ``...@2=cloth_front.jpg`` (their top, or their
    dress or jumpsuit: ``one_piece_share``, :func:`~vtonpipe.synth.recipes.sample_person`; long
    hair over the shoulders: ``hair_over_shoulders_share``; a shoulder bag: ``bag_share``), one line
    ``A B cloth split`` of ``all_poseA_poseB_clothes.txt``, the GT of the three images and of the
    pair (A source, B target), and their recipe in ``sample.json``.
    """
    from ..models.bodies.anny import PHENOTYPE_LABELS, AnnyBody
    from ..models.render.flow import body_flow
    from ..models.render.iuv import anny_charts
    from .person import DressedBody
    from .recipes import sample_person, sample_photos
    from .scene import Renderer

    out = Path(out)
    body = AnnyBody()
    renderer = Renderer(body, anny_charts())
    lines, records = [], []
    with progress_bar("sample", total=people, enabled=show_progress) as advance:
        for i in range(people):
            rng = np.random.default_rng([seed, i])
            recipe = sample_person(rng, one_piece_share, hair_over_shoulders_share, bag_share)
            photos = sample_photos(rng, back_share, arms_in_front_share, textured_share, side_light_share)
            pid = f"S{i:04d}"
            names = [f"{pid}@{k}=person_whole_{p.view}.jpg" for k, p in enumerate(photos)] + [f"{pid}@2=cloth_front.jpg"]
            split = "test" if i % TEST_EVERY == TEST_EVERY - 1 else "train"
            dressed = DressedBody(body, recipe)
            category = recipe.garment_category
            views = []
            for name, photo in zip(names, photos):
                view = renderer.person(dressed, photo.pose, photo.shot, size)
                views.append(view)
                write_image(out / "all" / name, view.image)
                turn = Rotation.from_rotvec([0.0, 0.0, photo.pose.turn])
                rotation = (Rotation.from_matrix(view.to_camera.R) * turn).as_rotvec()
                cam = view.camera
                write_truth(image_truth_path(out, f"all/{name}"), "person", {
                    "coco18": view.coco18, "person_mask": (view.parsing > 0).astype(np.uint8), "parsing": view.parsing,
                    "iuv": view.iuv, "face_id": view.body.face_id, "landmarks": view.landmarks,
                    "body_pose": view.pose.astype(np.float32), "phenotype": np.asarray(recipe.phenotype, np.float32),
                    "body_rotation": rotation.astype(np.float32), "body_translation": view.to_camera.t.astype(np.float32),
                    "camera": np.array([cam.fx, cam.fy, cam.cx, cam.cy], np.float32), "garment_category": category,
                })  # fmt: skip
            garment = renderer.garment(dressed, size, seed=int(rng.integers(2**31)))
            write_image(out / "all" / names[2], garment.image)
            write_truth(image_truth_path(out, f"all/{names[2]}"), "garment", {"garment_mask": garment.mask, "landmarks": garment.landmarks, "garment_category": category})
            a, b = views
            flow, visibility = body_flow(b.body, body.faces, a.vertices, a.camera)
            write_truth(pair_truth_path(out, f"all/{names[0]}", f"all/{names[1]}"), "pair", {"flow": flow, "visibility": visibility, "garment_category": category})
            lines.append("\t".join([*names, split]))
            records.append({"id": pid, "split": split, "images": names, "recipe": dataclasses.asdict(recipe),
                            "photos": [dataclasses.asdict(p) for p in photos]})  # fmt: skip
            advance(1)
    write_bytes_atomic(out / "all_poseA_poseB_clothes.txt", ("\n".join(lines) + "\n").encode())
    write_json_atomic(out / "sample.json", {
        "generator": "vtonpipe.synth", "version": GENERATOR_VERSION, "seed": seed, "size": list(size),
        "phenotype_labels": list(PHENOTYPE_LABELS), "people": records,
    })  # fmt: skip
    return SampleSummary(out, people, 3 * people, people)
