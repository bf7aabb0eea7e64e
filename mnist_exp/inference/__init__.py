"""Trained models back from their checkpoints, pictures of digits made into MNIST's form, and
trained models scored again on a test set as their runs scored them.

May import: `mnist_exp.rundir`, `mnist_exp.engine`, `mnist_exp.data`, `mnist_exp.models`,
`mnist_exp.monitor` (the confusion matrix and its picture), `mnist_exp.accel` (the device),
`mnist_exp.config` (what `trainer.device` allows), `mnist_exp.errors`.
"""
