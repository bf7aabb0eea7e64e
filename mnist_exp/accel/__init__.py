"""Where and how fast a run computes: device choice, mixed precision, memory layout and
compilation, and the whole training step replayed as a CUDA graph.

May import: `mnist_exp.errors`. Nothing else of ours.
"""
