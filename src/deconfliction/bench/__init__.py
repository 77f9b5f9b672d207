"""The benchmark: ``deconflict bench`` (see benchmarks/README.md)."""
