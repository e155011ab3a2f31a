"""Time the rasteriser backends on the anny body at VTON resolutions.

    python benchmarks/bench_raster.py [--device cuda] [--repeats 10] [--threads 1]

For each image size (H x W) it prints the best time over ``--repeats`` runs of: ``embree``
(building the scene, then casting), ``embree`` casting only (an :class:`EmbreeMesh` reused),
``binned`` (binning the faces for the camera, then casting: the CPU default), and ``torch`` on
``--device``, the ratio of each to the embree baseline, and on how many pixels ``binned`` and
``torch`` give Embree's face.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.bodies.camera import frame_body
from vtonpipe.models.render.raster import EmbreeMesh, rasterize, rasterize_torch


def best_time(fn, repeats: int, sync) -> float:
    """Best wall time in seconds of ``repeats`` calls, after one warm-up call."""
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="torch backend device (cpu, cuda)")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's); 1 is steadier on a busy machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    body = AnnyBody()
    with torch.no_grad():
        vertices = body(pose={"upperarm01.L": (0.0, -0.3, 0.0), "lowerarm01.R": (-0.4, 0.0, 0.3)})[0].numpy().astype(np.float64)
    print(f"anny body: {len(vertices)} vertices, {len(body.faces)} faces; torch {torch.__version__} on {device}, "
          f"{torch.get_num_threads()} CPU threads")  # fmt: skip
    print(f"{'size (HxW)':>11} {'embree':>10} {'cast only':>18} {'binned':>18} {'torch':>18} {'same face (binned, torch)':>26}")
    for height, width in ((256, 192), (1024, 768)):
        camera, pose = frame_body(vertices, width=width, height=height, azimuth_deg=20.0)
        vertices_cam = pose.apply(vertices)
        mesh = EmbreeMesh(vertices_cam, body.faces)
        v_t = torch.as_tensor(vertices_cam, dtype=torch.float32, device=device)
        f_t = torch.as_tensor(body.faces, device=device)

        t_embree = best_time(lambda: rasterize(vertices_cam, body.faces, camera, backend="embree"), args.repeats, sync)
        t_cast = best_time(lambda: mesh.rasterize(camera), args.repeats, sync)
        t_binned = best_time(lambda: rasterize(vertices_cam, body.faces, camera, backend="binned"), args.repeats, sync)
        t_torch = best_time(lambda: rasterize_torch(v_t, f_t, camera), args.repeats, sync)

        ref = mesh.rasterize(camera).face_id
        same_binned = (rasterize(vertices_cam, body.faces, camera, backend="binned").face_id == ref).mean()
        same_torch = (ref == rasterize_torch(v_t, f_t, camera)[0].cpu().numpy()).mean()
        print(f"{height:>5}x{width:<5} {1e3 * t_embree:8.1f}ms {1e3 * t_cast:8.1f}ms ({t_cast / t_embree:4.2f}x) "
              f"{1e3 * t_binned:8.1f}ms ({t_binned / t_embree:4.2f}x) {1e3 * t_torch:8.1f}ms ({t_torch / t_embree:4.2f}x) "
              f"{100 * same_binned:12.3f}% {100 * same_torch:8.3f}%")  # fmt: skip


if __name__ == "__main__":
    main()
