"""zoocluster: the project's local Kubernetes cluster (real control plane plus a process kubelet)."""
