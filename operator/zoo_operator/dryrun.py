"""The dry run behind `zoo-operator render`: every object the operator would create for a job, as YAML.

It is the reconcile pass's own planner (planner.plan) run on an observation of the job with no pods, so the
dry run shows exactly what the first pass would create. Pure apart from reading the input texts. Raises
`RenderError` (one line) on bad input.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from zoo_operator import memory, planner, ranktable, render, results, schema, spec
from zoo_operator.settings import Settings
from zoo_workloads import contract

DRY_RUN_UID = "00000000-0000-0000-0000-000000000000"


class RenderError(ValueError):
    """Bad input to the dry run; the message is one line."""


def load_job(text: str) -> dict[str, Any]:
    """The single ZooTrainingJob in a YAML text."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise RenderError(f"job file is not valid YAML: {str(err).splitlines()[0]}") from None
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == schema.KIND]
    if len(jobs) != 1:
        raise RenderError(f"job file must hold exactly one {schema.KIND}, found {len(jobs)}")
    job = jobs[0]
    if job.get("apiVersion") != f"{schema.GROUP}/{schema.VERSION}":
        raise RenderError(
            f"apiVersion: must be {schema.GROUP}/{schema.VERSION}, got {job.get('apiVersion')!r}"
        )
    return job


def load_allocations(text: str, server: bool = False) -> list[ranktable.Device]:
    """Devices from an allocations file: a JSON list of device-plugin annotation objects (with `server`, issue 21,
    every device of each: a server pod's annotation lists its node's perNode NPUs)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise RenderError(f"allocations: not JSON: {err.msg} at line {err.lineno}") from None
    if not isinstance(data, list):
        raise RenderError("allocations: must be a JSON list of {pod_name, server_id, devices} objects")
    devices = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise RenderError(f"allocations[{i}]: must be an object {{pod_name, server_id, devices}}")
        try:
            if server:
                devices += ranktable.parse_server_annotation(json.dumps(item))
            else:
                devices.append(ranktable.parse_annotation(json.dumps(item)))
        except ValueError as err:
            raise RenderError(f"allocations[{i}]: {err}") from None
    return devices


def objects(job_text: str, settings: Settings, allocations_text: str | None = None) -> list[dict[str, Any]]:
    """Every object for the job in `job_text`, with the rank table filled from allocations or static devices."""
    body = load_job(job_text)
    meta = dict(body.get("metadata") or {})
    meta.setdefault("namespace", "default")
    meta.setdefault("uid", DRY_RUN_UID)
    try:
        job = spec.parse({**body, "metadata": meta}, settings)
    except spec.InvalidSpec as err:
        raise RenderError(f"invalid {schema.KIND}: {err}") from None
    if job.from_job:  # the named job is not at hand in a dry run: its default layout stands in for it
        body = {**body, "status": {"source": results.assumed_source(job).status()}}
    data = None
    if job.launch == "ranktable" and allocations_text is not None:
        if job.static_devices:
            raise RenderError("--allocations: the job already has spec.rankTable.staticDevices")
        server = job.pods_per == contract.PODS_PER_SERVER
        devices = load_allocations(allocations_text, server)
        names = {render.worker_name(job, i) for i in range(job.workers)}
        for dev in devices:
            if dev.pod_name not in names:
                raise RenderError(
                    f"allocations: pod {dev.pod_name!r} is not a worker of job {job.name} "
                    f"({render.worker_name(job, 0)} .. {render.worker_name(job, job.workers - 1)})"
                )
        key = (lambda d: (d.pod_name, d.device_id)) if server else (lambda d: d.pod_name)
        if len({key(d) for d in devices}) != len(devices):
            raise RenderError("allocations: a pod is listed twice")
        data = ranktable.config_map_data(devices, job.replicas, job.rank_table_version)
    elif allocations_text is not None:
        raise RenderError("--allocations: only for launch ranktable (spec.device.type Ascend910)")
    seen = memory.Observation(body={**body, "metadata": meta}, pods=(), now=0.0, pod_group_served=True)
    first = planner.plan(seen, memory.JobMemory(uid=job.uid), settings)
    table = first.config_map
    if data is not None:  # the devices the allocations file says the device plugin would give the pods
        table = render.launch_config_map(job, data)
    ensured = [table if table is not None and o["kind"] == "ConfigMap" else o for o in first.ensure]
    return ensured + first.create


class _Dumper(yaml.SafeDumper):
    """Writes multi-line strings (hccl.json) as literal blocks, so the rank table reads as JSON."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(objs: list[dict[str, Any]]) -> str:
    """Objects as a multi-document YAML stream."""
    return yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False, width=120)
