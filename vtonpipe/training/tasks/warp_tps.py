"""``vtonpipe train warp --model tps``: SPG-VTON's clothes warping module (vtonpipe.models.warp.tps).

The in-shop garment ``C = garment_image x garment_mask`` is warped by a thin-plate spline that GMM 1
estimates from its mask ``M^C`` and the target's garment region (the paper's semantic prediction
module is not trained here, so the region stands in for its predicted clothes mask: the paper's
"w/o M_p^c" variant); GMM 2 warps the result back, and the conductible cycle-consistency loss
(Eq. 8-9, ``lambda_3 = 20``) compares ``C_w`` with the target garment and ``C_hat`` with ``C``.

The geometric matching networks have a fixed input size, ``match_height x match_width`` (the
correlation has one channel per feature cell; multiples of 16 with the default four stages).
Batches of another resolution are resized to it for the networks and the losses; the TPS flow is
resized back (:func:`vtonpipe.models.warp.ops.resize_flow`) for evaluation, visuals and inference,
which are at the batch resolution.

Settings (params.yaml ``train.warp.tps``): the network's (:class:`~vtonpipe.models.warp.tps.TPSConfig`
without its size: ``channels``, ``regression_channels``, ``grid_size``), ``match_height``,
``match_width``, the loss's (:class:`~vtonpipe.models.warp.tps.TPSLossConfig`: ``weight_cond``,
``cycle``; ``cycle=false`` is the paper's "w/o Cycle") and ``lr`` (Adam). SPG-VTON's warping
losses are L1 only: no perceptual term, no VGG-19 file.
"""

from __future__ import annotations

from ...models.warp.ops import WarpOutput, resize_flow, warp_by_flow
from ...models.warp.tps import TPSConfig, TPSLossConfig, TPSWarp, tps_losses
from ..task import register_task
from ..transforms import resize_image
from ..warp import Warp, WarpTask, config_part, masked, target_garment, task_config


@register_task
class TPSWarpTask(WarpTask):
    kind, model = "warp", "tps"
    mask_key = "garment_mask"
    Config = task_config(
        "TPSWarpTask", __name__, TPSConfig, TPSLossConfig, exclude=("height", "width"),
        match_height=(int, TPSConfig.height), match_width=(int, TPSConfig.width), lr=(float, 1e-4),
    )  # fmt: skip

    def needs(self):
        return {"garment_image", "garment_mask", "target_image", "target_garment_region"}

    def build(self):
        return {"net": TPSWarp(config_part(self.config, TPSConfig, height=self.config.match_height, width=self.config.match_width))}

    def forward(self, net, batch):
        """(garment, output) at the matching networks' size (:meth:`warp` brings them to the batch's)."""
        size = (self.config.match_height, self.config.match_width)
        garment = resize_image(masked(batch["garment_image"], batch["garment_mask"]), size)
        return garment, net(garment, resize_image(batch["garment_mask"], size), resize_image(batch["target_garment_region"], size))

    def warp(self, modules, batch):
        _, output = self.forward(modules["net"], batch)
        garment = masked(batch["garment_image"], batch["garment_mask"])
        flow = resize_flow(output.flow, tuple(garment.shape[-2:]))
        warped = warp_by_flow(garment, flow)
        return Warp(garment, WarpOutput(flow=flow, level_flows=[flow], warped=warped), warped, warp_by_flow(batch[self.mask_key], flow))

    def training_step(self, modules, batch, control):
        garment, output = self.forward(modules["net"], batch)
        truth = resize_image(target_garment(batch), garment.shape[-2:])
        losses = tps_losses(output, garment, truth, config_part(self.config, TPSLossConfig))
        return self.optimise(losses, control)
