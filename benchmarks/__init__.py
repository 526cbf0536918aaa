"""Benchmarks for pgevents-migrate; ``python -m benchmarks`` runs the write-overhead benchmark."""
