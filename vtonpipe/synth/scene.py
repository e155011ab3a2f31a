"""Rendering a dressed person in a pose, and their top alone, with exact ground truth.

A person image is one ray-cast scene: the clothed body (anny's mesh pushed out along its normals
by the garments' thickness, :func:`~vtonpipe.synth.garments.displacement`, the feet wrapped in
shoes) plus the meshes that stand off the body: a skirt (:mod:`vtonpipe.synth.skirt`), a curtain of
longer hair and locks over the shoulders (:mod:`vtonpipe.synth.hair`), a shoulder bag and its
strap (:mod:`vtonpipe.synth.bag`). Materials and LIP labels are decided per ray hit from
the interpolated fields (:class:`~vtonpipe.synth.person.DressedBody`). Ground truth comes from
rasters at pixel centres (docs/CONVENTIONS.md):

- ``parsing`` / ``person_mask``: the labels of the clothed scene's hits.
- the *body under the pixel*: the unclothed body's first hit, kept where it is under what is seen:
  the clothed body (skin, tight garments, scalp hair, shoes), or a skirt or hair curtain in front
  of any body point but the arms and hands (as DensePose annotators mark the legs under a skirt);
  elsewhere there is none (a skirt between the legs or in front of a hand, the rim of a few
  millimetres a garment adds to the silhouette). ``face_id``, ``iuv``
  (:func:`~vtonpipe.models.render.iuv.anny_charts`) and the pairs' flow use it.
- ``coco18``: anny's keypoints projected; state 2 when the line of sight from the camera to the
  keypoint crosses the body's closed outer surface at most once (joints: it enters the limb the
  joint is in; face points, which lie at the surface or in the eye sockets: at most their own
  skin), 1 when it crosses it more often (another body part is in front), 0 outside the image.
- ``landmarks``: the top's anchors (:mod:`vtonpipe.synth.anchors`) on the clothed surface,
  visible when the line of sight to them meets no hair or bag and nothing else (clothed body,
  skirt) farther than 4 cm from them; occluded otherwise or when outside the image.
- a bag (:mod:`vtonpipe.synth.bag`) is not the person: background in ``parsing``, no body under
  it, and the keypoints behind it hidden (state 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..converters.landmarks import ABSENT, OCCLUDED, VISIBLE
from ..models.bodies.anny import AnnyBody
from ..models.bodies.camera import PinholeCamera, RigidTransform, frame_body
from ..models.render.iuv import PartCharts, iuv_from_raster
from ..models.render.raster import EmbreeMesh, Raster
from .anchors import Anchors
from .bag import STRAP_OFFSET
from .fields import vertex_normals
from .garments import fabric_albedo, srgb_to_linear
from .geometry import ClippedMesh, clip_mesh, crossings
from .hair import LOCK_OFFSET, rigid_fit
from .person import ACCESSORY, HAIR, SPECULAR, DressedBody
from .poses import PoseRecipe, bone_rotations
from .render import (
    LIGHTINGS,
    SUPERSAMPLE,
    Lighting,
    downsample,
    shade,
    soft_shadow,
    studio_background,
    textured_background,
    to_uint8,
    view_directions,
)
from .skirt import skirt_mesh

BACKFACE_DARKENING = 0.55  # albedo factor on the inside of garments (seen through openings)
LANDMARK_NEIGHBOURHOOD = 0.04  # m
#: the photo's backdrop by :attr:`Shot.backdrop`
BACKDROPS = {"studio": studio_background, "textured": textured_background}


@dataclass(frozen=True)
class Shot:
    """Camera choices for one photo: ``elevation`` and ``fov`` degrees, ``margin`` fraction of
    the image kept free around the person, backdrop and shadow from ``seed``; ``backdrop``
    ``studio`` (near-neutral, :func:`studio_background`) or ``textured`` (:func:`textured_background`);
    ``lighting`` a key of :data:`~vtonpipe.synth.render.LIGHTINGS`."""

    elevation: float
    fov: float
    margin: float
    seed: int
    backdrop: str = "studio"
    lighting: str = "studio"


@dataclass
class PersonView:
    """One rendered person image and its ground truth (docs/SAMPLE.md).

    ``vertices`` (V, 3): the unclothed posed body in the camera frame (m); ``body``: its raster
    where it is under what is seen (face -1 elsewhere), the raster pair flows use.
    """

    image: np.ndarray
    camera: PinholeCamera
    to_camera: RigidTransform
    pose: np.ndarray
    vertices: np.ndarray
    body: Raster
    parsing: np.ndarray
    iuv: np.ndarray
    coco18: np.ndarray
    landmarks: np.ndarray


@dataclass
class Standoff:
    """A mesh standing off the body: ``vertices`` (N, 3), ``faces`` (M, 3), its LIP ``label`` (hair;
    the skirt's: skirt, or dress when it is one; ``ACCESSORY``, background, for a bag and its
    strap) and per-vertex pattern coordinates ``uv`` (N, 2): (around, height) m on a skirt, the
    (cos, sin) of the azimuth about the head on hair, unused on a bag."""

    vertices: np.ndarray
    faces: np.ndarray
    label: int
    uv: np.ndarray


@dataclass
class GarmentView:
    """The top alone, front view on white: ``image`` uint8, ``mask`` uint8 (H, W), ``landmarks`` (32, 3)."""

    image: np.ndarray
    mask: np.ndarray
    landmarks: np.ndarray


def _standoff_materials(dressed: DressedBody, extra: Standoff, face: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Linear albedo (N, 3), specular strength (N,) and LIP label (N,) at points of a stand-off
    mesh (``face`` (N,) its own face ids, ``bary`` (N, 3))."""
    uv = _interpolate(extra.uv, extra.faces, face, bary)
    if extra.label == ACCESSORY:
        albedo = np.broadcast_to(srgb_to_linear(dressed.recipe.bag.colour), (len(face), 3)).copy()
        return albedo, np.full(len(face), SPECULAR["bag"]), np.full(len(face), ACCESSORY, np.uint8)
    if extra.label == HAIR:
        return dressed.hair_albedo(uv), np.full(len(face), SPECULAR["hair"]), np.full(len(face), HAIR, np.uint8)
    return fabric_albedo(dressed.recipe.bottom.fabric, uv), np.full(len(face), SPECULAR["cloth"]), np.full(len(face), extra.label, np.uint8)


def _interpolate(values: np.ndarray, faces: np.ndarray, face: np.ndarray, bary: np.ndarray) -> np.ndarray:
    return np.einsum("nk,nkc->nc", bary, values[faces[face]])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


class Renderer:
    """Renders :class:`DressedBody` people; holds the anny body and its DensePose charts."""

    def __init__(self, body: AnnyBody, charts: PartCharts):
        self.body = body
        self.charts = charts

    def posed(self, dressed: DressedBody, recipe: PoseRecipe) -> tuple[np.ndarray, np.ndarray]:
        """Posed vertices (V, 3) in the body frame turned by ``recipe.turn`` and the pose (104, 3)."""
        pose = self.body.pose_from_named(bone_rotations(recipe, dressed.fields.arm_rest_angle()))
        with torch.no_grad():
            v = self.body(pose=pose, phenotype=torch.as_tensor(dressed.recipe.phenotype, dtype=self.body.dtype), global_rot=(0.0, 0.0, recipe.turn))
        return v[0].numpy().astype(np.float64), pose[0].numpy()

    def standoffs(self, dressed: DressedBody, posed: np.ndarray, turn: float) -> list[Standoff]:
        """The meshes that stand off the posed body (``posed`` (V, 3), body frame turned by ``turn``):
        the skirt, the hair curtain, the locks over the shoulders, the bag and its strap, when the
        person has them."""
        out = []
        f, r = dressed.fields, dressed.recipe
        if r.bottom.category == "skirt":
            root = f.joints["root"]
            top = root[2] + r.top.hem + 0.01  # tucked under the top
            hem = f.joints["upperleg01.L"][2] - r.bottom.length * f.leg_length()
            covered = (f.arm < 0.5) & (f.head + f.neck < 0.5) & (f.z < top + 0.03) & (f.z > hem - 0.05)
            c, s = math.cos(turn), math.sin(turn)
            centre = np.array([c * root[0] - s * root[1], s * root[0] + c * root[1]])
            verts, faces, uv = skirt_mesh(posed, covered, centre, top, hem, r.bottom.flare)
            out.append(Standoff(verts, faces, dressed.bottom_label, uv))
        if dressed.curtain is not None:
            verts, faces, carriers = dressed.curtain
            R, t = rigid_fit(f.rest[carriers], posed[carriers])
            ear = 0.5 * (f.joints["coco:left_ear"] + f.joints["coco:right_ear"])
            azim = np.arctan2(verts[:, 0] - ear[0], -(verts[:, 1] - ear[1]))
            out.append(Standoff(verts @ R.T + t, faces, HAIR, np.column_stack([np.cos(azim), np.sin(azim)])))
        if dressed.locks is not None:
            locks, azim = dressed.locks
            out.append(Standoff(locks.posed(posed, self.body.faces, LOCK_OFFSET), locks.faces, HAIR, np.column_stack([np.cos(azim), np.sin(azim)])))
        if dressed.bag is not None:
            verts, faces, carriers = dressed.bag
            R, t = rigid_fit(f.rest[carriers], posed[carriers])
            out.append(Standoff(verts @ R.T + t, faces, ACCESSORY, np.zeros((len(verts), 2))))
            strap = dressed.strap
            out.append(Standoff(strap.posed(posed, self.body.faces, STRAP_OFFSET), strap.faces, ACCESSORY, np.zeros((len(strap.face), 2))))
        return out

    def person(self, dressed: DressedBody, recipe: PoseRecipe, shot: Shot, size: tuple[int, int]) -> PersonView:
        """Render ``dressed`` in pose ``recipe``, photographed per ``shot``, at ``size`` (H, W)."""
        h, w = size
        faces = self.body.faces
        n_body = len(faces)
        posed, pose = self.posed(dressed, recipe)
        clothed = dressed.clothed(posed)
        extras = self.standoffs(dressed, posed, recipe.turn)
        # one mesh: the clothed body, then each stand-off mesh; ``first[k]`` is mesh k's first face
        vertex_start = np.cumsum([0, len(clothed), *(len(e.vertices) for e in extras)])
        first = np.cumsum([0, n_body, *(len(e.faces) for e in extras)])
        scene_vertices = np.concatenate([clothed, *(e.vertices for e in extras)])
        scene_faces = np.concatenate([faces, *(e.faces + o for e, o in zip(extras, vertex_start[1:]))])
        camera, to_camera = frame_body(scene_vertices, width=w, height=h, elevation_deg=shot.elevation, fov_y_deg=shot.fov, margin=shot.margin)
        scene_cam = to_camera.apply(scene_vertices)
        normals = vertex_normals(scene_cam, scene_faces)
        scene = EmbreeMesh(scene_cam, scene_faces)
        rng = np.random.default_rng(shot.seed)

        def materials(face: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            mesh = np.searchsorted(first, face, side="right") - 1
            albedo = np.empty((len(face), 3))
            spec = np.empty(len(face))
            label = np.empty(len(face), np.uint8)
            on = mesh == 0
            albedo[on], spec[on], label[on] = dressed.materials(face[on], bary[on])
            for k, extra in enumerate(extras, 1):
                on = mesh == k
                albedo[on], spec[on], label[on] = _standoff_materials(dressed, extra, face[on] - first[k], bary[on])
            return albedo, spec, label

        # the photo: supersampled, over a backdrop with a contact shadow under the feet
        cam2 = camera.scaled(SUPERSAMPLE)
        fine = scene.rasterize(cam2)
        if shot.backdrop not in BACKDROPS:
            raise ValueError(f"unknown backdrop {shot.backdrop!r}; known: {sorted(BACKDROPS)}")
        if shot.lighting not in LIGHTINGS:
            raise ValueError(f"unknown lighting {shot.lighting!r}; known: {sorted(LIGHTINGS)}")
        backdrop = BACKDROPS[shot.backdrop](cam2.height, cam2.width, rng)
        body_cam = to_camera.apply(posed)
        feet = body_cam[body_cam[:, 1] > np.percentile(body_cam[:, 1], 99)].mean(0)
        ground = camera.project(feet)
        width_px = 0.22 * camera.fx / feet[2]
        backdrop *= soft_shadow(cam2.height, cam2.width, tuple(SUPERSAMPLE * (ground + 0.5) - 0.5), (SUPERSAMPLE * width_px, SUPERSAMPLE * 0.22 * width_px), rng.uniform(0.2, 0.32))[..., None]
        self._paint(
            backdrop, fine, cam2, scene_cam, scene_faces, lambda f, b: _interpolate(normals, scene_faces, f, b), lambda f, b: materials(f, b)[:2], LIGHTINGS[shot.lighting]
        )
        image = to_uint8(downsample(backdrop, SUPERSAMPLE), rng)

        # ground truth at pixel centres
        coarse = scene.rasterize(camera)
        parsing = np.zeros((h, w), np.uint8)
        hit = coarse.mask
        parsing[hit] = materials(coarse.face_id[hit], coarse.bary[hit])[2]
        body_raster = EmbreeMesh(body_cam, faces).rasterize(camera)
        under = body_raster.mask & hit & (coarse.face_id < n_body)
        # each scene face's stand-off label (-1: the clothed body)
        standoff = np.full(len(scene_faces), -1)
        for k, extra in enumerate(extras, 1):
            standoff[first[k] : first[k] + len(extra.faces)] = extra.label
        accessory = standoff == ACCESSORY
        # a stand-off mesh (skirt, hair) lies over the body behind it, except over hands and arms;
        # an accessory (the bag) hides it
        ys, xs = np.nonzero(body_raster.mask & hit & (coarse.face_id >= n_body))
        not_accessory = ~accessory[coarse.face_id[ys, xs]]
        ys, xs = ys[not_accessory], xs[not_accessory]
        arm = _interpolate(dressed.fields.arm[:, None], faces, body_raster.face_id[ys, xs], body_raster.bary[ys, xs])[:, 0]
        under[ys[arm < 0.5], xs[arm < 0.5]] = True
        body_raster.face_id[~under] = -1
        body_raster.bary[~under] = 0.0
        body_raster.depth[~under] = np.inf
        iuv = iuv_from_raster(body_raster, self.charts.face_part, self.charts.face_uv)

        coco18 = self._keypoints(dressed, posed, to_camera, camera, scene, accessory)
        landmarks = _landmarks(dressed.anchors, to_camera.apply(clothed), camera, scene, accessory | (standoff == HAIR))
        return PersonView(image, camera, to_camera, pose, body_cam, body_raster, parsing, iuv, coco18, landmarks)

    def garment(self, dressed: DressedBody, size: tuple[int, int], seed: int) -> GarmentView:
        """The in-shop garment alone on the person's rest body, front view, filling a white ``size``
        (H, W) image: the top, or all of a one-piece outfit (a dress's skirt, a jumpsuit's legs)."""
        h, w = size
        faces = self.body.faces
        rest = dressed.fields.rest
        shell = dressed.clothed(rest)
        one_piece = dressed.recipe.outfit != "separates"
        region = np.maximum(dressed.top, dressed.bottom) if dressed.recipe.outfit == "jumpsuit" else dressed.top
        clipped: ClippedMesh = clip_mesh(shell, faces, region)
        skirts = [e for e in self.standoffs(dressed, rest, 0.0) if e.label not in (HAIR, ACCESSORY)] if one_piece else []
        vertices = np.concatenate([clipped.vertices, *(e.vertices for e in skirts)])
        camera, to_camera = frame_body(vertices, width=w, height=h, fov_y_deg=8.0, margin=0.06)
        shell_cam = to_camera.apply(shell)
        normals = vertex_normals(shell_cam, faces)
        n_clipped = len(clipped.faces)
        scene_faces = np.concatenate([clipped.faces, *(e.faces + len(clipped.vertices) for e in skirts)])
        scene_cam = to_camera.apply(vertices)
        skirt_normals = vertex_normals(scene_cam, scene_faces)
        scene = EmbreeMesh(scene_cam, scene_faces)

        def colours(face: np.ndarray, bary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            on = face < n_clipped
            albedo = np.empty((len(face), 3))
            parent, pbary = clipped.parent_bary(face[on], bary[on])
            a = _interpolate(dressed.attributes, faces, parent, pbary.astype(np.float32)).astype(np.float64)
            albedo[on] = dressed.garment_albedo(a) if dressed.recipe.outfit == "jumpsuit" else dressed.top_albedo(a[:, DressedBody.TOP_COLUMNS])
            for e in skirts:  # at most one
                albedo[~on] = _standoff_materials(dressed, e, face[~on] - n_clipped, bary[~on])[0]
            return albedo, np.full(len(face), SPECULAR["cloth"])

        def garment_normals(face: np.ndarray, bary: np.ndarray) -> np.ndarray:
            on = face < n_clipped
            out = _interpolate(skirt_normals, scene_faces, face, bary)
            parent, pbary = clipped.parent_bary(face[on], bary[on])
            out[on] = _interpolate(normals, faces, parent, pbary)
            return out

        cam2 = camera.scaled(SUPERSAMPLE)
        canvas = np.ones((cam2.height, cam2.width, 3), np.float32)
        self._paint(canvas, scene.rasterize(cam2), cam2, scene_cam, scene_faces, garment_normals, colours)
        image = to_uint8(downsample(canvas, SUPERSAMPLE), np.random.default_rng(seed))
        coarse = scene.rasterize(camera)
        landmarks = _landmarks(dressed.anchors, shell_cam, camera, scene)
        return GarmentView(image, coarse.mask.astype(np.uint8), landmarks)

    @staticmethod
    def _paint(
        canvas: np.ndarray, raster: Raster, camera: PinholeCamera, vertices: np.ndarray, faces: np.ndarray, normals, colours, lighting: Lighting = LIGHTINGS["studio"]
    ) -> None:
        """Shade the hits of ``raster`` (of the mesh ``vertices`` (V, 3) camera frame, ``faces``)
        onto ``canvas`` (H, W, 3) linear under ``lighting``. ``normals(face, bary)`` -> (N, 3)
        shading normals and ``colours(face, bary)`` -> linear albedo (N, 3) and specular strength
        (N,) at the hits; faces seen from behind (inside a garment, through an opening) are darkened."""
        ys, xs = np.nonzero(raster.mask)
        face, bary = raster.face_id[ys, xs], raster.bary[ys, xs].astype(np.float64)
        albedo, spec = colours(face, bary)
        view = view_directions(camera, ys, xs)
        tri = vertices[faces[face]]
        behind = np.einsum("nc,nc->n", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), view) < 0
        albedo[behind] *= BACKFACE_DARKENING
        canvas[ys, xs] = shade(albedo, spec, _unit(normals(face, bary)), view, lighting)

    def _keypoints(
        self, dressed: DressedBody, posed: np.ndarray, to_camera: RigidTransform, camera: PinholeCamera, scene: EmbreeMesh, accessory: np.ndarray
    ) -> np.ndarray:
        """(18, 3) float32 COCO-18 x, y px and state 2 visible / 1 hidden by the body or an
        accessory (``accessory`` (F,) bool over the faces of ``scene``, the camera-frame scene) /
        0 outside."""
        with torch.no_grad():
            k = self.body.openpose18(torch.as_tensor(posed, dtype=self.body.dtype)[None])[0].numpy().astype(np.float64)
        k_cam = to_camera.apply(k)
        xy = camera.project(k_cam)
        caster = EmbreeMesh(to_camera.apply(posed), self.body.faces[dressed.outer_faces])
        crossed = crossings(caster, np.zeros_like(k_cam), k_cam)
        distance = np.linalg.norm(k_cam, axis=1)
        face, _, hit = scene.cast_rays(np.zeros_like(k_cam), k_cam / distance[:, None])
        behind_accessory = (face >= 0) & accessory[np.maximum(face, 0)] & (hit < distance)
        inside = (xy[:, 0] >= -0.5) & (xy[:, 0] <= camera.width - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= camera.height - 0.5)
        state = np.where(inside, np.where((crossed <= 1) & ~behind_accessory, 2, 1), 0)
        return np.column_stack([xy, state]).astype(np.float32)


def _landmarks(anchors: Anchors, vertices_cam: np.ndarray, camera: PinholeCamera, occluders: EmbreeMesh, hiding: np.ndarray | None = None) -> np.ndarray:
    """(32, 3) float32 x, y px and attribute (0 visible, 1 occluded or outside, 2 absent).

    Visible: inside the image, and the line of sight from the camera meets no surface of
    ``occluders`` (camera frame) before the landmark, except within ``LANDMARK_NEIGHBOURHOOD`` of
    it (a landmark on a silhouette is seen grazing its own surface, and still counts as visible),
    and no hair or accessory at all (``hiding`` (F,) bool: the occluders' faces that are hair, a
    curtain or a lock lying a centimetre over the garment, or a bag and its strap).
    """
    p = anchors.points(vertices_cam)
    xy = camera.project(p)
    inside = (xy[:, 0] >= -0.5) & (xy[:, 0] <= camera.width - 0.5) & (xy[:, 1] >= -0.5) & (xy[:, 1] <= camera.height - 0.5)
    distance = np.linalg.norm(p, axis=1)
    ray = p / distance[:, None]
    face, _, hit = occluders.cast_rays(np.zeros_like(p), ray)
    first = np.minimum(hit, distance)
    visible = inside & (np.linalg.norm(first[:, None] * ray - p, axis=1) <= LANDMARK_NEIGHBOURHOOD)
    if hiding is not None:
        visible &= ~((face >= 0) & hiding[np.maximum(face, 0)] & (hit < distance))
    attr = np.where(anchors.present, np.where(visible, VISIBLE, OCCLUDED), ABSENT)
    xy[~anchors.present] = 0.0
    return np.column_stack([xy, attr]).astype(np.float32)
