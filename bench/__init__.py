"""Benchmarks: each module's ``run()`` measures figures; ``python -m bench`` writes RESULTS.md."""
