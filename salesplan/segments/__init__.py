"""Customer segmentation: RFM (:mod:`.rfm`), clustering (:mod:`.cluster`) and lifetime value (:mod:`.clv`)."""
