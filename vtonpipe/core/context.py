"""What a backend may read besides its own items: the :class:`Context` protocol.

:class:`vtonpipe.pipeline.context.AnnotationContext` implements it over a build directory; tests
and other callers may pass anything with these members.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np


class Context(Protocol):
    """Read access to a build for backends."""

    #: the dataset's root folder (images are read relative to it)
    dataset_root: Path
    #: image_id -> its row of the images table (path, sha256, width, height, kind, split, category)
    images: Mapping[str, Mapping[str, Any]]

    def image_sha256(self, image_id: str) -> str: ...

    def pair(self, pair_id: str) -> Mapping[str, Any]:
        """The pairs-table row of ``pair_id``."""
        ...

    def load_image(self, image_id: str) -> np.ndarray:
        """RGB uint8 (H, W, 3); AnnotationFailure('decode_error') if unreadable."""
        ...

    def garments_of(self, image_id: str) -> list[str]:
        """In-shop garment images the person wears, per the pairs table."""
        ...

    def annotation(self, annotator: str, item_id: str) -> Any:
        """The upstream annotation record (the annotator's ``record_type``) of ``item_id``;
        AnnotationFailure('missing_upstream') if the stage has no row for it."""
        ...

    def annotation_key(self, annotator: str, item_id: str) -> str | None:
        """``input_sha256:backend:version:params_hash`` of the upstream row, None if there is none:
        what a result computed from that row depends on."""
        ...
