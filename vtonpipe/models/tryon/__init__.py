"""Try-on generators of the four reference papers and their shared parts (pure PyTorch).

- :mod:`.gcl`: 3D-GCL's SPADE generator (Sec. 3.3 / 3.4, Eq. 8).
- :mod:`.lasnl`: SAL-VTON's LASNL generator (Sec. 3.3, Eq. 10-12).
- :mod:`.spg`: SPG-VTON's G1 / G2 / G3, discriminators, losses and phase schedule.
- :mod:`.treeblock`: Down to the Last Detail's Tree-Block networks, losses and schedule.
- Shared: :mod:`.common` (blocks, SPADE, composition, crops, :class:`~.common.Phase`),
  :mod:`.discriminators` (multi-scale PatchGAN, global + local, GAN / feature-matching / R1
  losses), :mod:`.perceptual` (VGG-19 on user-supplied weights, explicit stand-in),
  :mod:`.agnostic` (garment-agnostic inputs from LIP parsings).

Networks take explicit tensors (images (B, 3, H, W) in [0, 1]) and return tensors; losses are
functions returning dicts with a ``"total"`` entry; the trainer's task per model wires the batch.
"""
