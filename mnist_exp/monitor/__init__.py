"""What a run shows and keeps while it trains: the console, TensorBoard, end-of-run diagnostics,
and the recorder that owns them all and closes them whatever ends the run.

May import: `mnist_exp.rundir`, `mnist_exp.fs`, `mnist_exp.models`, `mnist_exp.errors`.
"""
