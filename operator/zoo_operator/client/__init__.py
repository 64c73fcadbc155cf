"""The Python client of zoo-operator: submit, wait for, read and delete ZooTrainingJobs, sweep hyperparameters,
or run a job locally without a cluster.

    from zoo_operator.client import ZooClient
    zc = ZooClient(namespace="default")
    zc.create("try-1", model="glore_res50", device={"type": "CPU"}, dataset={...})
    print(zc.wait("try-1", timeout=900).get("result"))
"""

from zoo_operator.client.api import ClientError, ZooClient, build_job, validate
from zoo_operator.client.local import LocalRun, plan, run_local
from zoo_operator.client.sweep import StopRule, SweepError, grid, random_points
from zoo_operator.spec import InvalidSpec

__all__ = [
    "ClientError",
    "InvalidSpec",
    "LocalRun",
    "StopRule",
    "SweepError",
    "ZooClient",
    "build_job",
    "grid",
    "plan",
    "random_points",
    "run_local",
    "validate",
]
