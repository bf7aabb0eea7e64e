"""mnist-exp: a Hydra-configured experiment runner for small CNNs on MNIST.

The package is laid out by concern, and imports point one way, from the entry points down:

    train, predict, summarize, cli/        entry points and the Hydra callbacks
    engine/  monitor/  rundir/  report/  inference/
    accel/                                  device, precision, CUDA graphs
    config/  data/                          schemas and checks; datasets as tensors
    errors, models, fs/                     what every layer may use

`mnist_exp.models.ConvNet` is named by every saved config and checkpoint, so it stays where it is.
A test (`tests/test_layout.py`) holds each subpackage to the imports its docstring allows.
"""
