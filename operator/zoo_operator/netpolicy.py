"""The job's NetworkPolicy: a gang's ports reachable only from the gang's own pods. A plain dict, no API calls.

Without a policy every pod of the cluster can reach a gang's scheduler port and HCCL ports (and could inject a
rank into the training, or stall it). The policy selects the job's pods and admits ingress only from pods of
the same job in the same namespace (a `podSelector` peer without a `namespaceSelector` matches only the
policy's own namespace: https://kubernetes.io/docs/concepts/services-networking/network-policies/), on the
ports the launch uses:

- ranktable launch: HCCL's host-NIC ports. HCCL listens on 16 ports from HCCL_IF_BASE_PORT, 60000-60015 when
  unset (CANN environment variable reference, HCCL_IF_BASE_PORT:
  https://www.hiascend.com/document/detail/en/canncommercial/800/apiref/envvar/envref_07_0074.html). The
  device-to-device traffic goes over the NPUs' own NICs (the rank table's device_ip), outside the pod network,
  where no NetworkPolicy applies.
- dynamic launch: the scheduler's MS_SCHED_PORT, and the ports the workers open to each other: MindSpore's
  collectives (mccl on CPU, NCCL, HCCL with root info and HCCL_HOST_SOCKET_PORT_RANGE unset) bind ports the OS
  picks, so between the gang's own pods every TCP port is admitted.
- both: the UDP port of zoo-launch's gang fault channel (contract.GANG_CHANNEL_PORT, issue 23), on which one
  rank's crash reaches the others' supervisors within a second.

Egress stays open unless the platform team restricts it (chart value networkPolicy.restrictEgress): then the
pods reach only each other and the cluster's DNS.
"""

from __future__ import annotations

from typing import Any

from zoo_operator import conditions as c
from zoo_operator import render
from zoo_operator.spec import JobSpec
from zoo_workloads import contract

Obj = dict[str, Any]

HCCL_HOST_PORT_BASE = 60000
"""HCCL_IF_BASE_PORT's default: HCCL's first host-NIC port (CANN envvar reference, cited above)."""
HCCL_HOST_PORT_COUNT = 16
"""How many host-NIC ports HCCL takes from its base port."""
DNS_PORT = 53


def name(job: JobSpec) -> str:
    """The NetworkPolicy's name: the job's own (one policy per job, like its Service)."""
    return job.name


def gang_selector(job: JobSpec) -> Obj:
    """The pods of the job: every pod render.pod builds carries this label."""
    return {"matchLabels": {c.LABEL_JOB: job.name}}


def gang_ports(job: JobSpec) -> list[Obj]:
    """The ports the gang's pods accept from each other (NetworkPolicyPort entries), and the UDP port of the
    supervisors' fault channel (contract.GANG_CHANNEL_PORT, issue 23)."""
    channel = {"protocol": "UDP", "port": contract.GANG_CHANNEL_PORT}
    if job.launch == "dynamic":
        # Every TCP port: the workers' collective listeners are on OS-chosen ports (module docstring).
        return [{"protocol": "TCP", "port": 1, "endPort": 65535}, channel]
    return [
        {
            "protocol": "TCP",
            "port": HCCL_HOST_PORT_BASE,
            "endPort": HCCL_HOST_PORT_BASE + HCCL_HOST_PORT_COUNT - 1,
        },
        channel,
    ]


def _dns_egress() -> Obj:
    """Egress to the cluster DNS (kube-dns / CoreDNS in kube-system, both label their pods k8s-app=kube-dns)."""
    return {
        "to": [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}],
    }


def network_policy(job: JobSpec, *, restrict_egress: bool = False) -> Obj:
    """The job's NetworkPolicy, owned by the job (garbage-collected with it), labelled like its other objects."""
    peers = [{"podSelector": gang_selector(job)}]
    policy_spec: Obj = {
        "podSelector": gang_selector(job),
        "policyTypes": ["Ingress", "Egress"] if restrict_egress else ["Ingress"],
        "ingress": [{"from": peers, "ports": gang_ports(job)}],
    }
    if restrict_egress:
        # To each other on any port (a pod's outgoing connection may use any destination port it listens on)
        # and to DNS, which resolves the headless Service names of the peers.
        policy_spec["egress"] = [{"to": peers}, _dns_egress()]
    metadata = {
        "name": name(job),
        "namespace": job.namespace,
        "labels": render.labels(job),
        "ownerReferences": [render.owner_reference(job)],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": policy_spec,
    }
