"""Classical computer vision: in-shop garment segmentation (:mod:`.garment_mask`) and the
geometric human parser (:mod:`.geometric_parsing`)."""
