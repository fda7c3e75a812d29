"""Customer segmentation: RFM (:mod:`.rfm`), clustering (:mod:`.cluster`) and lifetime value (:mod:`.clv`).

Every customer-level function here leaves out order lines without a customer
(guest checkouts) with one counted warning; revenue analyses elsewhere count them.
"""
