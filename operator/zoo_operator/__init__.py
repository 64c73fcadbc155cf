"""zoo-operator: the ZooTrainingJob operator."""

from zoo_operator import lazyclient

# Before anything imports kubernetes_asyncio.client (kube.py, kopf): its ~800 generated modules load on use only.
lazyclient.install()
