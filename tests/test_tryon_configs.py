"""Every generator's default (CPU) config builds and runs end to end (channel counts agree) on a
small image; each default's size step is 16 (or 8), which divides 256 x 192."""

import pytest
import torch

from vtonpipe.models.tryon import gcl, lasnl, spg
from vtonpipe.models.tryon import treeblock as tb

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H, W = 32, 16


def e(c: int) -> torch.Tensor:
    return torch.rand(1, c, H, W)


@torch.no_grad()
def test_default_configs_run():
    torch.manual_seed(0)
    c = gcl.GCLConfig()
    assert 2**c.num_down == 16
    out = gcl.GCLGenerator(c).eval()(e(3), e(3))
    assert out.shape == (1, 3, H, W)
    assert gcl.make_discriminator(c)(gcl.discriminator_input(out, e(3), e(3)))[-1][-1].shape[1] == 1

    c = lasnl.LASNLConfig()
    assert 2**c.num_down == 16
    out = lasnl.LASNLGenerator(c)(e(3), e(9), e(32))
    assert out.shape == (1, 3, H, W)
    assert lasnl.make_discriminator(c)(lasnl.discriminator_input(out, e(3), e(9), e(32)))[-1][-1].shape[1] == 1

    c = spg.SPGConfig()
    model = spg.SPGVTON(c).eval()
    sem = model.semantic(e(spg.G1_IN))
    image, mask = model.coarse(sem.softmax(1), e(18), e(3), e(3))
    out = model.synthesize(image, e(3), e(18))
    assert sem.shape == (1, 20, H, W) and mask.shape == (1, 1, H, W) and out["tryon"].shape == (1, 3, H, W)

    c = tb.TreeBlockConfig()
    assert 2**c.parsing_depth == 16
    model = tb.TreeBlockVTON(c)
    assert model.transform_parsing(e(tb.PARSING_IN)).shape == (1, 20, H, W)
    assert model.appear(e(3), e(20), e(3))["tryon"].shape == (1, 3, H, W)
    assert model.face(torch.rand(1, 6, *c.face_size)).shape == (1, 3, *c.face_size)
