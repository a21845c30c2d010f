"""Training speed: FULL and UPDATE training, end to end, beside a bare ``implicit`` ALS fit.

Run with ``python -m benchmarks.training`` (``--help`` for the sizes).
"""
