"""The run config: typed schemas for every group, and the checks types cannot express.

May import: `mnist_exp.errors`, `mnist_exp.data` (the dataset names). Nothing else of ours.
"""
