"""Benchmarks and data generators; run as ``python -m bench.<module>``, never imported by Pli."""
