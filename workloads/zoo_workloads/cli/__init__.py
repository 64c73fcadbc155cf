"""Command-line entry points of the workloads (declared in workloads/pyproject.toml)."""
