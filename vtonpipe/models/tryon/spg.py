"""SPG-VTON's generators, discriminators, losses and training schedule (Sec. III, Table I).

Three generators of one ResNet-like architecture (Table I, :class:`SPGGenerator`):

- ``G1`` target semantic prediction (Sec. III-B): ``S^_t = G1(S'_s, A_s, M^C, P_t)``: the source
  LIP parsing without hair, face and upper garment (one-hot, 20), the head part ``A_s`` (face and
  hair masks, 2), the in-shop garment mask ``M^C`` (1) and the target pose disks ``P_t`` (18) ->
  20 LIP logits. Loss Eq. 2: adversarial (``D1``, Eq. 1) + ``lambda_1`` focal + L1.
- ``G2`` coarse result (Sec. III-B): ``(I_p, M_p^C) = G2(S^'_t, P_t, C, I_s^{w/o.C})``: the
  predicted map's probabilities with the garment classes removed (20), pose (18), in-shop garment
  (3), source person without the garment (3) -> coarse image and predicted garment mask. Loss
  Eq. 6: adversarial (``D2``, Eq. 3) + ``lambda_2`` (L1 image + L1 mask, Eq. 5, + perceptual, Eq. 4).
- The clothes warping module (two TPS geometric matchers, Sec. III-C, loss Eq. 8-9) is a warp
  model (``vtonpipe.models.warp``); it warps ``C`` to ``C_w`` from ``M^C`` and ``M_p^C``.
- ``G3`` try-on synthesis (Sec. III-D): ``(I_r, M) = G3(I'_p, C_w, P_t)`` with ``I'_p`` the coarse
  result with a random rectangle erased (training only); final image Eq. 10
  ``I^_t = C_w * M + I_r * (1 - M)``. Loss Eq. 16 without the face identity term (its
  SphereFace weights are not available): ``lambda_4 (L_recon^t (Eq. 11) + L_perc^t (Eq. 12)) +
  L_adv^g + L_adv^l`` with the global and local (face + hair crop) discriminators (Eq. 13-14).

All adversarial losses are LSGAN (Sec. IV-C) with an optional R1 penalty ("gradient punishment",
[52]); discriminators are pix2pixHD multi-scale versions of Table I's (:class:`SPGDiscriminator`).
The stage-wise then joint schedule (Sec. III-E) is :data:`SCHEDULE`.

Contract batch keys: ``source_parsing`` (S_s), ``target_parsing`` (S_t), ``garment_image`` (C),
``garment_mask`` (M^C), ``target_pose_disks`` (P_t), ``source_image`` with
``source_garment_region`` (-> I_s^{w/o.C} by :func:`~vtonpipe.models.tryon.agnostic.remove_garment`),
``target_image`` (I_t), ``target_garment_region`` (M_t^C; ``C_t = I_t * M_t^C``); "warped
garment" ``C_w`` from the warp model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .agnostic import (
    FACE,
    HAIR,
    NUM_LIP,
    UPPER_GARMENT,
    drop_labels,
    label_mask,
    lip_ids,
    one_hot,
)
from .common import ConvBlock, Phase, ResBlock, compose, init_mask_output, split_image_and_mask
from .discriminators import (
    GlobalLocalDiscriminator,
    MultiScaleDiscriminator,
    adversarial_g_loss,
    head_crops,
)
from .perceptual import PerceptualLoss

NUM_POSE = 18
#: channels of the generators' inputs (Sec. III-B, III-D)
G1_IN = NUM_LIP + 2 + 1 + NUM_POSE
G2_IN = NUM_LIP + NUM_POSE + 3 + 3
G3_IN = 3 + 3 + NUM_POSE
#: channels of the discriminators' inputs (Eq. 1, 3, 13, 14)
D1_IN = NUM_LIP + G1_IN
D2_IN = 3 + NUM_LIP + 3 + NUM_POSE + 3
DG_IN = 3 + 3 + NUM_POSE + 3
DL_IN = 3 + 3 + 3 + NUM_POSE + 3


@dataclass(frozen=True)
class SPGConfig:
    """SPG-VTON settings. Defaults: Table I's layout at a quarter of its widths for CPU training
    at 256 x 192; :meth:`paper_scale`: Table I (64-channel generators, 32-channel discriminators);
    :meth:`tiny` for tests.

    ``base_channels`` (Table I: 64) and ``bottleneck_blocks`` (4) for every generator;
    ``d_channels`` (Table I: 32) and ``d_scales`` (pix2pixHD multi-scale) for every
    discriminator; ``local_size``: the head crop the local discriminator sees (h, w);
    ``erase_area``: the fraction range of the coarse image erased before ``G3``. Loss weights
    (Sec. IV-C): ``lambda_1 = lambda_2 = lambda_4 = 10`` (``lambda_3 = 20`` weighs the warp
    model's Eq. 9, ``lambda_5`` the face identity loss, not implemented), ``alpha_1 = 2``,
    ``alpha_2 = 0.5`` (Eq. 11); ``focal_gamma`` (the paper cites the LIP focal loss, gamma not
    given: 2, Lin et al.'s); ``r1_gamma``: the R1 weight every discriminator's
    :func:`~vtonpipe.models.tryon.discriminators.discriminator_loss` takes (not given: 1; 0
    disables it). ``mask_init``: the initial value of ``G2``'s garment mask ``M_p^C`` and ``G3``'s
    composition mask ``M`` (:func:`~vtonpipe.models.tryon.common.init_mask_output`; the paper gives
    no initialisation): at 0.1 ``G3`` starts from its rendered image, not from Eq. 10's mix with a
    warped garment that is zero off the garment. ``conv9_bias``: the initial bias of Conv9, Table I's
    ReLU layer of only OUT (4 or 20) channels (the paper gives no initialisation): with PyTorch's
    default (bias near 0) one of ``G3``'s 4 units died in training (active on 1 % of the pixels at
    step 750, the rendered image then lost its colours); 1.0 starts every unit active on nearly every pixel.
    """

    base_channels: int = 16
    bottleneck_blocks: int = 4
    d_channels: int = 16
    d_scales: int = 2
    local_size: tuple[int, int] = (64, 64)
    erase_area: tuple[float, float] = (0.02, 0.33)
    lambda_1: float = 10.0
    lambda_2: float = 10.0
    lambda_3: float = 20.0
    lambda_4: float = 10.0
    alpha_1: float = 2.0
    alpha_2: float = 0.5
    focal_gamma: float = 2.0
    r1_gamma: float = 1.0
    mask_init: float = 0.1
    conv9_bias: float = 1.0

    @classmethod
    def paper_scale(cls) -> "SPGConfig":
        return cls(base_channels=64, d_channels=32)

    @classmethod
    def tiny(cls) -> "SPGConfig":
        return cls(base_channels=8, bottleneck_blocks=1, d_channels=4, d_scales=1, local_size=(8, 8))


class SPGGenerator(nn.Module):
    """Table I's generator: Conv1 (c) -> Conv2 (2c) -> Conv3 s2 (2c) -> Resblock -> Conv4 s2 (4c)
    -> Resblock -> Conv5 s2 (8c) -> Resblock x ``bottleneck_blocks`` -> [Upsample -> Conv] x 3
    (4c, 2c, c) -> Conv9 (out, ReLU) -> Conv10 (out, Tanh) -> Conv11 (1x1, linear). 3x3 convs,
    instance norm and ReLU through Conv8 (Sec. IV-C), nearest upsampling.

    ``x``: (B, in_channels, H, W), H and W divisible by 8 -> (B, out_channels, H, W) unbounded.
    """

    def __init__(self, in_channels: int, out_channels: int, base_channels: int = 64, bottleneck_blocks: int = 4, conv9_bias: float | None = None):
        super().__init__()
        c = base_channels
        self.net = nn.Sequential(
            ConvBlock(in_channels, c),
            ConvBlock(c, 2 * c),
            ConvBlock(2 * c, 2 * c, stride=2),
            ResBlock(2 * c),
            ConvBlock(2 * c, 4 * c, stride=2),
            ResBlock(4 * c),
            ConvBlock(4 * c, 8 * c, stride=2),
            *(ResBlock(8 * c) for _ in range(bottleneck_blocks)),
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(8 * c, 4 * c),
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(4 * c, 2 * c),
            nn.Upsample(scale_factor=2, mode="nearest"),
            ConvBlock(2 * c, c),
            ConvBlock(c, out_channels, norm="none", act="relu"),
            ConvBlock(out_channels, out_channels, norm="none", act="tanh"),
            nn.Conv2d(out_channels, out_channels, 1),
        )
        if conv9_bias is not None:  # else PyTorch's default initialisation
            nn.init.constant_(self.net[-3][0].bias, conv9_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by 8")
        return self.net(x)


class SPGDiscriminator(nn.Module):
    """Table I's discriminator: 3x3 convs Conv1 (d) s1, Conv2 (d) s1, Conv3 (d) s2, Conv4 (d) s1,
    Conv5 (2d) s2, each LeakyReLU 0.2 (instance norm from Conv2 on), and Conv6 1x1 -> 1 logit map
    at a quarter of the input size. (Table I's Conv1 "3 x 1, padding 0" and Conv4 "stride 2"
    contradict its own output sizes; the sizes are followed.) Returns every layer's output."""

    def __init__(self, in_channels: int, channels: int = 32):
        super().__init__()
        d = channels
        self.layers = nn.ModuleList(
            [
                ConvBlock(in_channels, d, norm="none", act="lrelu"),
                ConvBlock(d, d, act="lrelu"),
                ConvBlock(d, d, stride=2, act="lrelu"),
                ConvBlock(d, d, act="lrelu"),
                ConvBlock(d, 2 * d, stride=2, act="lrelu"),
                nn.Conv2d(2 * d, 1, 1),
            ]
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        return outs


def _multiscale(in_channels: int, cfg: SPGConfig) -> MultiScaleDiscriminator:
    return MultiScaleDiscriminator(lambda: SPGDiscriminator(in_channels, cfg.d_channels), cfg.d_scales)


def make_discriminators(cfg: SPGConfig = SPGConfig()) -> nn.ModuleDict:
    """``{"d1": D1 (Eq. 1), "d2": D2 (Eq. 3), "d_tsm": GlobalLocalDiscriminator (D_g, D_l,
    Eq. 13-14)}``, multi-scale Table I discriminators."""
    return nn.ModuleDict(
        {
            "d1": _multiscale(D1_IN, cfg),
            "d2": _multiscale(D2_IN, cfg),
            "d_tsm": GlobalLocalDiscriminator(lambda c: _multiscale(c, cfg), DG_IN, DL_IN, local_size=cfg.local_size),
        }
    )


def random_erase(
    image: torch.Tensor,
    area: tuple[float, float] = (0.02, 0.33),
    ratio: tuple[float, float] = (0.3, 3.3),
    *,
    fill: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One random rectangle per sample set to ``fill`` (mid-gray): its area a uniform fraction in
    ``area`` of the image, aspect (h / w) log-uniform in ``ratio``, clipped to the image
    (torchvision ``RandomErasing``'s ranges). ``image``: (B, C, H, W); returns a new tensor."""
    b, _, h, w = image.shape
    keep = torch.ones(b, 1, h, w, dtype=image.dtype, device=image.device)
    u = torch.rand(b, 4, generator=generator)
    for i in range(b):
        frac = area[0] + (area[1] - area[0]) * u[i, 0].item()
        aspect = math.exp(math.log(ratio[0]) + math.log(ratio[1] / ratio[0]) * u[i, 1].item())
        eh = min(h, max(1, round((frac * h * w * aspect) ** 0.5)))
        ew = min(w, max(1, round((frac * h * w / aspect) ** 0.5)))
        y0 = int(u[i, 2].item() * (h - eh + 1))
        x0 = int(u[i, 3].item() * (w - ew + 1))
        keep[i, :, y0 : y0 + eh, x0 : x0 + ew] = 0
    return image * keep + fill * (1 - keep)


class SPGVTON(nn.Module):
    """SPG-VTON's three generators, run stage by stage (the warp model runs between
    :meth:`coarse` and :meth:`synthesize`). Images in [0, 1]; pose disks (B, 18, H, W) {0, 1};
    H and W divisible by 8."""

    def __init__(self, cfg: SPGConfig = SPGConfig()):
        super().__init__()
        self.cfg = cfg
        self.g1 = SPGGenerator(G1_IN, NUM_LIP, cfg.base_channels, cfg.bottleneck_blocks, cfg.conv9_bias)
        self.g2 = SPGGenerator(G2_IN, 4, cfg.base_channels, cfg.bottleneck_blocks, cfg.conv9_bias)
        self.g3 = SPGGenerator(G3_IN, 4, cfg.base_channels, cfg.bottleneck_blocks, cfg.conv9_bias)
        for g in (self.g2, self.g3):
            init_mask_output(g.net[-1], cfg.mask_init)

    @staticmethod
    def semantic_inputs(source_parsing: torch.Tensor, garment_mask: torch.Tensor, target_pose_disks: torch.Tensor) -> torch.Tensor:
        """``G1``'s input (B, 41, H, W): one-hot ``S'_s`` (``source_parsing`` (B, H, W) LIP ids
        without hair, face, upper garment), ``A_s`` (face mask, hair mask), ``M^C``, ``P_t``."""
        reference = one_hot(drop_labels(source_parsing, HAIR + FACE + UPPER_GARMENT))
        head = torch.cat([label_mask(source_parsing, FACE), label_mask(source_parsing, HAIR)], dim=1)
        return torch.cat([reference, head, garment_mask, target_pose_disks], dim=1)

    def semantic(self, semantic_inputs: torch.Tensor) -> torch.Tensor:
        """``G1``: target LIP logits (B, 20, H, W) from :meth:`semantic_inputs`."""
        return self.g1(semantic_inputs)

    def coarse(
        self, target_semantic: torch.Tensor, target_pose_disks: torch.Tensor, garment_image: torch.Tensor, source_without_garment: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``G2`` (:func:`coarse_result` with this model's ``g2``)."""
        return coarse_result(self.g2, target_semantic, target_pose_disks, garment_image, source_without_garment)

    def synthesize(
        self, coarse_image: torch.Tensor, warped_garment: torch.Tensor, target_pose_disks: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """``G3`` and Eq. 10 (:func:`synthesis_result` with this model's ``g3``); the coarse image
        is randomly erased in training mode only."""
        erase = self.cfg.erase_area if self.training else None
        return synthesis_result(self.g3, coarse_image, warped_garment, target_pose_disks, erase_area=erase, generator=generator)


def coarse_result(
    g2: nn.Module, target_semantic: torch.Tensor, target_pose_disks: torch.Tensor, garment_image: torch.Tensor, source_without_garment: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``G2`` (an :class:`SPGGenerator` with :data:`G2_IN` inputs and 4 outputs): coarse try-on
    ``I_p`` (B, 3, H, W) in [0, 1] and predicted garment mask ``M_p^C`` (B, 1, H, W) in [0, 1].
    ``target_semantic``: (B, 20, H, W) class probabilities ``S^_t`` (softmax of ``G1``'s logits);
    its upper-garment classes are zeroed (``S^'_t``). ``g2`` may be a DDP-wrapped module."""
    keep = torch.ones(NUM_LIP, device=target_semantic.device)
    keep[list(lip_ids(UPPER_GARMENT))] = 0
    incomplete = target_semantic * keep.view(1, -1, 1, 1)
    return split_image_and_mask(g2(torch.cat([incomplete, target_pose_disks, garment_image, source_without_garment], dim=1)))


def synthesis_result(
    g3: nn.Module,
    coarse_image: torch.Tensor,
    warped_garment: torch.Tensor,
    target_pose_disks: torch.Tensor,
    *,
    erase_area: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """``G3`` (an :class:`SPGGenerator` with :data:`G3_IN` inputs and 4 outputs) and Eq. 10. With
    ``erase_area`` (training), ``coarse_image`` is first randomly erased (:func:`random_erase`).
    Returns ``{"tryon": I^_t, "rendered": I_r, "mask": M, "garment_part": C^_t = C_w * M}``:
    images (B, 3, H, W) in [0, 1], mask (B, 1, H, W) in [0, 1]."""
    if erase_area is not None:
        coarse_image = random_erase(coarse_image, erase_area, generator=generator)
    rendered, mask = split_image_and_mask(g3(torch.cat([coarse_image, warped_garment, target_pose_disks], dim=1)))
    return {"tryon": compose(warped_garment, rendered, mask), "rendered": rendered, "mask": mask, "garment_part": warped_garment * mask}


# -- discriminator inputs ------------------------------------------------------------------------
def d1_input(semantic: torch.Tensor, semantic_inputs: torch.Tensor) -> torch.Tensor:
    """Eq. 1's ``D1(S, S'_s, A_s, M^C, P_t)``: (B, 61, H, W); ``semantic`` the real one-hot
    ``S_t`` or the predicted probabilities ``S^_t``."""
    return torch.cat([semantic, semantic_inputs], dim=1)


def d2_input(
    image: torch.Tensor, target_semantic: torch.Tensor, garment_image: torch.Tensor, target_pose_disks: torch.Tensor, source_without_garment: torch.Tensor
) -> torch.Tensor:
    """Eq. 3's ``D2(I, S^_t, C, P_t, I_s^{w/o.C})``: (B, 47, H, W); ``image`` is ``I_t`` or ``I_p``."""
    return torch.cat([image, target_semantic, garment_image, target_pose_disks, source_without_garment], dim=1)


def global_input(image: torch.Tensor, garment_part: torch.Tensor, target_pose_disks: torch.Tensor, source_without_garment: torch.Tensor) -> torch.Tensor:
    """Eq. 13's ``D_g(I, C, P_t, I_s^{w/o.C})``: (B, 27, H, W); real: ``(I_t, C_t = I_t *
    M_t^C)`` (``target_image`` times ``target_garment_region``), generated: ``(I^_t, C^_t)``
    (:meth:`SPGVTON.synthesize`'s ``tryon`` and ``garment_part``)."""
    return torch.cat([image, garment_part, target_pose_disks, source_without_garment], dim=1)


def local_input(
    image: torch.Tensor,
    face_mask: torch.Tensor,
    hair_mask: torch.Tensor,
    garment_part: torch.Tensor,
    target_pose_disks: torch.Tensor,
    source_without_garment: torch.Tensor,
    *,
    local_size: tuple[int, int],
    margin: float = 0.1,
) -> torch.Tensor:
    """Eq. 14's ``D_l(I^f, I^h, C, P_t, I_s^{w/o.C})`` cut at the head box (face + hair masks,
    (B, 1, H, W)), resampled to ``local_size`` (the local discriminator's, ``cfg.local_size``):
    (B, 30, h, w) (:func:`~vtonpipe.models.tryon.discriminators.head_crops`). Pass the same masks
    (the target parsing's in training) for the real and the generated image."""
    tensors = [image * face_mask, image * hair_mask, garment_part, target_pose_disks, source_without_garment]
    return head_crops(tensors, torch.clamp(face_mask + hair_mask, 0, 1), local_size, margin)


# -- losses ----------------------------------------------------------------------------------------
def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Pixel-wise focal loss ``mean over pixels of -(1 - p_t)^gamma log p_t`` (Lin et al.), ``p_t``
    the softmax probability of the true class. ``logits``: (B, K, H, W); ``target``: (B, H, W) ids."""
    log_p = F.log_softmax(logits, dim=1).gather(1, target[:, None].long())[:, 0]
    return (-((1 - log_p.exp()) ** gamma) * log_p).mean()


def semantic_loss(
    logits: torch.Tensor, target_parsing: torch.Tensor, fake_outs: list[list[torch.Tensor]], cfg: SPGConfig = SPGConfig()
) -> dict[str, torch.Tensor]:
    """Eq. 2: ``L_seg = L_adv^s + lambda_1 L_fl^s + L_recon^s``; ``L_recon^s`` the mean absolute
    difference of the predicted probabilities and the one-hot target map. ``fake_outs``: ``D1``
    on :func:`d1_input` of ``softmax(logits)``. Returns ``{"total", "adv", "focal", "l1"}``."""
    adv = adversarial_g_loss(fake_outs, "lsgan")
    focal = focal_loss(logits, target_parsing, cfg.focal_gamma)
    l1 = (F.softmax(logits, dim=1) - one_hot(target_parsing, logits.shape[1])).abs().mean()
    return {"total": adv + cfg.lambda_1 * focal + l1, "adv": adv, "focal": focal, "l1": l1}


def coarse_loss(
    coarse_image: torch.Tensor,
    garment_mask_pred: torch.Tensor,
    target_image: torch.Tensor,
    target_garment_region: torch.Tensor,
    fake_outs: list[list[torch.Tensor]],
    perceptual: PerceptualLoss,
    cfg: SPGConfig = SPGConfig(),
) -> dict[str, torch.Tensor]:
    """Eq. 6: ``L_prd = L_adv^p + lambda_2 (L_recon^p + L_perc^p)``, ``L_recon^p = |I_p - I_t|_1 +
    |M_p^C - M_t^C|_1`` (Eq. 5, means), ``L_perc^p`` Eq. 4. ``fake_outs``: ``D2`` on
    :func:`d2_input` of ``I_p``. Returns ``{"total", "adv", "l1_image", "l1_mask", "perceptual_<name>"}``."""
    adv = adversarial_g_loss(fake_outs, "lsgan")
    l1_image = (coarse_image - target_image).abs().mean()
    l1_mask = (garment_mask_pred - target_garment_region).abs().mean()
    perc = perceptual(coarse_image, target_image)
    total = adv + cfg.lambda_2 * (l1_image + l1_mask + perc)
    return {"total": total, "adv": adv, "l1_image": l1_image, "l1_mask": l1_mask, f"perceptual_{perceptual.name}": perc}


def synthesis_reconstruction(tryon: torch.Tensor, target_image: torch.Tensor, mask: torch.Tensor, alpha_1: float = 2.0, alpha_2: float = 0.5) -> torch.Tensor:
    """Eq. 11: ``L_recon^t = alpha_1 mean|I^_t - I_t| + alpha_2 mean|1 - M|``."""
    return alpha_1 * (tryon - target_image).abs().mean() + alpha_2 * (1 - mask).abs().mean()


def synthesis_loss(
    tryon: torch.Tensor,
    mask: torch.Tensor,
    target_image: torch.Tensor,
    fake_global: list[list[torch.Tensor]],
    fake_local: list[list[torch.Tensor]],
    perceptual: PerceptualLoss,
    cfg: SPGConfig = SPGConfig(),
) -> dict[str, torch.Tensor]:
    """Eq. 16 without ``lambda_5 L_id``: ``lambda_4 (L_recon^t + L_perc^t) + L_adv^g + L_adv^l``
    (Eq. 11, 12, 13, 14). ``fake_global`` / ``fake_local``: ``D_g`` / ``D_l`` on
    :func:`global_input` / :func:`local_input` of the generated image. Returns ``{"total",
    "recon", "adv_global", "adv_local", "perceptual_<name>"}``."""
    recon = synthesis_reconstruction(tryon, target_image, mask, cfg.alpha_1, cfg.alpha_2)
    perc = perceptual(tryon, target_image)
    adv_g = adversarial_g_loss(fake_global, "lsgan")
    adv_l = adversarial_g_loss(fake_local, "lsgan")
    total = cfg.lambda_4 * (recon + perc) + adv_g + adv_l
    return {"total": total, "recon": recon, "adv_global": adv_g, "adv_local": adv_l, f"perceptual_{perceptual.name}": perc}


#: Sec. III-E / IV-C: (1) G1 alone (70k iterations, batch 16); (2) G1 fixed, the rest trained
#: (70k, batch 8); (3) everything jointly (100k, batch 8). Module names: ``g1``, ``g2``, ``g3``
#: (:class:`SPGVTON` attributes), ``d1``, ``d2``, ``d_tsm`` (:func:`make_discriminators` keys),
#: ``warp`` (the clothes warping module, a warp model). Loss names: ``semantic``
#: (:func:`semantic_loss`), ``coarse`` (:func:`coarse_loss`), ``warp`` (the warp model's Eq. 8,
#: weighted ``cfg.lambda_3``, Eq. 9), ``synthesis`` (:func:`synthesis_loss`); the generators'
#: objective is their sum (Eq. 17).
SCHEDULE: tuple[Phase, ...] = (
    Phase("semantic", train=("g1", "d1"), frozen=(), losses=("semantic",), steps=70_000, batch_size=16),
    Phase("synthesis", train=("g2", "d2", "warp", "g3", "d_tsm"), frozen=("g1",), losses=("coarse", "warp", "synthesis"), steps=70_000, batch_size=8),
    Phase(
        "joint",
        train=("g1", "d1", "g2", "d2", "warp", "g3", "d_tsm"),
        frozen=(),
        losses=("semantic", "coarse", "warp", "synthesis"),
        steps=100_000,
        batch_size=8,
    ),
)
