"""Trained models back from their checkpoints, and pictures of digits made into MNIST's form.

May import: `mnist_exp.rundir`, `mnist_exp.engine`, `mnist_exp.data`, `mnist_exp.models`,
`mnist_exp.errors`.
"""
