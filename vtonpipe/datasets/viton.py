"""VITON and VITON-HD.

Layout::

    {train,test}/image/00000_00.jpg     person images
    {train,test}/cloth/00000_00.jpg     in-shop garments
    {train,test}_pairs.txt              "person cloth" per line (at the root or in the split folder)

A pair is ``paired`` when the garment is the person's own (same id before the trailing ``_NN``),
as in the train lists; VITON-HD's test list is unpaired.
"""

from __future__ import annotations

import re
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

_SUFFIX = re.compile(r"_\d+$")


def _garment_is_own(person: str, cloth: str) -> bool:
    def base(name: str) -> str:
        return _SUFFIX.sub("", Path(name).stem)

    return base(person) == base(cloth)


class VitonAdapter(DatasetAdapter):
    name = "viton"
    doc = "VITON / VITON-HD: {train,test}/{image,cloth} and {train,test}_pairs.txt"

    def scan(self, root: Path) -> Scan:
        scan = Scan()
        images = ImageRegistry(root, scan)
        seen: set[tuple] = set()
        found = False
        for split in ("train", "test"):
            candidates = [root / f"{split}_pairs.txt", root / split / f"{split}_pairs.txt"]
            lst = next((c for c in candidates if c.is_file()), None)
            if lst is None:
                continue
            found = True
            scan.problems += same_stem_duplicates(root, f"{split}/image") + same_stem_duplicates(root, f"{split}/cloth")
            for n, fields in read_list(lst):
                where = f"{lst.relative_to(root).as_posix()}:{n}"
                scan.pair_lines += 1
                if len(fields) < 2 or len(fields) > 3:
                    scan.problems.append(Problem("bad_line", where, f"expected 'person cloth', got {' '.join(fields)!r}"))
                    continue
                person = images.add(f"{split}/image/{fields[0]}", "person", split, where)
                cloth = images.add(f"{split}/cloth/{fields[1]}", "garment", split, where)
                if person and cloth:
                    add_pair(scan, seen, PairEntry(person, None, cloth, split, _garment_is_own(fields[0], fields[1])), where)
        if not found:
            raise DatasetLayoutError(f"{root}: no train_pairs.txt or test_pairs.txt (is this a VITON/VITON-HD root?)")
        images.finish()
        return scan


register_adapter(VitonAdapter, "vitonhd")
