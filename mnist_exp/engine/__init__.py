"""Training itself: the epoch loop and evaluation, optimizer and schedule, the weight average,
test-time views, random streams, and the training state that holds them all.

May import: `mnist_exp.accel`, `mnist_exp.config`, `mnist_exp.data`, `mnist_exp.models`,
`mnist_exp.errors`.
"""
