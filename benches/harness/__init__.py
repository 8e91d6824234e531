"""The Python parts of benches/run (see bench.py, its command line)."""
