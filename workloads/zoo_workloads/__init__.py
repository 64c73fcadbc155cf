"""zoo-workloads: MindSpore ModelZoo models and their train/eval/export entry points.

Importing this package must not import MindSpore: the operator reads model defaults from it.
"""
