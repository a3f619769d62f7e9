"""Benchmarks of statewriter (scripts, not tests): `python -m bench.run --quick`."""
