"""Benchmarks: `bench/run` prints every figure (see bench/README.md)."""
