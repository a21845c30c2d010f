"""Batch inference throughput: Shelfwise's JSON-lines job against implicit's own batched recommend.

Run with ``python -m benchmarks.batch`` (``--help`` for the sizes).
"""
