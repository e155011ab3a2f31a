"""MPV (MG-VTON's Multi-Pose Virtual try-on dataset).

Layout::

    all/RE321D05M-Q11@8=person_half_front.jpg    person images
    all/RE321D05M-Q11@8=cloth_front.jpg          in-shop garments
    all_poseA_poseB_clothes*.txt                 "personA personB cloth train|test" per line

Paths in the list are relative to ``all/``. Each line is one pair: the person in pose A (source)
and pose B (target) wearing the garment (so ``paired`` is true).
"""

from __future__ import annotations

from pathlib import Path

from . import register_adapter
from .base import (
    DatasetAdapter,
    DatasetLayoutError,
    ImageRegistry,
    PairEntry,
    Problem,
    Scan,
    add_pair,
    read_list,
    same_stem_duplicates,
)

SPLITS = {"train", "test", "val"}


class MPVAdapter(DatasetAdapter):
    name = "mpv"
    doc = "MPV: all/ images and all_poseA_poseB_clothes*.txt triplets (also the layout of `vtonpipe sample`)"

    def scan(self, root: Path) -> Scan:
        lists = sorted(root.glob("all_poseA_poseB_clothes*.txt"))
        if not lists:
            raise DatasetLayoutError(f"{root}: no all_poseA_poseB_clothes*.txt pair list (is this an MPV root?)")
        scan = Scan(problems=same_stem_duplicates(root, "all"))
        images = ImageRegistry(root, scan)
        seen: set[tuple] = set()
        for lst in lists:
            for n, fields in read_list(lst):
                where = f"{lst.name}:{n}"
                scan.pair_lines += 1
                if len(fields) != 4 or fields[3].lower() not in SPLITS:
                    scan.problems.append(Problem("bad_line", where, f"expected 'personA personB cloth train|test', got {' '.join(fields)!r}"))
                    continue
                split = fields[3].lower()
                rel = [f if f.startswith(("all/", "/")) else f"all/{f}" for f in fields[:3]]
                a = images.add(rel[0], "person", split, where)
                b = images.add(rel[1], "person", split, where)
                g = images.add(rel[2], "garment", split, where)
                if a and b and g:
                    add_pair(scan, seen, PairEntry(a, b, g, split, True), where)
        images.finish()
        return scan


register_adapter(MPVAdapter)
