"""Speed and accuracy of the rendered priors: ``smpl_flow/render`` and ``densepose/render``.

    python benchmarks/bench_flow.py speed [--device cpu] [--pairs 8] [--repeats 3] [--threads N]
    python benchmarks/bench_flow.py accuracy [--people 16] [--size 256x192] [--seed 0]

Bodies are random anny people (phenotype, arm/leg/spine/head poses, camera azimuth within 45
degrees of the front, framed as fashion photos by ``frame_body``); a pair is one person in two
poses (source A, target B), as in MPV.

- ``speed``: flow pairs per second of the ``smpl_flow`` render backend's batches (each image
  posed and binned once per batch) against the per-pair path it replaced (two ``posed_mesh`` and
  two Embree scenes per pair), in one process, at 256 x 192 and 1024 x 768, on two pair
  structures: the sample's (one pair per person) and MPV's (a person in several poses, every
  ordered pair of them); also the backend with the ``torch`` rasteriser (on ``--device``), and how
  equal the outputs are (``vis equal``: share of equal visibility pixels; ``flow equal``: share
  of the body pixels both call visible or hidden whose flows differ by at most 0.01 px; the rest
  are pixel centres within float rounding of a face edge, where the two pick neighbouring faces). Each figure is the best of ``--repeats`` rounds (steadier on a shared machine).
- ``accuracy``: ground truth (IUV, flow, visibility) rendered from the exact parameters, the
  backends' output from parameters with Gaussian noise, as a fitter would give: ``pose`` radians
  on each axis-angle component of the main bones (spine, neck, head, arms, legs), ``shape`` on
  each phenotype value (clipped to [0, 1]), ``transl`` metres on each axis of the body-to-camera
  translation. Scores: ``vtonpipe.bench.metrics.IUVAccuracy`` over both images of each pair and
  ``FlowAccuracy`` over the pairs (its EPE counts every pixel visible in the ground truth, the
  ones the perturbed target body misses with their zero flow included); ``EPE on``: the EPE over
  the ground truth's visible pixels that the perturbed target body covers.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from vtonpipe.annotators.densepose_render import render_iuv
from vtonpipe.annotators.smpl_flow_render import RenderSmplFlow, pair_flow
from vtonpipe.bench.metrics import FlowAccuracy, IUVAccuracy
from vtonpipe.core import PairItem
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.camera import frame_body
from vtonpipe.models.bodies.posed import PosedMesh, posed_mesh
from vtonpipe.models.render.flow import BACKGROUND, VISIBLE
from vtonpipe.models.render.raster import EmbreeMesh
from vtonpipe.schemas.body import BodyRecord

MAIN_BONES = (
    "spine01", "spine03", "neck01", "head", "upperarm01.L", "upperarm01.R", "lowerarm01.L", "lowerarm01.R",
    "upperleg01.L", "upperleg01.R", "lowerleg01.L", "lowerleg01.R",
)  # fmt: skip
SIZES = ((256, 192), (1024, 768))


@dataclass
class Person:
    """A body row (:mod:`vtonpipe.schemas.body` fields) per pose, A (source) and B (target), in
    images of ``size`` (H, W)."""

    a: dict
    b: dict
    size: tuple[int, int]

    def meshes(self, a: dict | None = None, b: dict | None = None) -> tuple[PosedMesh, PosedMesh]:
        """The posed meshes of rows ``a`` and ``b`` (this person's own by default)."""
        h, w = self.size
        return posed_mesh(BodyRecord(**(a or self.a)), w, h), posed_mesh(BodyRecord(**(b or self.b)), w, h)


def _rotvec(*steps: tuple[tuple[float, float, float], float]) -> np.ndarray:
    """Axis-angle of the product of rotations (axis, angle radians), applied right to left."""
    m = np.eye(3)
    for axis, angle in steps:
        m = m @ Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle).as_matrix()
    return Rotation.from_matrix(m).as_rotvec()


def random_pose(body: AnnyBody, rng: np.random.Generator) -> np.ndarray:
    """(104, 3) float32: random arm, leg, spine and head poses (anny_body's documented axes)."""
    u = rng.uniform
    named = {"spine03": (u(-0.15, 0.25), 0.0, u(-0.3, 0.3)), "head": (u(-0.2, 0.3), 0.0, u(-0.5, 0.5))}
    for side, s in (("L", 1.0), ("R", -1.0)):  # mirroring negates Y and Z
        raise_ = u(-0.5, 0.6)
        named[f"upperarm01.{side}"] = _rotvec(((-1, 0, 0), u(-0.3, 1.2)), ((0, 0, -s), u(-0.4, 1.2)), ((0, -s, 0), raise_))
        a = 0.73 + raise_  # the upper arm's angle from the vertical
        named[f"lowerarm01.{side}"] = np.array([-np.cos(a), 0.0, -s * np.sin(a)]) * u(0.0, 1.8)
        named[f"upperleg01.{side}"] = _rotvec(((-1, 0, 0), u(-0.3, 0.6)), ((0, -s, 0), u(-0.1, 0.3)))
        named[f"lowerleg01.{side}"] = (u(0.0, 0.9), 0.0, 0.0)
    return body.pose_from_named(named)[0].numpy()


def body_row(body: AnnyBody, pose: np.ndarray, phenotype: np.ndarray, azimuth_deg: float, size: tuple[int, int]) -> dict:
    """A ``body`` row of an anny body framed whole in a ``size`` (H, W) image."""
    with torch.no_grad():
        vertices = body(pose, phenotype)[0].numpy()
    camera, rigid = frame_body(vertices, width=size[1], height=size[0], azimuth_deg=azimuth_deg)
    return {
        "model": "anny",
        "pose": pose.astype(np.float32),
        "shape": phenotype.astype(np.float32),
        "rotation": Rotation.from_matrix(rigid.R).as_rotvec().astype(np.float32),
        "translation": rigid.t.astype(np.float32),
        "camera": np.array([camera.fx, camera.fy, camera.cx, camera.cy], np.float32),
        "joints_2d": np.zeros((18, 3), np.float32),  # fields a fitter fills; rendering reads none of them
        "residual_px": 0.0,
        "iterations": 0,
    }


def random_people(body: AnnyBody, n: int, size: tuple[int, int], seed: int) -> list[Person]:
    rng = np.random.default_rng(seed)
    people = []
    for _ in range(n):
        phenotype = rng.uniform(0.2, 0.8, 6)
        a, b = (body_row(body, random_pose(body, rng), phenotype, rng.uniform(-45, 45), size) for _ in range(2))
        people.append(Person(a, b, size))
    return people


def perturbed(row: dict, body: AnnyBody, rng: np.random.Generator, pose: float, shape: float, transl: float) -> dict:
    """``row`` with Gaussian noise of the given sigmas (see the module docstring)."""
    out = dict(row)
    noisy_pose = row["pose"].copy()
    bones = [body.bone_index[b] for b in MAIN_BONES]
    noisy_pose[bones] += rng.normal(0.0, pose, (len(bones), 3))
    out["pose"] = noisy_pose.astype(np.float32)
    out["shape"] = np.clip(row["shape"] + rng.normal(0.0, shape, 6), 0.0, 1.0).astype(np.float32)
    out["translation"] = (row["translation"] + rng.normal(0.0, transl, 3)).astype(np.float32)
    return out


class RowsContext:
    """What the ``smpl_flow`` render backend reads of a build: ``body`` rows and image sizes."""

    def __init__(self, rows: dict[str, dict], size: tuple[int, int]):
        self.rows = rows
        self.images = {i: {"width": size[1], "height": size[0]} for i in rows}

    def annotation(self, annotator: str, item_id: str) -> BodyRecord:
        return BodyRecord(**self.rows[item_id])


def per_pair_embree(source_row: dict, target_row: dict, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The ``smpl_flow`` path before per-image reuse (backend version 2), the baseline: each pair
    poses both bodies one by one and builds two Embree scenes, the target's to rasterise it and
    the source's to cast the visibility rays (what :func:`body_flow` did with an ``EmbreeMesh``)."""
    h, w = size
    source, target = (posed_mesh(BodyRecord(**r), w, h) for r in (source_row, target_row))
    raster = EmbreeMesh(target.vertices, target.faces).rasterize(target.camera)
    hit = raster.mask
    points = np.einsum("nk,nkd->nd", raster.bary[hit].astype(np.float64), source.vertices[target.faces[raster.face_id[hit]]].astype(np.float64))
    cam, z = source.camera, points[:, 2]
    xs, ys = cam.fx * points[:, 0] / z + cam.cx, cam.fy * points[:, 1] / z + cam.cy
    yy, xx = np.nonzero(hit)
    flow = np.zeros((h, w, 2), np.float32)
    flow[hit] = np.stack([xs - xx, ys - yy], axis=1)
    inside = (z > 0) & (xs >= -0.5) & (xs < w - 0.5) & (ys >= -0.5) & (ys < h - 0.5)
    visible = np.zeros(len(z), bool)
    distance = np.linalg.norm(points[inside], axis=1)
    first = EmbreeMesh(source.vertices, source.faces).first_hit(np.zeros((len(distance), 3)), points[inside] / distance[:, None])
    visible[inside] = first >= distance - 1e-3
    visibility = np.full((h, w), BACKGROUND, np.uint8)
    visibility[hit] = np.where(visible, VISIBLE, 1)
    return flow, visibility


def pair_structure(body: AnnyBody, people: int, poses: int, size: tuple[int, int]) -> tuple[dict[str, dict], list[PairItem]]:
    """Body rows of ``people`` random people in ``poses`` poses each, and every ordered pair of
    two poses of one person (``poses`` 2, one direction only: the sample's one pair per person)."""
    rng = np.random.default_rng(1)
    rows, pairs = {}, []
    for p in range(people):
        phenotype = rng.uniform(0.2, 0.8, 6)
        ids = [f"p{p}_{k}" for k in range(poses)]
        for i in ids:
            rows[i] = body_row(body, random_pose(body, rng), phenotype, rng.uniform(-45, 45), size)
        ordered = [(ids[0], ids[1])] if poses == 2 else [(a, b) for a in ids for b in ids if a != b]
        pairs += [PairItem(f"{a}-{b}", a, b, None, "train") for a, b in ordered]
    return rows, pairs


def speed(args: argparse.Namespace) -> None:
    body = AnnyBody()
    backend = RenderSmplFlow(device=args.device)
    backend.ensure_setup()
    torch_backend = RenderSmplFlow({"raster": "torch"}, device=args.device)
    torch_backend.ensure_setup()
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    print(f"smpl_flow pairs/s, best of {args.repeats} rounds; batches of {args.batch} pairs; torch {torch.__version__}, "
          f"{torch.get_num_threads()} CPU threads; torch raster on {args.device}")  # fmt: skip
    print(
        "before: per pair, two posed_mesh and two Embree scenes (backend version 2); now: the backend's batch "
        "(each image posed and binned once per batch, anny posing batched)"
    )
    print(
        f"{'size (HxW)':>11} {'structure':>28} {'pairs':>5} {'before':>8} {'now':>8} {'now/before':>10} {'torch raster':>12} {'vis equal':>9} {'flow equal':>11}"
    )
    for size in SIZES:
        for people, poses, label in ((args.pairs, 2, "sample: 1 pair per person"), (max(1, args.pairs // 12), 4, "4 poses, all 12 pairs each")):
            rows, pairs = pair_structure(body, people, poses, size)
            ctx = RowsContext(rows, size)

            def best_rate(run) -> float:
                best = float("inf")
                for repeat in range(args.repeats + 1):  # the first round warms up (numba compiles)
                    start = time.perf_counter()
                    run()
                    sync()
                    if repeat:
                        best = min(best, time.perf_counter() - start)
                return len(pairs) / best

            def batched(b=backend):
                return [r for k in range(0, len(pairs), args.batch) for r in b.annotate(pairs[k : k + args.batch], ctx)]

            before = best_rate(lambda: [per_pair_embree(rows[p.source_image_id], rows[p.target_image_id], size) for p in pairs])
            now = best_rate(batched)
            with_torch = best_rate(lambda: batched(torch_backend))
            old = [per_pair_embree(rows[p.source_image_id], rows[p.target_image_id], size) for p in pairs]
            new = batched()
            equal = np.mean([(o[1] == n.visibility).mean() for o, n in zip(old, new)])
            same = [(o[1] == n.visibility) & (o[1] != BACKGROUND) for o, n in zip(old, new)]
            close = np.concatenate([np.linalg.norm(o[0][m] - n.flow[m], axis=1) <= 0.01 for o, n, m in zip(old, new, same)]).mean()
            print(
                f"{size[0]:>5}x{size[1]:<5} {label:>28} {len(pairs):5d} {before:8.1f} {now:8.1f} {now / before:9.2f}x {with_torch:12.1f} {equal:9.5f} {close:11.5f}"
            )


NOISE = (
    ("exact", 0.0, 0.0, 0.0),
    ("pose", 0.02, 0.0, 0.0), ("pose", 0.05, 0.0, 0.0), ("pose", 0.1, 0.0, 0.0),
    ("shape", 0.0, 0.05, 0.0), ("shape", 0.0, 0.1, 0.0),
    ("transl", 0.0, 0.0, 0.005), ("transl", 0.0, 0.0, 0.01), ("transl", 0.0, 0.0, 0.02),
    ("all", 0.02, 0.05, 0.005), ("all", 0.05, 0.05, 0.01), ("all", 0.1, 0.1, 0.02),
)  # fmt: skip


def accuracy(args: argparse.Namespace) -> None:
    body = AnnyBody()
    size = tuple(int(v) for v in args.size.split("x"))
    people = random_people(body, args.people, size, args.seed)
    truth = []
    for p in people:
        a, b = p.meshes()
        truth.append((render_iuv(a), render_iuv(b), *pair_flow(a, b)))
    print(f"{args.people} pairs at {size[0]}x{size[1]}, embree raster")
    print(f"{'noise':>6} {'pose rad':>8} {'shape':>6} {'transl m':>8} | {'part acc':>8} {'UV err':>7} {'false body':>10} | "
          f"{'EPE px':>7} {'EPE on':>7} {'IoU vis':>8} {'IoU hid':>8} {'mIoU':>6}")  # fmt: skip
    for name, pose, shape, transl in NOISE:
        rng = np.random.default_rng(args.seed + 1)
        iuv_acc, flow_acc = IUVAccuracy(), FlowAccuracy()
        both_error, both_count = 0.0, 0
        for p, (iuv_a, iuv_b, flow, visibility) in zip(people, truth):
            a, b = p.meshes(*(perturbed(r, body, rng, pose, shape, transl) for r in (p.a, p.b)))
            iuv_acc.update(render_iuv(a), iuv_a)
            iuv_acc.update(render_iuv(b), iuv_b)
            pred_flow, pred_visibility = pair_flow(a, b)
            flow_acc.update(pred_flow, pred_visibility, flow, visibility)
            both = (visibility == VISIBLE) & (pred_visibility != BACKGROUND)
            both_error += float(np.linalg.norm(pred_flow[both] - flow[both], axis=1).sum())
            both_count += int(both.sum())
        i, f = iuv_acc.result(), flow_acc.result()
        print(f"{name:>6} {pose:8.3f} {shape:6.2f} {transl:8.3f} | {i['part_accuracy']:8.4f} {i['uv_error']:7.4f} "
              f"{i['false_body_rate']:10.4f} | {f['epe_visible']:7.3f} {both_error / both_count:7.3f} "
              f"{f['visibility_iou_visible']:8.4f} {f['visibility_iou_hidden']:8.4f} {f['visibility_miou']:6.4f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("speed")
    p.add_argument("--device", default="cpu", help="where the torch rasteriser runs (cpu, cuda)")
    p.add_argument("--pairs", type=int, default=48, help="pairs of the sample structure (and about as many of the 4-pose one)")
    p.add_argument("--batch", type=int, default=64, help="pairs per backend call (params.yaml: annotators.smpl_flow.batch_size)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p = sub.add_parser("accuracy")
    p.add_argument("--people", type=int, default=16)
    p.add_argument("--size", default="256x192", help="HxW")
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    {"speed": speed, "accuracy": accuracy}[args.command](args)


if __name__ == "__main__":
    main()
