"""The benchmark as a script: the same as ``deconflict bench`` (``python benchmarks/bench.py --help``)."""

from typer import run

from deconfliction.cli import bench

if __name__ == "__main__":
    run(bench)
