"""Benchmark scripts, run from the checkout's root as modules so that its `tests` helpers (not a
same-named package some dependency installs) are the ones imported:
`.venv/bin/python -m benchmarks.bench_trainer ...`. Results and machines: BENCHMARKS.md."""
