"""``vtonpipe train warp --model gcl``: 3D-GCL's correspondence network (vtonpipe.models.warp.gcl).

The garment the *source* person wears (``source_image x source_garment_region``) is warped onto the
*target* person from the two DensePose IUV maps; the losses (Eq. 7) compare the garment warped at
every level with the target's garment region and, unless ``use_3d_losses`` is off, supervise the
global correspondence (``L_o``, Eq. 4-5) and the refined flows (``L_f``, Eq. 6) with the SMPL flow
and its visibility.

Settings (params.yaml ``train.warp.gcl``): the network's (:class:`~vtonpipe.models.warp.gcl.GCLConfig`:
``channels``, ``feature_channels``, ``hidden_channels``, ``gru_iterations``, ``temperature``,
``global_correspondence``), the losses' (:class:`~vtonpipe.models.warp.gcl.GCLLossConfig`:
``weight_3d``, ``weight_l1``, ``weight_perceptual``, ``use_3d_losses``), ``lr`` (Adam) and the
perceptual loss (``perceptual``: auto / vgg19 / off, ``vgg_weights``: the VGG-19 file, default
``<weights_dir>/vgg/vgg19-dcbb9e9d.pth``). The paper's ablations: ``global_correspondence=false``
(no Eq. 1) and ``use_3d_losses=false`` (no ``L_r``; the SMPL flow is then not read at all).
Height and width must be multiples of 8.
"""

from __future__ import annotations

from ...models.warp.gcl import GCLConfig, GCLLossConfig, GCLWarp, gcl_losses
from ..task import register_task
from ..warp import PerceptualChoice, WarpTask, config_part, masked, target_garment, task_config


@register_task
class GCLWarpTask(WarpTask):
    kind, model = "warp", "gcl"
    mask_key = "source_garment_region"
    Config = task_config("GCLWarpTask", __name__, GCLConfig, GCLLossConfig, lr=(float, 1e-4), perceptual=(PerceptualChoice, "auto"), vgg_weights=(str, ""))

    def needs(self):
        keys = {
            "source_image",
            "source_garment_region",
            "source_iuv_i",
            "source_iuv_uv",
            "target_image",
            "target_garment_region",
            "target_iuv_i",
            "target_iuv_uv",
        }
        return keys | ({"smpl_flow", "visibility"} if self.config.use_3d_losses else set())

    def build(self):
        return {"net": GCLWarp(config_part(self.config, GCLConfig))}

    def forward(self, net, batch):
        garment = masked(batch["source_image"], batch["source_garment_region"])
        return garment, net(batch["source_iuv_i"], batch["source_iuv_uv"], garment, batch["target_iuv_i"], batch["target_iuv_uv"])

    def training_step(self, modules, batch, control):
        garment, output = self.forward(modules["net"], batch)
        losses = gcl_losses(
            output, garment, target_garment(batch), batch.get("smpl_flow"), batch.get("visibility"),
            config_part(self.config, GCLLossConfig), self.perceptual_on(garment.device),
        )  # fmt: skip
        return self.optimise(losses, control)
