"""Reading a packed split: :class:`PackedPairDataset` (map-style, random access by index),
:class:`PackedPairStream` (iterable: shard-level shuffling, split by distributed rank and by
DataLoader worker, resumable at a batch position) and :func:`make_loader` (the DataLoader of a
stream's batches). Samples come from :class:`~vtonpipe.training.data.PackedPairs`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from .data import PackedPairs


class PackedPairDataset(Dataset):
    """Map-style view of a packed split: ``dataset[i]`` is pair ``i`` (shard order) as a sample dict."""

    def __init__(self, pairs: PackedPairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.pairs.sample(index)


class PackedPairStream(IterableDataset):
    """Iterable view of a packed split for training and evaluation: every sample once per epoch,
    split between distributed ranks and DataLoader workers without overlap or loss, yielded in
    batches (:meth:`PackedPairs.batch` of each block; :func:`make_loader` adds no batching).

    The order of an epoch ``e`` is a pure function of ``(seed, e)``: the shards in a seeded random
    order, then the samples shuffled within consecutive windows of ``config.shuffle_window``
    (``shuffle=False``: shard order as stored). The epochs are chained into one global sequence,
    cut from global position ``start`` into blocks of ``batch_size``: block ``k`` goes to rank
    ``k mod world_size``, and a rank's ``j``-th block to DataLoader worker ``j mod num_workers``
    (the order in which a DataLoader collects its workers' batches). So:

    - one DataLoader batch is one block, the same whatever the number of workers;
    - the ranks' ``n``-th batches together are the ``n``-th batch of one process with
      ``world_size`` times the batch size (the equivalence data-parallel training relies on);
    - after every rank consumed ``n`` batches the stream is at global position
      ``start + n * batch_size * world_size`` (:meth:`position_after`): a stream started there
      yields the same next batches, for any batch size or number of ranks.

    ``epochs=None`` streams forever (training; no batch is ever short). ``epochs=1`` is one pass
    (evaluation): the last block may be short, and ranks may get one block more than others.
    """

    def __init__(
        self,
        pairs: PackedPairs,
        batch_size: int,
        *,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start: int = 0,
        shuffle: bool = True,
        epochs: int | None = None,
    ):
        if batch_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad batch_size {batch_size} / rank {rank} of {world_size}")
        if len(pairs) == 0:
            raise ValueError(f"{pairs.directory} holds no pairs")
        self.pairs = pairs
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start = start
        self.shuffle = shuffle
        self.epochs = epochs
        self._orders: dict[int, np.ndarray] = {}

    @property
    def end(self) -> int | None:
        """Global position where the stream stops (None: never)."""
        return None if self.epochs is None else self.epochs * len(self.pairs)

    def position_after(self, batches: int) -> int:
        """Global position once every rank has consumed ``batches`` batches of this stream."""
        return self.start + batches * self.batch_size * self.world_size

    def epoch_order(self, epoch: int) -> np.ndarray:
        """int64 (N,) sample indices of epoch ``epoch`` in stream order."""
        n = len(self.pairs)
        if not self.shuffle:
            return np.arange(n, dtype=np.int64)
        order = self._orders.get(epoch)
        if order is None:
            rng = np.random.default_rng([self.seed, epoch])
            offsets, rows = self.pairs.offsets, self.pairs.shard_rows
            shards = rng.permutation(len(rows))
            by_shard = np.concatenate([np.arange(offsets[s], offsets[s] + rows[s]) for s in shards])
            window = np.arange(n) // max(1, self.pairs.config.shuffle_window)
            order = by_shard[np.lexsort((rng.random(n), window))].astype(np.int64)
            self._orders = {epoch: order, **{e: o for e, o in self._orders.items() if e == epoch - 1}}
        return order

    def indices(self, positions: np.ndarray) -> np.ndarray:
        """Sample indices at global stream ``positions``."""
        n = len(self.pairs)
        epochs, offsets = np.divmod(positions, n)
        out = np.empty_like(positions)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = self.epoch_order(int(e))[offsets[sel]]
        return out

    def blocks(self, worker: int = 0, num_workers: int = 1) -> Iterator[np.ndarray]:
        """The sample index blocks worker ``worker`` of ``num_workers`` yields, in order."""
        j = worker
        while True:
            k = self.rank + self.world_size * j
            first = self.start + k * self.batch_size
            last = first + self.batch_size
            if self.end is not None:
                last = min(last, self.end)
                if first >= last:
                    return
            yield self.indices(np.arange(first, last, dtype=np.int64))
            j += num_workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for block in self.blocks(worker, num_workers):
            yield self.pairs.batch(block)


def make_loader(stream: PackedPairStream, *, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A DataLoader of ``stream``'s batches (one per block, decoded as one by :meth:`PackedPairs.batch`).
    It draws no number from torch's global generator, so creating it does not shift a resumed
    run's random state."""
    return DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(stream.seed),
        prefetch_factor=2 if workers else None,
    )
