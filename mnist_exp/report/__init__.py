"""Runs compared from what they left on disk: `mnist-exp-report`'s table and plots, and the sweep
summary (`python -m mnist_exp.summarize`, and the table a sweep prints when it ends).

Both views read runs through `runs`, group and average them through `stats`, and lay their tables
out through `tables`, so a number means the same wherever it is shown.

May import: `mnist_exp.rundir`, `mnist_exp.fs`, `mnist_exp.config`, `mnist_exp.errors`.
"""
