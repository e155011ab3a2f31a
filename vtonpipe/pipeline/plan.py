"""What a stage run has to do, decided from what is already stored: a pure function, no I/O.

Rows are keyed by ``(input_sha256, annotator, backend, version, params_hash)``. Given each item's
input hash now, the rows and failures already in the stage directory and the run's key,
:func:`plan_stage` says which items to compute (one per distinct input: duplicates copy its
result), which to copy from a stored row of the same input, which are done, which failed before,
and which stored shards and rows to drop (another configuration, or an image changed in place).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

#: the columns of a row's key besides the item id
KEY_COLUMNS = ("input_sha256", "annotator", "backend", "version", "params_hash")


@dataclass(frozen=True)
class StageKey:
    """The configuration part of a row's key."""

    annotator: str
    backend: str
    version: str
    params_hash: str

    def as_dict(self) -> dict[str, str]:
        return {"annotator": self.annotator, "backend": self.backend, "version": self.version, "params_hash": self.params_hash}


@dataclass(frozen=True)
class StoredRow:
    """A row already in the stage directory: its item, key, and place (shard file, row)."""

    item_id: str
    input_sha256: str
    key: StageKey
    file: str
    row: int


@dataclass
class StagePlan:
    """``compute``: input sha256 -> item ids with that input and no result yet (the first is
    computed, the others copy it); ``copy``: item id -> (file, row) of a stored row with the same
    input; ``done``: items whose row is stored; ``failed_before``: item id -> reason recorded by an
    earlier run (skipped); ``failures``: the failure rows to keep; ``drop_files``: shards of another
    configuration (or all, on recompute); ``drop_rows``: file -> rows whose item now has another input."""

    compute: dict[str, list[str]] = field(default_factory=dict)
    copy: dict[str, tuple[str, int]] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    failed_before: dict[str, str] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    drop_files: set[str] = field(default_factory=set)
    drop_rows: dict[str, list[int]] = field(default_factory=dict)

    @property
    def representatives(self) -> list[str]:
        """The items to compute, one per distinct input."""
        return [group[0] for group in self.compute.values()]


def plan_stage(
    inputs: Mapping[str, str],
    stored: Iterable[StoredRow],
    failures: Iterable[Mapping[str, Any]],
    key: StageKey,
    *,
    recompute: bool = False,
    retry_failed: bool = False,
) -> StagePlan:
    """The plan for items ``inputs`` (item id -> input sha256, in processing order).

    ``stored``: every row in the stage directory; ``failures``: the recorded failure rows of this
    configuration (``item_id``, ``input_sha256``, ``error``, ...). ``recompute`` drops every stored
    row; ``retry_failed`` (and ``recompute``) forgets the recorded failures. Rows of items no
    longer in the dataset are kept.
    """
    plan = StagePlan()
    done: set[tuple[str, str]] = set()
    stored_inputs: dict[str, tuple[str, int]] = {}
    drop_rows: dict[str, list[int]] = defaultdict(list)
    for s in stored:
        if recompute or s.key != key:
            plan.drop_files.add(s.file)
            continue
        stored_inputs[s.input_sha256] = (s.file, s.row)
        if s.item_id in inputs and inputs[s.item_id] != s.input_sha256:
            drop_rows[s.file].append(s.row)
        else:
            done.add((s.item_id, s.input_sha256))
    # a shard of another configuration is dropped whole: none of its rows is kept
    plan.drop_rows = {f: rows for f, rows in drop_rows.items() if f not in plan.drop_files}
    stored_inputs = {i: place for i, place in stored_inputs.items() if place[0] not in plan.drop_files}

    plan.failures = [] if (retry_failed or recompute) else [dict(f) for f in failures]
    known_failed = {(f["item_id"], f["input_sha256"]): f["error"] for f in plan.failures}
    compute: dict[str, list[str]] = defaultdict(list)
    for item_id, sha in inputs.items():
        if (item_id, sha) in done:
            plan.done.append(item_id)
        elif (item_id, sha) in known_failed:
            plan.failed_before[item_id] = known_failed[(item_id, sha)]
        elif sha in stored_inputs:
            plan.copy[item_id] = stored_inputs[sha]
        else:
            compute[sha].append(item_id)
    plan.compute = dict(compute)
    return plan
