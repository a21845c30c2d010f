"""Webhook ingest throughput through the real server, and a crash in the middle of a burst.

Run with ``python -m benchmarks.ingest`` (``--help`` for the sizes).
"""
