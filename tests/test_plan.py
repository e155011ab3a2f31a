"""The stage plan (what to compute, copy, keep, drop) as a pure function on hand-made keys."""

from __future__ import annotations

from vtonpipe.pipeline.plan import StageKey, StoredRow, plan_stage

KEY = StageKey("garment_mask", "classical", "1", "p1")
OTHER = StageKey("garment_mask", "classical", "1", "p2")


def row(item: str, sha: str, file: str = "shard-00000.parquet", r: int = 0, key: StageKey = KEY) -> StoredRow:
    return StoredRow(item, sha, key, file, r)


def test_a_first_run_computes_one_item_per_distinct_input():
    plan = plan_stage({"a": "x", "b": "y", "c": "x"}, [], [], KEY)
    assert plan.compute == {"x": ["a", "c"], "y": ["b"]} and plan.representatives == ["a", "b"]
    assert (plan.copy, plan.done, plan.drop_files, plan.drop_rows) == ({}, [], set(), {})


def test_a_rerun_keeps_done_rows_and_copies_an_input_already_stored():
    stored = [row("a", "x", r=0), row("b", "y", r=1), row("gone", "z", r=2)]
    plan = plan_stage({"a": "x", "b": "y", "d": "x", "e": "w"}, stored, [], KEY)
    assert plan.done == ["a", "b"]
    assert plan.copy == {"d": ("shard-00000.parquet", 0)}  # a duplicate of a's image: copied, not computed
    assert plan.compute == {"w": ["e"]}
    assert not plan.drop_files and not plan.drop_rows  # the row of an item no longer listed stays


def test_an_image_changed_in_place_drops_its_old_row():
    stored = [row("a", "x", "s0", 0), row("b", "y", "s0", 1)]
    plan = plan_stage({"a": "x2", "b": "y"}, stored, [], KEY)
    assert plan.drop_rows == {"s0": [0]} and plan.compute == {"x2": ["a"]} and plan.done == ["b"]


def test_another_configuration_drops_whole_shards_and_recomputes():
    stored = [row("a", "x", "s0", 0, OTHER), row("b", "y", "s1", 0)]
    plan = plan_stage({"a": "x", "b": "y"}, stored, [], KEY)
    assert plan.drop_files == {"s0"} and plan.done == ["b"] and plan.compute == {"x": ["a"]}
    assert plan_stage({"a": "x", "b": "y"}, stored, [], KEY, recompute=True).drop_files == {"s0", "s1"}


def test_recorded_failures_are_skipped_unless_retried():
    failures = [{"item_id": "a", "input_sha256": "x", "error": "no_garment"}, {"item_id": "b", "input_sha256": "old", "error": "no_garment"}]
    plan = plan_stage({"a": "x", "b": "y"}, [], failures, KEY)
    assert plan.failed_before == {"a": "no_garment"} and plan.compute == {"y": ["b"]}  # b's image changed: retried
    assert len(plan.failures) == 2
    retried = plan_stage({"a": "x", "b": "y"}, [], failures, KEY, retry_failed=True)
    assert retried.failed_before == {} and retried.failures == [] and retried.representatives == ["a", "b"]


def test_a_row_is_never_copied_from_a_shard_being_dropped():
    stored = [row("a", "x", "s0", 0, OTHER)]
    plan = plan_stage({"b": "x"}, stored, [], KEY)
    assert plan.copy == {} and plan.compute == {"x": ["b"]}
