"""tlcore's benchmarks: each figure beside its baseline, measured in the same run.

Run `python -m tlcore bench [--quick]` from the repository root; see `bench/suite.py`.
"""
