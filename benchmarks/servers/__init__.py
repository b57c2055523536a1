"""Servers the benchmark suite starts: baselines, peers and rpi-async itself."""
