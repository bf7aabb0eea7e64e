"""The command line around Hydra: spellings rewritten before Hydra parses them, the missing-plugin
message, and the Hydra callbacks that refuse a bad run before it starts, name a sweep's job
directories and summarise the sweep.

Entry layer: may import every other subpackage.
"""
