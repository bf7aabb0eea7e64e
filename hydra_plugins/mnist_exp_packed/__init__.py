"""mnist-exp's packed launcher (`hydra/launcher=packed`), where Hydra looks for launchers: the
`hydra_plugins` namespace package."""
