"""Benchmarks (``bench_*.py``, results in ``results/``) and the independent cities of ``worlds/``."""
