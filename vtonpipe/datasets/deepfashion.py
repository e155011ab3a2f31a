"""DeepFashion In-shop Clothes Retrieval.

Layout::

    img/WOMEN/Dresses/id_00000002/02_1_front.jpg     person images (views front/side/back/full/additional)
    img/.../id_00000002/02_6_flat.jpg                in-shop garment (the "flat" view, where present)
    Eval/list_eval_partition.txt                     count line, header, then "image_name item_id train|query|gallery"

Pose pairs are every ordered pair of two person images of the same item and outfit group (the
leading ``NN_`` of the file name); the garment is that group's flat image, else null. Query and
gallery items form the test split.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path, PurePosixPath

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

PARTITION = "Eval/list_eval_partition.txt"
STATUS_SPLIT = {"train": "train", "query": "test", "gallery": "test"}
_GROUP = re.compile(r"^(\d+)_")


class DeepFashionAdapter(DatasetAdapter):
    name = "deepfashion"
    doc = "DeepFashion In-shop: img/... and Eval/list_eval_partition.txt; pose pairs within an item"

    def scan(self, root: Path) -> Scan:
        partition = root / PARTITION
        if not partition.is_file():
            raise DatasetLayoutError(f"{root}: no {PARTITION} (is this a DeepFashion In-shop root?)")
        scan = Scan()
        images = ImageRegistry(root, scan)
        groups: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {"person": [], "garment": []})
        group_split: dict[tuple[str, str], str] = {}
        listed: set[str] = set()
        for n, fields in read_list(partition):
            where = f"{PARTITION}:{n}"
            if len(fields) == 1 and fields[0].isdigit():
                continue  # count line
            if fields[0] == "image_name":
                continue  # header
            if len(fields) != 3 or fields[2] not in STATUS_SPLIT:
                scan.problems.append(Problem("bad_line", where, f"expected 'image_name item_id train|query|gallery', got {' '.join(fields)!r}"))
                continue
            name, item, status = fields
            if name in listed:
                scan.problems.append(Problem("duplicate_name", where, f"{name} listed twice", fatal=False))
                continue
            listed.add(name)
            split = STATUS_SPLIT[status]
            stem = PurePosixPath(name).stem
            kind = "garment" if stem.endswith("_flat") else "person"
            path = images.add(name, kind, split, where)
            if path is None:
                continue
            m = _GROUP.match(PurePosixPath(path).name)
            key = (item, m.group(1) if m else "")
            groups[key][kind].append(path)
            group_split.setdefault(key, split)
        seen: set[tuple] = set()
        for key in sorted(groups):
            people = sorted(groups[key]["person"])
            garment = sorted(groups[key]["garment"])[0] if groups[key]["garment"] else None
            for a in people:
                for b in people:
                    if a != b:
                        scan.pair_lines += 1
                        add_pair(scan, seen, PairEntry(a, b, garment, group_split[key], True if garment else None), f"item {key[0]}")
        images.finish()
        return scan


register_adapter(DeepFashionAdapter)
