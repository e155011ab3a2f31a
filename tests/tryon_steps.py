"""Test helper: a few Adam steps on a fixed batch, recording the loss before each step."""

from typing import Callable, Iterable

import torch


def adam_steps(params: Iterable[torch.nn.Parameter], loss_fn: Callable[[], torch.Tensor], steps: int, lr: float = 2e-3) -> list[float]:
    """``steps`` Adam updates of ``loss_fn()``; returns the ``steps + 1`` losses seen (the last
    one after the final update). ``loss_fn`` reseeds torch itself when it draws random numbers."""
    opt = torch.optim.Adam(list(params), lr=lr, betas=(0.5, 0.999))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn()
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(loss_fn().item())
    return losses
