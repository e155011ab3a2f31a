"""`vtonpipe bench accuracy`'s printed tables (rich), kept apart from the scoring."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table

from .accuracy import StageScore


def scores_table(scores: Sequence[StageScore], title: str) -> Table:
    """One row per metric of each stage: annotator, backend, items, missing, metric, value."""
    table = Table(title=title)
    for col in ("annotator", "backend", "items", "missing", "metric", "value"):
        table.add_column(col)
    for s in scores:
        for i, (metric, value) in enumerate(s.metrics.items()):
            head = (s.annotator, s.backend, str(s.items), str(s.missing)) if i == 0 else ("", "", "", "")
            table.add_row(*head, metric, f"{value:.4f}")
    return table


def cases_table(scores: Sequence[StageScore]) -> Table | None:
    """Each stage's item count and metrics overall and per case (a column per case, "-" where a
    stage has no item of it); None when no stage has a case."""
    cases = list(dict.fromkeys(case for s in scores for case in s.cases))
    if not cases:
        return None
    table = Table(title="per case: person photos of each view, pose, outfit, backdrop or light; pairs by their target photo")
    for col in ("annotator", "metric", "all", *cases):
        table.add_column(col)
    for s in scores:
        for i, metric in enumerate(["items", *s.metrics]):
            overall = s.items if metric == "items" else s.metrics[metric]
            cells = [overall, *(s.cases[c][metric] if c in s.cases else None for c in cases)]
            text = ["-" if c is None else f"{c:.0f}" if metric == "items" else f"{c:.4f}" for c in cells]
            table.add_row(s.annotator if i == 0 else "", metric, *text)
    return table
