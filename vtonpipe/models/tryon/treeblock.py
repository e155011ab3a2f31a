"""Down to the Last Detail (Wang et al.): Tree-Block, parsing transformation, appearance
generation with a composition mask, face refinement, their losses and training procedure.

- :class:`TreeBlock` (Sec. 3.1, Eq. 1-3): parallel dilated 3x3 convolutions of the input (Eq. 1),
  fused pairwise as a binary tree by 1x1 convolutions and an activation (Eq. 2), plus the input
  (Eq. 3).
- :class:`ParsingUNet` (Sec. 3.2.1): U-Net from the reference parsing ``S_ps`` (one-hot), the
  in-shop garment mask ``M_c`` and the target pose ``p_t`` (heatmaps) to the target parsing
  ``S~_pt``; cross-entropy + adversarial losses (:func:`parsing_loss`).
- :class:`TreeBlockGenerator` (Sec. 3.2.2): pix2pix's ResNet generator with its residual blocks
  replaced by Tree-Blocks. The appearance generator maps ``I_ps^{w/o.c}``, ``S~_pt`` and the
  aligned garment ``C~^w_pt`` to the rendered image ``I~_r`` and composition mask ``M``; Eq. 4
  composes the result (:class:`TreeBlockVTON.appear`); losses Eq. 5-8 (:func:`appearance_loss`).
- Face refinement ``G_F`` (Sec. 3.2.3): a Tree-Block generator on head crops of the reference and
  the generated image, pasted back; losses Eq. 9-10 (:func:`face_loss`).
- :data:`SCHEDULE`: Algorithm 1 as data.

Every adversarial loss is LSGAN ("[18] using MSE"); pixel losses are smooth L1 (Eq. 6, 9, Fast
R-CNN's with beta 1); the feature loss is VGG-19 ``conv1_2`` (the paper's best) with squared
error (Johnson et al.'s feature reconstruction loss). The paper gives no loss weights;
:class:`TreeBlockConfig` documents ours.

Contract batch keys: ``source_parsing`` (S_ps), ``garment_mask`` (M_c), ``target_pose_heatmaps``
(p_t), ``source_image`` with ``source_garment_region`` (-> ``I_ps^{w/o.c}``,
:func:`~vtonpipe.models.tryon.agnostic.remove_garment`), ``target_parsing``, ``target_image``
(I_pt), ``target_garment_region`` (the attention loss's target cloth mask); "warped garment"
``C~^w_pt`` from the warp model (the clothing spatial alignment, CP-VTON's TPS).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import nn

from .agnostic import FACE, HAIR, NUM_LIP, label_mask
from .common import (
    ConvBlock,
    Phase,
    UpBlock,
    compose,
    crop_and_resize,
    init_mask_output,
    mask_boxes,
    paste_crop,
    split_image_and_mask,
    to_signed,
    to_unit,
)
from .discriminators import (
    MultiScaleDiscriminator,
    adversarial_g_loss,
    multiscale_patch_discriminator,
)
from .perceptual import PerceptualKind, PerceptualLoss, perceptual_loss

NUM_POSE = 18
PARSING_IN = NUM_LIP + 1 + NUM_POSE
APPEARANCE_IN = 3 + NUM_LIP + 3


class TreeBlock(nn.Module):
    """Tree dilated fusion block (Eq. 1-3) on ``channels`` features.

    Eq. 1: ``F_DR = W_DR * F^{n-1} + b`` for every dilation rate ``DR`` in ``dilations`` (3x3
    convs, padding ``DR``: the size is kept). Eq. 2: neighbouring features are fused pairwise,
    ``sigma(W_fuse * concat(F_1, F_2) + b)`` with a 1x1 ``W_fuse`` and ``sigma`` ReLU, level by
    level (an odd feature out is carried up) until one is left. Eq. 3: ``F^n = F_fusion + F^{n-1}``.
    With dilations (1, 2, 4, 8) the fusions are ((1, 2), (4, 8)) then their pair.

    Receptive field: ``1 + 2 * max(dilations)`` pixels; ``n`` stacked blocks ``1 + 2 n max``.
    ``x``: (B, channels, H, W) -> same shape.
    """

    def __init__(self, channels: int, dilations: tuple[int, ...] = (1, 2, 4, 8)):
        super().__init__()
        if not dilations:
            raise ValueError("a Tree-Block needs at least one dilated convolution")
        self.dilations = tuple(dilations)
        self.branches = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=d, dilation=d) for d in self.dilations)
        levels, count = [], len(self.dilations)
        while count > 1:
            levels.append(nn.ModuleList(nn.Conv2d(2 * channels, channels, 1) for _ in range(count // 2)))
            count = count // 2 + count % 2
        self.fusions = nn.ModuleList(levels)

    @property
    def receptive_field(self) -> int:
        """Side in pixels of the input window one output pixel depends on."""
        return 1 + 2 * max(self.dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [branch(x) for branch in self.branches]
        for level in self.fusions:
            fused = [F.relu(fuse(torch.cat([feats[2 * i], feats[2 * i + 1]], dim=1))) for i, fuse in enumerate(level)]
            if len(feats) % 2:
                fused.append(feats[-1])
            feats = fused
        return feats[0] + x


class TreeBlockGenerator(nn.Module):
    """pix2pix's ResNet generator with Tree-Blocks: reflect-pad 7x7 conv (``ngf``) -> two stride-2
    3x3 conv blocks (2 ngf, 4 ngf) -> ``blocks`` x :class:`TreeBlock` (4 ngf) -> two x2 nearest
    upsampling conv blocks -> reflect-pad 7x7 conv to ``out_channels``. Instance norm and ReLU
    outside the Tree-Blocks.

    ``x``: (B, in_channels, H, W), H and W divisible by 4 -> (B, out_channels, H, W) unbounded.
    """

    def __init__(self, in_channels: int, out_channels: int, ngf: int = 64, blocks: int = 9, dilations: tuple[int, ...] = (1, 2, 4, 8)):
        super().__init__()
        self.net = nn.Sequential(
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, 7),
            nn.InstanceNorm2d(ngf, affine=True),
            nn.ReLU(),
            ConvBlock(ngf, 2 * ngf, stride=2),
            ConvBlock(2 * ngf, 4 * ngf, stride=2),
            *(TreeBlock(4 * ngf, dilations) for _ in range(blocks)),
            UpBlock(4 * ngf, 2 * ngf),
            UpBlock(2 * ngf, ngf),
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, out_channels, 7),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2] % 4 or x.shape[-1] % 4:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by 4")
        return self.net(x)


class ParsingUNet(nn.Module):
    """U-Net: per level two 3x3 conv blocks (instance norm, ReLU), 2x2 max-pooling down, x2
    nearest upsampling + concatenation with the encoder level up; 1x1 conv to ``out_channels``
    logits. Widths ``channels * 2**level`` (capped at ``8 * channels``), ``depth`` poolings.

    ``x``: (B, in_channels, H, W), H and W divisible by ``2 ** depth`` -> (B, out_channels, H, W).
    """

    def __init__(self, in_channels: int = PARSING_IN, out_channels: int = NUM_LIP, channels: int = 64, depth: int = 4):
        super().__init__()
        widths = [channels * 2 ** min(i, 3) for i in range(depth + 1)]
        self.depth = depth
        self.enc = nn.ModuleList(
            nn.Sequential(ConvBlock(in_channels if i == 0 else widths[i - 1], widths[i]), ConvBlock(widths[i], widths[i])) for i in range(depth + 1)
        )
        self.dec = nn.ModuleList(nn.Sequential(ConvBlock(widths[i + 1] + widths[i], widths[i]), ConvBlock(widths[i], widths[i])) for i in range(depth))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = 2**self.depth
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"image size {tuple(x.shape[-2:])} must be divisible by {step}")
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = skips[-1]
        for i in reversed(range(self.depth)):
            x = self.dec[i](torch.cat([F.interpolate(x, scale_factor=2, mode="nearest"), skips[i]], dim=1))
        return self.head(x)


@dataclass(frozen=True)
class TreeBlockConfig:
    """Settings (the paper gives no widths or weights; pix2pix's are ``ngf=64``, 9 blocks: see
    :meth:`paper_scale`). Defaults are small for CPU training at 256 x 192; :meth:`tiny` for tests.

    Networks: ``ngf``, ``blocks``, ``dilations`` of the appearance generator; ``face_ngf``,
    ``face_blocks`` and ``face_size`` (h, w crop) of the face refinement; ``parsing_channels``,
    ``parsing_depth`` of the parsing U-Net; ``d_channels``, ``d_layers``, ``d_scales`` of every
    multi-scale PatchGAN. Loss weights: Eq. 8's ``lambda_adv``, ``lambda_pixel``, ``lambda_feat``,
    ``lambda_atten``; Eq. 5's ``lambda_tv``; the parsing net's ``lambda_ce``, ``lambda_parsing_adv``;
    the face net's (Eq. 10) terms reuse Eq. 8's ``lambda_adv``, ``lambda_pixel``, ``lambda_feat``.
    ``mask_init``: the composition mask ``M`` of Eq. 4 at initialisation
    (:func:`~vtonpipe.models.tryon.common.init_mask_output`; the paper gives none): 0.1, about
    the garment's share of the image, so the result starts from the rendered image.
    """

    ngf: int = 16
    blocks: int = 4
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    face_ngf: int = 16
    face_blocks: int = 2
    face_size: tuple[int, int] = (64, 64)
    face_margin: float = 0.1
    parsing_channels: int = 16
    parsing_depth: int = 4
    d_channels: int = 16
    d_layers: int = 3
    d_scales: int = 2
    lambda_adv: float = 1.0
    lambda_pixel: float = 10.0
    lambda_feat: float = 10.0
    lambda_atten: float = 1.0
    lambda_tv: float = 1.0
    lambda_ce: float = 1.0
    lambda_parsing_adv: float = 1.0
    mask_init: float = 0.1

    @classmethod
    def paper_scale(cls) -> "TreeBlockConfig":
        return cls(ngf=64, blocks=9, face_ngf=64, face_blocks=6, parsing_channels=64, d_channels=64)

    @classmethod
    def tiny(cls) -> "TreeBlockConfig":
        return cls(
            ngf=4,
            blocks=1,
            dilations=(1, 2),
            face_ngf=4,
            face_blocks=1,
            face_size=(8, 8),
            parsing_channels=8,
            parsing_depth=2,
            d_channels=4,
            d_layers=1,
            d_scales=1,
        )


class TreeBlockVTON(nn.Module):
    """The three networks of the framework (the clothing alignment is a warp model):
    ``parsing`` (:class:`ParsingUNet`), ``appearance`` and ``face`` (:class:`TreeBlockGenerator`).
    Images in [0, 1]; H, W divisible by ``2 ** parsing_depth``."""

    def __init__(self, cfg: TreeBlockConfig = TreeBlockConfig()):
        super().__init__()
        self.cfg = cfg
        self.parsing = ParsingUNet(PARSING_IN, NUM_LIP, cfg.parsing_channels, cfg.parsing_depth)
        self.appearance = TreeBlockGenerator(APPEARANCE_IN, 4, cfg.ngf, cfg.blocks, cfg.dilations)
        init_mask_output(self.appearance.net[-1], cfg.mask_init)
        self.face = TreeBlockGenerator(6, 3, cfg.face_ngf, cfg.face_blocks, cfg.dilations)

    @staticmethod
    def parsing_inputs(source_parsing_onehot: torch.Tensor, garment_mask: torch.Tensor, target_pose_heatmaps: torch.Tensor) -> torch.Tensor:
        """Concatenation of ``S_ps`` (B, 20, H, W), ``M_c`` (B, 1, H, W), ``p_t`` (B, 18, H, W)."""
        return torch.cat([source_parsing_onehot, garment_mask, target_pose_heatmaps], dim=1)

    def transform_parsing(self, parsing_inputs: torch.Tensor) -> torch.Tensor:
        """Target parsing logits ``S~_pt`` (B, 20, H, W)."""
        return self.parsing(parsing_inputs)

    def appear(self, source_without_garment: torch.Tensor, target_semantic: torch.Tensor, warped_garment: torch.Tensor) -> dict[str, torch.Tensor]:
        """:func:`appearance_result` with this model's ``appearance`` network."""
        return appearance_result(self.appearance, source_without_garment, target_semantic, warped_garment)

    def refine_face(
        self, source_image: torch.Tensor, source_head_mask: torch.Tensor, tryon: torch.Tensor, target_head_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """:func:`refine_face_result` with this model's ``face`` network."""
        return refine_face_result(self.face, self.cfg, source_image, source_head_mask, tryon, target_head_mask)


def appearance_result(
    appearance: nn.Module, source_without_garment: torch.Tensor, target_semantic: torch.Tensor, warped_garment: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Appearance generation (``appearance``: a :class:`TreeBlockGenerator` of
    :data:`APPEARANCE_IN` inputs and 4 outputs, possibly DDP-wrapped) and Eq. 4.
    ``target_semantic``: (B, 20, H, W) probabilities. Returns ``{"tryon": I~_pt, "rendered":
    I~_r, "mask": M}`` (images in [0, 1], mask (B, 1, H, W) in [0, 1])."""
    x = torch.cat([to_signed(source_without_garment), target_semantic, to_signed(warped_garment)], dim=1)
    rendered, mask = split_image_and_mask(appearance(x))
    return {"tryon": compose(warped_garment, rendered, mask), "rendered": rendered, "mask": mask}


def head_boxes(head_mask: torch.Tensor, cfg: TreeBlockConfig) -> torch.Tensor:
    """Crop boxes (B, 4) of a head (face + hair) mask (B, 1, H, W), widened by ``cfg.face_margin``
    and grown to ``cfg.face_size``'s aspect."""
    h, w = cfg.face_size
    return mask_boxes(head_mask, margin=cfg.face_margin, aspect=h / w)


def refine_face_result(
    face_net: nn.Module, cfg: TreeBlockConfig, source_image: torch.Tensor, source_head_mask: torch.Tensor, tryon: torch.Tensor, target_head_mask: torch.Tensor
) -> dict[str, torch.Tensor]:
    """Face refinement: ``G_F`` (``face_net``, a 6 -> 3 channel :class:`TreeBlockGenerator`) maps
    the head crops of the reference ``I_ps^f`` and of the generated ``I~_pt^f`` to the refined
    face ``I~_{r,f}``, pasted back over the target head mask to give ``I~^r_pt``. Head masks (B, 1,
    H, W): face + hair of the source parsing and of the target (predicted, or in training the
    target parsing). Returns ``{"refined": I~^r_pt, "face": I~_{r,f}, "source_face": I_ps^f,
    "target_boxes": (B, 4)}``; crops are ``cfg.face_size``."""
    src_boxes, tgt_boxes = head_boxes(source_head_mask, cfg), head_boxes(target_head_mask, cfg)
    src_face = crop_and_resize(source_image, src_boxes, cfg.face_size)
    gen_face = crop_and_resize(tryon, tgt_boxes, cfg.face_size)
    face = to_unit(torch.tanh(face_net(to_signed(torch.cat([src_face, gen_face], dim=1)))))
    return {"refined": paste_crop(tryon, face, tgt_boxes, target_head_mask), "face": face, "source_face": src_face, "target_boxes": tgt_boxes}


def head_mask(parsing: torch.Tensor) -> torch.Tensor:
    """Face + hair mask (B, 1, H, W) of LIP ids (B, H, W)."""
    return label_mask(parsing, FACE + HAIR)


def largest_region(mask: torch.Tensor) -> torch.Tensor:
    """Each sample's largest 8-connected region of a binary mask (B, 1, H, W) -> same shape
    (an empty mask stays empty). At inference the target head mask comes from the predicted
    parsing, whose stray head pixels would otherwise stretch the face box over the body."""
    out = torch.zeros_like(mask)
    for i, m in enumerate(mask[:, 0].detach().cpu().numpy() > 0.5):
        labels, count = ndimage.label(m, structure=np.ones((3, 3)))
        if count:
            sizes = np.bincount(labels.ravel())[1:]
            out[i, 0] = torch.from_numpy(labels == 1 + int(sizes.argmax())).to(mask)
    return out


def make_discriminators(cfg: TreeBlockConfig = TreeBlockConfig()) -> nn.ModuleDict:
    """Multi-scale PatchGANs: ``d_parsing`` on ``(S, parsing inputs)`` (59 channels),
    ``d_appearance`` on the pair ``(I_ps, I)`` (6, Eq. 7), ``d_face`` on ``(I_ps^f, I^f)`` crops (6)."""

    def make(c: int) -> MultiScaleDiscriminator:
        return multiscale_patch_discriminator(c, ndf=cfg.d_channels, n_layers=cfg.d_layers, num_scales=cfg.d_scales)

    return nn.ModuleDict({"d_parsing": make(NUM_LIP + PARSING_IN), "d_appearance": make(6), "d_face": make(6)})


# -- losses ----------------------------------------------------------------------------------------
def make_perceptual(kind: PerceptualKind = "auto", weights_path: str | Path | None = None) -> PerceptualLoss:
    """The paper's feature loss: VGG-19 ``conv1_2`` with squared error (:func:`perceptual_loss`;
    ``kind`` and ``weights_path`` as there)."""
    return perceptual_loss(kind, layers=("conv1_2",), layer_weights=(1.0,), distance="mse", weights_path=weights_path)


def total_variation(mask: torch.Tensor) -> torch.Tensor:
    """``||grad M||_2`` of Eq. 5 as the mean squared forward difference along x plus along y."""
    return (mask[..., :, 1:] - mask[..., :, :-1]).pow(2).mean() + (mask[..., 1:, :] - mask[..., :-1, :]).pow(2).mean()


def attention_loss(mask: torch.Tensor, target_garment_mask: torch.Tensor, lambda_tv: float = 1.0) -> torch.Tensor:
    """Eq. 5: ``L_A^atten = ||M - M_c||_1 + lambda_TV ||grad M||_2`` (mean absolute difference +
    :func:`total_variation`). ``mask``, ``target_garment_mask``: (B, 1, H, W)."""
    return (mask - target_garment_mask).abs().mean() + lambda_tv * total_variation(mask)


def parsing_loss(
    logits: torch.Tensor, target_parsing: torch.Tensor, fake_outs: list[list[torch.Tensor]], cfg: TreeBlockConfig = TreeBlockConfig()
) -> dict[str, torch.Tensor]:
    """Parsing transformation: ``lambda_ce CE(S~_pt, S_pt) + lambda_parsing_adv L_adv``
    (``fake_outs``: ``d_parsing`` on (softmax(logits), parsing inputs)). Returns ``{"total", "ce", "adv"}``."""
    ce = F.cross_entropy(logits, target_parsing.long())
    adv = adversarial_g_loss(fake_outs, "lsgan")
    return {"total": cfg.lambda_ce * ce + cfg.lambda_parsing_adv * adv, "ce": ce, "adv": adv}


def appearance_loss(
    tryon: torch.Tensor,
    mask: torch.Tensor,
    target_image: torch.Tensor,
    target_garment_region: torch.Tensor,
    fake_outs: list[list[torch.Tensor]],
    perceptual: PerceptualLoss,
    cfg: TreeBlockConfig = TreeBlockConfig(),
) -> dict[str, torch.Tensor]:
    """Eq. 8: ``lambda_adv L_adv (Eq. 7) + lambda_pixel smoothL1 (Eq. 6) + lambda_feat L_feat +
    lambda_atten L_atten (Eq. 5)``. ``fake_outs``: ``d_appearance`` on ``(I_ps, I~_pt)``.
    Returns ``{"total", "adv", "pixel", "attention", "perceptual_<name>"}``."""
    adv = adversarial_g_loss(fake_outs, "lsgan")
    pixel = F.smooth_l1_loss(tryon, target_image)
    feat = perceptual(tryon, target_image)
    atten = attention_loss(mask, target_garment_region, cfg.lambda_tv)
    total = cfg.lambda_adv * adv + cfg.lambda_pixel * pixel + cfg.lambda_feat * feat + cfg.lambda_atten * atten
    return {"total": total, "adv": adv, "pixel": pixel, "attention": atten, f"perceptual_{perceptual.name}": feat}


def face_loss(
    face: torch.Tensor,
    target_face: torch.Tensor,
    refined: torch.Tensor,
    target_image: torch.Tensor,
    fake_outs: list[list[torch.Tensor]],
    perceptual: PerceptualLoss,
    cfg: TreeBlockConfig = TreeBlockConfig(),
) -> dict[str, torch.Tensor]:
    """Eq. 10: ``L_F^face + L_F^refine``. ``L_F^face`` = pixel (smooth L1), feature and
    adversarial losses of the refined face crop ``face`` against the ground-truth crop
    ``target_face`` (the target image cut at the same box), weighted as Eq. 8; ``L_F^refine``
    Eq. 9 = ``smoothL1(I~^r_pt, I_pt)``. ``fake_outs``: ``d_face`` on ``(I_ps^f, face)``.
    Returns ``{"total", "adv", "pixel", "refine", "perceptual_<name>"}``."""
    adv = adversarial_g_loss(fake_outs, "lsgan")
    pixel = F.smooth_l1_loss(face, target_face)
    feat = perceptual(face, target_face)
    refine = F.smooth_l1_loss(refined, target_image)
    total = cfg.lambda_adv * adv + cfg.lambda_pixel * pixel + cfg.lambda_feat * feat + refine
    return {"total": total, "adv": adv, "pixel": pixel, "refine": refine, f"perceptual_{perceptual.name}": feat}


#: Algorithm 1. Module names: ``parsing``, ``appearance``, ``face`` (:class:`TreeBlockVTON`
#: attributes), ``d_parsing``, ``d_appearance``, ``d_face`` (:func:`make_discriminators`),
#: ``warp`` (the clothing spatial alignment, a warp model, with its own loss ``warp``). Loss
#: names: ``parsing`` (:func:`parsing_loss`), ``appearance`` (:func:`appearance_loss`, Eq. 8),
#: ``face`` (:func:`face_loss`, Eq. 10), ``warp``. The joint phase optimises Eq. 8 through the
#: parsing net and the warp model ("jointly train all the modules with the overall objective as
#: Eq. 8"); Eq. 8 does not reach the face net, which runs frozen. No step counts are given.
SCHEDULE: tuple[Phase, ...] = (
    Phase("premiere", train=("parsing", "d_parsing", "warp"), frozen=(), losses=("parsing", "warp")),
    Phase("appearance", train=("appearance", "d_appearance"), frozen=("parsing", "warp"), losses=("appearance",)),
    Phase("face", train=("face", "d_face"), frozen=("parsing", "warp", "appearance"), losses=("face",)),
    Phase("joint", train=("parsing", "warp", "appearance", "d_appearance"), frozen=("face",), losses=("appearance",)),
)
