"""Geometric human parsing: LIP labels from a person mask, body parts and per-person colour models.

No learnt parser. Every pixel of the person mask gets a **body part** (head, torso, left/right
arm, leg, foot) and a **material** (skin, hair, garment, shoe); garments are then split into a
top and a bottom and classed, and the part and material decide the LIP label
(docs/CONVENTIONS.md). Pure functions on arrays, in the pixel frame of docs/CONVENTIONS.md;
lengths scale with the torso length (neck to mid-hip), so any resolution works.

Body parts (:func:`keypoint_parts`, :func:`densepose_parts`)
    ``keypoints``: each pixel goes to the tapered capsule (segment + radius at each end) it is
    nearest to in units of that capsule's radius: torso (neck to mid-hip, as wide as the
    shoulders at the top and the pelvis at the bottom), head (neck to head centre), upper and
    lower arms and legs, hands and feet (continuations past the wrists and ankles). Limb radii
    are the mask's width across each segment, clamped to 0.7..1.5 of anthropometric defaults.
    Undetected keypoints are completed first (:func:`complete_skeleton`): the neck from the
    shoulders, a shoulder or hip from the other, elbows, knees, wrists and ankles continued along
    the limb or straight down the torso axis (so legs without keypoints are the mask below the
    hips, split between the two hip columns). A skin pixel of the torso inside an arm's capsule
    is that arm's (a hand in front of the body).
    ``densepose``: the DensePose part map ``I`` (parts named in :data:`vtonpipe.models.render.iuv.PART_NAMES`)
    on the body; mask pixels off the body (hair, loose clothes) take the nearest body part.

Colours (:func:`colour_features`: CIE Lab with a, b divided by L + 16, which keeps a surface's
chromaticity under shading; :class:`ColourModel`: Gaussian mixtures with a covariance floor)
    - skin: the heaviest plausible component of a mixture fitted to the face oval, or, without
      one, to the face centre located from the keypoints, the hands or the head (:func:`skin_model`).
      A person seen from behind (:meth:`Skeleton.facing_away`: their right shoulder and hip on
      the image's right) has no face to sample: the face oval is ignored (MediaPipe's face
      landmarks put one on the back of the head), skin comes from the hands, and the crown
      reaches down to about the ears;
    - top: the chest's pixels that match the paired in-shop garment (its ``garment_mask``
      pixels) better than skin (category ``dresses``: the torso's and thighs'); without an
      in-shop garment, the chest's non-skin pixels;
    - bottom: the thighs' non-skin pixels (with an in-shop garment of category ``lower_body``,
      the thighs' and lower torso's pixels that match it; the top then comes from the chest's
      other colours); without a category the in-shop garment is taken for a top (MPV, VITON);
    - hair: the crown's pixels that are not clearly skin (the crown: head pixels off the face
      oval above the eyes, or without an oval above the forehead);
    - shoes: the feet's (below the ankles) pixels that are neither skin nor bottom.

    An image without colour (grayscale, 16-bit grayscale, a grayscale image saved in colour:
    :func:`shows_colour`) is parsed from lightness alone (:class:`Evidence`, :data:`LUMINANCE`):
    a and b are set to 0, a zone's pixels sample a garment, hair or shoe from one standard
    deviation off the skin model, and the in-shop garment's lightness is matched as it is. Local
    texture (the lightness' standard deviation in a window) as a second feature was measured and
    lowered the sample's grayscale mIoU, so it is not used; the leg hems and the bare-torso cost
    below carry what per-pixel lightness cannot.

Labels
    Each pixel takes the material of least cost: its colour's negative log-density, averaged
    over a window ~1.5% of the image height, plus :data:`PRIOR` (hair only on the head and
    upper torso, shoes only on the legs and feet and cheapest below the ankles, the bottom never
    on the head or on an arm; skin on the torso below the neckline, torso coordinate NECKLINE,
    costs BARE_TORSO more). On each leg the garment then ends at one hem (:func:`leg_hems`: the
    garment covers the leg from the hip down, the hems of both legs alike, clear evidence
    otherwise kept). Garment pixels of the torso and legs split at the torso
    coordinate (:func:`waist_cut`) that best separates the top's colours above from the bottom's
    below (with a weak prior for the hips, which decides between garments of one colour); arms
    and head keep the top. Then:

    - skin: face (13) on the head and the torso (LIP has no torso-skin class; like the sample's
      ground truth, the neck and any bare torso count as face), left/right arm (14/15), left/right
      leg (16/17) on legs and feet; hair 2; shoe 18/19 by the foot's side; the face oval is face
      except hair-coloured pixels in its top 30% (a fringe);
    - bottom: a skirt (12) if part of it below the crotch stands off the legs and it covers the
      midline between the legs where they are apart (where they never are, e.g. seen from the
      side, if more of it stands off the legs), pants (9) otherwise (trousers, shorts);
    - one garment, every garment pixel: dress (6) when the category is ``dresses``; without a
      category, what the paired in-shop garment is (``models.landmarks.geometric.garment_kind``:
      reaching far below the hips, with two legs jumpsuits (10), else dress); without an in-shop
      garment (or one whose shape is unreadable), dress when top and bottom have the same
      colours and the bottom is a skirt (a top over trousers of its colour by chance stays a
      top); otherwise the top is upper-clothes (5).

    Finally a majority filter (odd window ~1% of the image height) and the removal of connected
    pieces smaller than 0.2% of the person (they take their nearest neighbour's label); the
    background (0) is exactly the pixels outside the person mask. Labels written: 0, 2, 5, 6, 9,
    10, 12, 13, 14..19.

Modules: :mod:`.constants` (ids, parts, tuning constants), :mod:`.colour` (Lab colour models),
:mod:`.skeleton` (completed skeleton, body parts), :mod:`.labels` (the assignment, :func:`parse_person`).
Accuracy: docs/MEASUREMENTS.md.
"""

from .colour import ColourModel, colour_features, garment_colours, shows_colour
from .constants import DENSEPOSE_PART, LABELS, MissingKeypointsError, Part
from .labels import leg_hems, parse_person
from .skeleton import Skeleton, complete_skeleton, densepose_parts, keypoint_parts

__all__ = [
    "DENSEPOSE_PART",
    "LABELS",
    "ColourModel",
    "MissingKeypointsError",
    "Part",
    "Skeleton",
    "colour_features",
    "complete_skeleton",
    "densepose_parts",
    "garment_colours",
    "keypoint_parts",
    "leg_hems",
    "parse_person",
    "shows_colour",
]
