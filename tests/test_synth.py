"""The embedded sample dataset: reproducible bytes, MPV layout, and ground truth that agrees with
the pixels (docs/SAMPLE.md)."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import binary_dilation, binary_erosion
from scipy.spatial.transform import Rotation

from vtonpipe.bench.metrics import KeypointAccuracy
from vtonpipe.converters.keypoints import clear_outside, mp33_to_coco18
from vtonpipe.converters.landmarks import ABSENT, OCCLUDED, VISIBLE
from vtonpipe.datasets import get_adapter
from vtonpipe.datasets.sample_truth import pair_truth_path, read_truth, validate_truth
from vtonpipe.io import read_image
from vtonpipe.models.bodies.anny import AnnyBody
from vtonpipe.models.render.iuv import anny_charts
from vtonpipe.synth import write_sample
from vtonpipe.synth.garments import Bottom, Fabric, Hair, Shoes, Top, srgb_to_linear
from vtonpipe.synth.person import DressedBody, PersonRecipe
from vtonpipe.synth.poses import sample_pose
from vtonpipe.synth.recipes import SKIN_TONES
from vtonpipe.synth.scene import Renderer, Shot

PEOPLE, SEED, SIZE = 4, 3, (256, 192)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample") / "raw"
    write_sample(root, PEOPLE, SEED, SIZE)
    return root


@pytest.fixture(scope="module")
def body() -> AnnyBody:
    return AnnyBody()


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _people(root: Path) -> list[list[str]]:
    return [line.split() for line in (root / "all_poseA_poseB_clothes.txt").read_text().splitlines()]


def _near(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Pixels within ``pixels`` (chessboard distance) of ``mask``."""
    return binary_dilation(mask.astype(bool), np.ones((3, 3), bool), iterations=pixels)


def _pixel(x: float, y: float) -> tuple[int, int]:
    """(row, column) of the pixel whose centre is nearest to (x, y)."""
    return int(np.rint(y)), int(np.rint(x))


def _truth(root: Path, name: str) -> dict:
    return read_truth(root / "gt" / f"{Path(name).stem}.npz")


def test_same_seed_same_bytes(sample, tmp_path):
    again = tmp_path / "again"
    write_sample(again, PEOPLE, SEED, SIZE)
    first = _files(sample)
    assert first == _files(again)
    assert sum(k.endswith(".jpg") for k in first) == 3 * PEOPLE and sum(k.startswith("gt/pairs/") for k in first) == PEOPLE
    # a person does not depend on how many are drawn; another seed draws other people
    fewer, other = tmp_path / "fewer", tmp_path / "other"
    write_sample(fewer, 2, SEED, SIZE)
    write_sample(other, 2, SEED + 1, SIZE)
    for name, data in _files(fewer).items():
        if name.startswith(("all/", "gt/")):
            assert data == first[name], name
            assert _files(other).get(name) != data, name


def test_mpv_adapter_ingests_the_sample(sample):
    scan = get_adapter("mpv").scan(sample)
    assert scan.problems == []
    assert len(scan.pairs) == PEOPLE and scan.pair_lines == PEOPLE
    assert sorted(p.split for p in scan.pairs) == ["test"] + ["train"] * (PEOPLE - 1)
    kinds = {e.path: e.kind for e in scan.images}
    assert sum(k == "garment" for k in kinds.values()) == PEOPLE and sum(k == "person" for k in kinds.values()) == 2 * PEOPLE
    for entry in scan.images:
        assert read_image(sample / entry.path).shape == (*SIZE, 3)
    meta = json.loads((sample / "sample.json").read_text())
    assert meta["seed"] == SEED and meta["size"] == list(SIZE) and len(meta["people"]) == PEOPLE
    for person, (a, b, cloth, split) in zip(meta["people"], _people(sample)):
        assert person["images"] == [a, b, cloth] and person["split"] == split
        assert person["photos"][0]["pose"]["name"] != person["photos"][1]["pose"]["name"]


def test_ground_truth_files_follow_the_documented_format(sample):
    for a, b, cloth, _ in _people(sample):
        for name, kind in ((a, "person"), (b, "person"), (cloth, "garment")):
            gt = _truth(sample, name)
            assert gt["kind"] == kind
            validate_truth(kind, {k: v for k, v in gt.items() if k != "kind"})
            assert gt["garment_category"] in ("tee", "long_sleeve", "sleeveless")
        pair = read_truth(pair_truth_path(sample, f"all/{a}", f"all/{b}"))
        validate_truth("pair", {k: v for k, v in pair.items() if k != "kind"})


def test_masks_parsing_iuv_and_face_ids_agree(sample):
    charts = anny_charts()
    for a, b, _, _ in _people(sample):
        for name in (a, b):
            gt = _truth(sample, name)
            person = gt["person_mask"].astype(bool)
            np.testing.assert_array_equal(person, gt["parsing"] > 0)
            body = gt["face_id"] >= 0
            np.testing.assert_array_equal(body, gt["iuv"][..., 0] > 0)
            assert body.sum() > 0.6 * person.sum() and not (body & ~person).any()
            np.testing.assert_array_equal(charts.face_part[gt["face_id"][body]], gt["iuv"][..., 0][body])
            # the person stands out from the backdrop: the image differs inside and around the mask
            image = read_image(sample / "all" / name).astype(float)
            ring = binary_dilation(person, iterations=4) & ~binary_dilation(person, iterations=2)
            assert np.abs(image[person].mean(0) - image[ring].mean(0)).max() > 10


def test_keypoints_land_on_the_person_and_follow_the_body_parameters(sample, body):
    for a, b, _, _ in _people(sample):
        for name in (a, b):
            gt = _truth(sample, name)
            kp = gt["coco18"]
            assert set(np.unique(kp[:, 2])) <= {0.0, 1.0, 2.0} and (kp[:, 2] == 2).sum() >= 12
            near = _near(gt["person_mask"], 1)
            for x, y, state in kp:
                if state > 0:
                    assert near[_pixel(x, y)], name
            # body_pose, phenotype, body_rotation/translation and camera reproduce the keypoints
            with torch.no_grad():
                v = body(pose=torch.as_tensor(gt["body_pose"]), phenotype=torch.as_tensor(gt["phenotype"]))
                joints = body.openpose18(v)[0].numpy().astype(np.float64)
            cam = Rotation.from_rotvec(gt["body_rotation"]).apply(joints) + gt["body_translation"]
            fx, fy, cx, cy = gt["camera"]
            np.testing.assert_allclose(np.stack([fx * cam[:, 0] / cam[:, 2] + cx, fy * cam[:, 1] / cam[:, 2] + cy], 1), kp[:, :2], atol=0.05)


def test_landmarks_lie_on_the_garment(sample):
    for a, b, cloth, _ in _people(sample):
        g = _truth(sample, cloth)
        present = np.flatnonzero(g["landmarks"][:, 2] != ABSENT)
        assert set(range(9)) | {17, 18, 29, 30, 31} <= set(present)  # every top has the neckline, shoulders, armpits, hem
        mask = _near(g["garment_mask"], 1)
        lm = g["landmarks"]
        for k in present:
            assert mask[_pixel(*lm[k, :2])], k
        assert (lm[present, 2] == VISIBLE).mean() > 0.8  # a front view shows nearly all of them
        # front view: the wearer's left is the image's right
        for left, right in ((1, 6), (2, 5), (3, 4), (7, 17), (8, 18), (27, 28), (29, 31)):
            assert lm[left, 0] > lm[right, 0]
        for name in (a, b):
            gt = _truth(sample, name)
            np.testing.assert_array_equal(gt["landmarks"][:, 2] == ABSENT, g["landmarks"][:, 2] == ABSENT)
            upper = _near(gt["parsing"] == 5, 2)  # boundary points: at most 2 px from upper-clothes pixels
            seen = np.flatnonzero(gt["landmarks"][:, 2] == VISIBLE)
            assert len(seen) >= 5
            for k in seen:
                assert upper[_pixel(*gt["landmarks"][k, :2])], (name, k)


def test_pair_flow_links_the_same_body_points(sample):
    for a, b, _, _ in _people(sample):
        pair = read_truth(pair_truth_path(sample, f"all/{a}", f"all/{b}"))
        source, target = _truth(sample, a), _truth(sample, b)
        np.testing.assert_array_equal(pair["visibility"] == 2, target["face_id"] < 0)
        ys, xs = np.nonzero(pair["visibility"] == 0)
        assert len(ys) > 0.3 * (target["face_id"] >= 0).sum()
        sx = np.rint(xs + pair["flow"][ys, xs, 0]).astype(int)
        sy = np.rint(ys + pair["flow"][ys, xs, 1]).astype(int)
        h, w = SIZE
        assert ((sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)).all()
        same_part = source["iuv"][sy, sx, 0] == target["iuv"][ys, xs, 0]
        assert same_part.mean() > 0.9


def _recipe(skin, top_colour=(200, 30, 30), category="tee") -> PersonRecipe:
    solid = lambda c: Fabric("solid", c, c, 0.05)
    return PersonRecipe(
        phenotype=(0.0, 0.7, 0.5, 0.5, 0.5, 0.5),
        skin=skin,
        eyes=(60, 38, 24),
        hair=Hair(50, 8, -28, 0.006, (118, 56, 30)),
        top=Top(category, "crew", -0.05, {"tee": 0.4, "long_sleeve": 0.95, "sleeveless": 0.0}[category], solid(top_colour)),
        bottom=Bottom("trousers", 0.09, 0.95, solid((30, 60, 150))),
        shoes=Shoes(0.03, (40, 130, 60)),
    )


def test_parsing_labels_the_colours_that_were_rendered(body):
    recipe = _recipe(SKIN_TONES[1])
    renderer = Renderer(body, anny_charts())
    view = renderer.person(DressedBody(body, recipe), sample_pose("a_pose", np.random.default_rng(0)), Shot(2.0, 20.0, 0.05, 0), SIZE)
    linear = srgb_to_linear(view.image.reshape(-1, 3)).reshape(view.image.shape)
    classes = {"top": [5], "trousers": [9], "skin": [13, 14, 15], "hair": [2], "shoes": [18, 19]}
    colours = {"top": recipe.top.fabric.colour, "trousers": recipe.bottom.fabric.colour, "skin": recipe.skin,
               "hair": recipe.hair.colour, "shoes": recipe.shoes.colour}  # fmt: skip

    def chroma(rgb) -> np.ndarray:
        rgb = np.asarray(rgb, float)
        return rgb / rgb.sum(-1, keepdims=True)

    for name, labels in classes.items():
        inner = binary_erosion(np.isin(view.parsing, labels), iterations=1)
        assert inner.sum() > 20, name
        measured = chroma(np.median(linear[inner], axis=0))
        nearest = min(colours, key=lambda c: np.abs(chroma(srgb_to_linear(colours[c])) - measured).sum())
        assert nearest == name
    # the top's pixels are its albedo times a grey shading factor
    top = binary_erosion(view.parsing == 5, iterations=1)
    ratio = linear[top].mean(0) / srgb_to_linear(recipe.top.fabric.colour)
    assert 0.4 < ratio.min() and ratio.max() < 1.6 * ratio.min()


def test_mediapipe_finds_the_renders_dark_skin_and_arms_overhead_included(body):
    from vtonpipe.models.nets.mediapipe import PoseLandmarker

    renderer = Renderer(body, anny_charts())
    pose = PoseLandmarker()
    cases = [
        (SKIN_TONES[-1], "arms_overhead", 0.0, "long_sleeve"),
        (SKIN_TONES[-1], "arms_overhead", 0.7, "tee"),
        (SKIN_TONES[-2], "walking", -0.8, "sleeveless"),
        (SKIN_TONES[0], "hands_on_hips", 0.6, "tee"),
    ]
    for skin, name, turn, category in cases:
        dressed = DressedBody(body, _recipe(skin, (240, 200, 60), category))
        view = renderer.person(dressed, sample_pose(name, np.random.default_rng(1), turn), Shot(3.0, 22.0, 0.05, 1), SIZE)
        result = pose(view.image)
        assert result is not None, (skin, name)
        acc = KeypointAccuracy(alpha=0.1)
        acc.update(clear_outside(mp33_to_coco18(result.landmarks[:, [0, 1, 3]], 0.5), SIZE), view.coco18)
        assert acc.result()["pck@0.1"] >= 0.8, (skin, name, acc.result())


def test_a_textured_backdrop_changes_only_the_photo(body):
    """The same person and shot against the studio and the textured backdrop: the same ground
    truth; the person's pixels equal up to the sensor noise, the background far busier."""
    renderer = Renderer(body, anny_charts())
    dressed, pose = DressedBody(body, _recipe(SKIN_TONES[2])), sample_pose("arms_down", np.random.default_rng(2))
    studio = renderer.person(dressed, pose, Shot(2.0, 20.0, 0.05, 3), SIZE)
    textured = renderer.person(dressed, pose, Shot(2.0, 20.0, 0.05, 3, "textured"), SIZE)
    for a, b in ((studio.parsing, textured.parsing), (studio.iuv, textured.iuv), (studio.coco18, textured.coco18)):
        np.testing.assert_array_equal(a, b)
    person = binary_erosion(studio.parsing > 0, iterations=2)
    background = binary_erosion(studio.parsing == 0, iterations=2)
    assert np.abs(studio.image[person].astype(int) - textured.image[person]).mean() < 6
    assert textured.image[background].std(0).mean() > 3 * studio.image[background].std(0).mean()
    with pytest.raises(ValueError, match="backdrop"):
        renderer.person(dressed, pose, Shot(2.0, 20.0, 0.05, 3, "beach"), SIZE)


def test_textured_backdrops_and_the_side_light_are_opt_in():
    from vtonpipe.synth.recipes import sample_photos

    plain = [sample_photos(np.random.default_rng([0, i])) for i in range(40)]
    assert plain == [sample_photos(np.random.default_rng([0, i]), textured_share=0.0, side_light_share=0.0) for i in range(40)]
    assert {(p.shot.backdrop, p.shot.lighting) for pair in plain for p in pair} == {("studio", "studio")}
    backdrops = [p.shot.backdrop for i in range(40) for p in sample_photos(np.random.default_rng([0, i]), textured_share=0.5)]
    assert 20 <= backdrops.count("textured") <= 60
    lights = [p.shot.lighting for i in range(40) for p in sample_photos(np.random.default_rng([0, i]), side_light_share=0.5)]
    assert 20 <= lights.count("side") <= 60


def test_the_side_light_changes_only_the_shading(body):
    """The same person and shot in the studio and the side light: the same ground truth; under
    the side light the person is darker on the image's left than on its right, in the studio
    light less so, and the background is untouched."""
    renderer = Renderer(body, anny_charts())
    dressed, pose = DressedBody(body, _recipe(SKIN_TONES[1])), sample_pose("a_pose", np.random.default_rng(4))
    studio = renderer.person(dressed, pose, Shot(2.0, 20.0, 0.05, 3), SIZE)
    side = renderer.person(dressed, pose, Shot(2.0, 20.0, 0.05, 3, lighting="side"), SIZE)
    for a, b in ((studio.parsing, side.parsing), (studio.iuv, side.iuv), (studio.coco18, side.coco18)):
        np.testing.assert_array_equal(a, b)
    background = binary_erosion(studio.parsing == 0, iterations=2)
    assert np.abs(studio.image[background].astype(int) - side.image[background]).mean() < 3
    person = studio.parsing > 0
    centre = np.nonzero(person)[1].mean()
    cols = np.arange(SIZE[1])[None, :]

    def left_over_right(image):
        grey = image.astype(float).mean(-1)
        return grey[person & (cols < centre)].mean() / grey[person & (cols > centre)].mean()

    assert left_over_right(side.image) < 0.85 * left_over_right(studio.image)
    with pytest.raises(ValueError, match="lighting"):
        renderer.person(dressed, pose, Shot(2.0, 20.0, 0.05, 3, lighting="disco"), SIZE)


def test_one_piece_outfits_are_opt_in_and_of_the_tops_fabric():
    from vtonpipe.synth.recipes import ONE_PIECE_TOP_HEM, sample_person

    plain = [sample_person(np.random.default_rng([0, i])) for i in range(40)]
    assert plain == [sample_person(np.random.default_rng([0, i]), one_piece_share=0.0) for i in range(40)]
    assert {r.outfit for r in plain} == {"separates"}
    one_piece = [sample_person(np.random.default_rng([0, i]), one_piece_share=1.0) for i in range(40)]
    assert {r.outfit for r in one_piece} == {"dress", "jumpsuit"}
    for r in one_piece:
        assert (r.bottom.category == "skirt") == (r.outfit == "dress")
        assert r.bottom.fabric == dataclasses.replace(r.top.fabric, logo=None)
        assert r.garment_category == r.outfit
        assert r.top.hem == ONE_PIECE_TOP_HEM  # its landmarks' hem on one line of the body
    with pytest.raises(ValueError, match="a dress cannot have a trousers"):
        dataclasses.replace(_recipe(SKIN_TONES[1]), outfit="dress")
    with pytest.raises(ValueError, match="unknown outfit"):
        dataclasses.replace(_recipe(SKIN_TONES[1]), outfit="kimono")


def test_a_dress_and_a_jumpsuit_are_one_garment_over_the_body(body):
    """LIP labels the whole garment dress (6) or jumpsuits (10), never upper clothes, pants or
    skirt; DensePose still sees the legs under the dress's skirt; the in-shop image shows all of
    the garment (far taller than the top alone)."""
    renderer = Renderer(body, anny_charts())
    base = _recipe(SKIN_TONES[1], category="long_sleeve")
    fabric = dataclasses.replace(base.top.fabric, logo=None)
    jumpsuit = dataclasses.replace(base, bottom=dataclasses.replace(base.bottom, fabric=fabric), outfit="jumpsuit")
    dress = dataclasses.replace(base, bottom=Bottom("skirt", 0.09, 0.5, fabric, flare=0.05), outfit="dress")
    pose, shot = sample_pose("arms_down", np.random.default_rng(2)), Shot(2.0, 20.0, 0.05, 3)
    legs = (7, 8, 9, 10, 11, 12, 13, 14)  # DensePose's upper and lower leg parts
    for recipe, label in ((jumpsuit, 10), (dress, 6)):
        dressed = DressedBody(body, recipe)
        view = renderer.person(dressed, pose, shot, SIZE)
        labels = set(np.unique(view.parsing).tolist())
        assert label in labels and not labels & {5, 9, 12}, labels
        on_legs = np.isin(view.iuv[..., 0], legs)
        assert (on_legs & (view.parsing == label)).sum() > 200  # the garment covers the legs
        if recipe.outfit == "dress":  # the skirt stands off the legs: the gap between them is dress
            assert ((view.parsing == label) & (view.iuv[..., 0] == 0)).sum() > 50
        garment = renderer.garment(dressed, SIZE, seed=0)
        top = renderer.garment(DressedBody(body, base), SIZE, seed=0)

        def aspect(mask):
            rows, cols = np.nonzero(mask)
            return (np.ptp(rows) + 1) / (np.ptp(cols) + 1)

        assert aspect(garment.mask) > 1.5 * aspect(top.mask)
        assert (garment.landmarks[:, 2] == VISIBLE).sum() >= (top.landmarks[:, 2] == VISIBLE).sum() - 2


def test_long_hair_over_the_shoulders_lies_on_the_chest_and_hides_what_it_covers(body):
    """Opt-in long hair (a share of 0 draws nothing more): locks over the front of the shoulders
    are hair in the parsing GT below the shoulders where the top was, with the torso still the
    DensePose part under them; a curtain hides the collar's back and neck corners in a back view;
    the body's GT (keypoints) does not change."""
    from vtonpipe.synth.recipes import LONG_HAIR_LENGTH, sample_person

    plain = [sample_person(np.random.default_rng([0, i])) for i in range(30)]
    assert plain == [sample_person(np.random.default_rng([0, i]), hair_over_shoulders_share=0.0) for i in range(30)]
    drawn = [sample_person(np.random.default_rng([0, i]), hair_over_shoulders_share=1.0) for i in range(30)]
    for r in drawn:
        female = r.phenotype[0] > 0.5
        assert (r.hair.over_shoulders > 0) == female and (r.hair.length == LONG_HAIR_LENGTH) == female

    renderer = Renderer(body, anny_charts())
    recipe = dataclasses.replace(_recipe(SKIN_TONES[1]), phenotype=(1.0, 0.6, 0.5, 0.5, 0.5, 0.5))
    long_hair = dataclasses.replace(recipe, hair=dataclasses.replace(recipe.hair, length=LONG_HAIR_LENGTH, over_shoulders=0.12))
    shot = Shot(2.0, 20.0, 0.05, 3)
    front = sample_pose("arms_down", np.random.default_rng(2))
    short_view, long_view = (renderer.person(DressedBody(body, r), front, shot, SIZE) for r in (recipe, long_hair))
    np.testing.assert_array_equal(short_view.coco18, long_view.coco18)
    below_shoulders = np.arange(SIZE[0])[:, None] > short_view.coco18[[2, 5], 1].mean() + 2
    locks = (long_view.parsing == 2) & below_shoulders
    assert locks.sum() > 80
    assert (short_view.parsing[locks] == 5).all()  # the top under them
    assert np.isin(long_view.iuv[..., 0][locks], (1, 2)).all()  # DensePose: the torso under the hair
    back = sample_pose("arms_down", np.random.default_rng(2), math.pi)
    bare = renderer.person(DressedBody(body, dataclasses.replace(recipe, hair=dataclasses.replace(recipe.hair, length=0.0))), back, shot, SIZE)
    curtain = renderer.person(DressedBody(body, long_hair), back, shot, SIZE)
    assert (bare.landmarks[[0, 1, 6], 2] == VISIBLE).all() and (curtain.landmarks[[0, 1, 6], 2] == OCCLUDED).all()


def test_a_shoulder_bag_hides_the_body_and_is_not_the_person(body):
    """Opt-in bags (a share of 0 draws nothing more): the bag and its strap are background in the
    parsing and the person mask, no body is under them (DensePose), a keypoint behind the bag is
    hidden; elsewhere the ground truth is the bagless photo's."""
    from vtonpipe.synth.garments import Bag
    from vtonpipe.synth.recipes import sample_person

    plain = [sample_person(np.random.default_rng([0, i])) for i in range(30)]
    assert plain == [sample_person(np.random.default_rng([0, i]), bag_share=0.0) for i in range(30)]
    drawn = [sample_person(np.random.default_rng([0, i]), bag_share=1.0) for i in range(30)]
    assert all(r.bag is not None for r in drawn) and {r.bag.side for r in drawn} == {-1.0, 1.0}

    renderer = Renderer(body, anny_charts())
    recipe = _recipe(SKIN_TONES[1])
    with_bag = dataclasses.replace(recipe, bag=Bag(-1.0, 0.26, 0.2, 0.07, (120, 70, 40)))  # on the right hip
    pose, shot = sample_pose("arms_down", np.random.default_rng(2)), Shot(2.0, 20.0, 0.05, 3)
    plain_view, bag_view = (renderer.person(DressedBody(body, r), pose, shot, SIZE) for r in (recipe, with_bag))
    hidden = (plain_view.parsing > 0) & (bag_view.parsing == 0)  # the bag and strap over the person
    assert hidden.sum() > 300
    assert np.isin(plain_view.parsing[hidden], (5, 9)).mean() > 0.9  # over the top and the trousers
    assert (bag_view.iuv[hidden] == 0).all() and (plain_view.iuv[hidden][:, 0] > 0).mean() > 0.9
    same = ~hidden & (bag_view.parsing > 0)
    np.testing.assert_array_equal(plain_view.parsing[same], bag_view.parsing[same])
    r_hip = 8  # COCO-18: the right hip, behind the bag
    assert plain_view.coco18[r_hip, 2] == 2 and bag_view.coco18[r_hip, 2] == 1
    np.testing.assert_array_equal(np.delete(plain_view.coco18, r_hip, 0), np.delete(bag_view.coco18, r_hip, 0))
