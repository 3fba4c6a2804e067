"""Benchmarks of the book, its widgets and nqm_lib (`make bench`)."""
