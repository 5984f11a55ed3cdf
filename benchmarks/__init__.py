"""mspflow's benchmark suite (issue 7); run it with ``make bench`` or ``python -m benchmarks``.

Not part of the unit suite: it measures, it does not assert. Each figure is
printed with a baseline measured in the same run, the ratio between them, the
target and PASS or MISS.
"""
