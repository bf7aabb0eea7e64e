"""Packed seed sweeps: a sweep's jobs that differ only in their seed trained as one network
(`hydra/launcher=packed`, whose class lives in `hydra_plugins.mnist_exp_packed`), each still a
run of its own.

May import: errors, models, accel, config, data, engine, rundir, monitor, report, and the one-run entry
(`train`, `cli`), since a group's jobs are set up as `train` sets up one, and a job that cannot
pack runs through it.
"""
