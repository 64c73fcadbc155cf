"""Command-line entry points: zoo-train, zoo-eval, zoo-export, zoo-data (zoo-launch lives in launch.py)."""
