"""A run directory: the names of its files, a sweep job's name for it, atomic writes, the
one-trainer lock, metrics.json, resuming, and the stop signals a run obeys.

May import: `mnist_exp.config`, `mnist_exp.fs`, `mnist_exp.errors`.
"""
