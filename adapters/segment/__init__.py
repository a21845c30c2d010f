"""Segment (as a destination): ``X-Signature`` verification and the e-commerce spec v2 mapping.

``sign`` produces genuine ``X-Signature`` values for tests and tools.
"""

from adapters.segment.adapter import SegmentAdapter, sign

__all__ = ["SegmentAdapter", "sign"]
