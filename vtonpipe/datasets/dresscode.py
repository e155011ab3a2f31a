"""Dress Code.

Layout::

    {dresses,lower_body,upper_body}/images/048392_0.jpg    person
    {dresses,lower_body,upper_body}/images/048392_1.jpg    in-shop garment
    {category}/train_pairs.txt, test_pairs_paired.txt, test_pairs_unpaired.txt   "person cloth"

When the category folders have no lists, the root lists are read instead; their lines carry a
third column, the category index (0 upper_body, 1 lower_body, 2 dresses).
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
)

CATEGORIES = ("dresses", "lower_body", "upper_body")
CATEGORY_INDEX = {"0": "upper_body", "1": "lower_body", "2": "dresses"}
LISTS = {"train_pairs.txt": ("train", None), "test_pairs_paired.txt": ("test", True), "test_pairs_unpaired.txt": ("test", False)}


class DressCodeAdapter(DatasetAdapter):
    name = "dresscode"
    doc = "Dress Code: {dresses,lower_body,upper_body}/images/{id}_0.jpg + {id}_1.jpg and pair lists"

    def scan(self, root: Path) -> Scan:
        categories = [c for c in CATEGORIES if (root / c / "images").is_dir()]
        if not categories:
            raise DatasetLayoutError(f"{root}: none of {CATEGORIES} has an images/ folder (is this a Dress Code root?)")
        scan = Scan()
        images = ImageRegistry(root, scan)
        seen: set[tuple] = set()
        per_category = any((root / c / name).is_file() for c in categories for name in LISTS)
        sources = (
            [(root / c / name, c) for c in categories for name in LISTS]
            if per_category
            else [(root / name, None) for name in LISTS]
        )
        for lst, category in sources:
            if not lst.is_file():
                continue
            split, paired = LISTS[lst.name]
            for n, fields in read_list(lst):
                where = f"{lst.relative_to(root).as_posix()}:{n}"
                scan.pair_lines += 1
                cat = category
                if cat is None:
                    if len(fields) != 3 or fields[2] not in CATEGORY_INDEX:
                        scan.problems.append(Problem("bad_line", where, f"expected 'person cloth 0|1|2', got {' '.join(fields)!r}"))
                        continue
                    cat = CATEGORY_INDEX[fields[2]]
                elif len(fields) != 2:
                    scan.problems.append(Problem("bad_line", where, f"expected 'person cloth', got {' '.join(fields)!r}"))
                    continue
                person = images.add(f"{cat}/images/{fields[0]}", "person", split, where, cat)
                cloth = images.add(f"{cat}/images/{fields[1]}", "garment", split, where, cat)
                if person and cloth:
                    own = paired if paired is not None else fields[0].split("_")[0] == fields[1].split("_")[0]
                    add_pair(scan, seen, PairEntry(person, None, cloth, split, own), where)
        if scan.pair_lines == 0:
            raise DatasetLayoutError(f"{root}: no pair lists ({', '.join(LISTS)}) found")
        images.finish()
        return scan


register_adapter(DressCodeAdapter)
