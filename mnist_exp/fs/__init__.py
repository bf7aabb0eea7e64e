"""File-system primitives every layer may use: writes that land whole or not at all, and the
advisory lock that keeps two processes out of one directory.

May import: `mnist_exp.errors`. Nothing else of ours.
"""
