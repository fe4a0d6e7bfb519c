"""Benchmarks: omnisched measured beside the raw engines it stands on, in the same run.

`python -m bench` runs every benchmark (each in its own process) and prints one table;
`python -m bench.<name> --help` runs one. Traffic goes to 127.0.0.1 only.
"""
