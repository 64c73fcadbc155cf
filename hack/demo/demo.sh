#!/usr/bin/env bash
# `make demo`: the whole path on one machine. Brings up the local cluster (hack/cluster), installs the operator
# with the Helm chart, writes the digits dataset, applies hack/demo/job.yaml with kubectl, shows the job's
# progress while its pods train, and ends with `kubectl get zootrainingjobs`. The cluster stays up afterwards
# (`make cluster-down` removes it).
#
# The operator watches only the demo's namespace. The tests never use this cluster (they start one of their own with
# other ports and state, README.md "Local cluster"), so `make demo` and `make test` work in either order.
#
# Settings (environment): ZOO_DEMO_KUEUE (non-empty: also start Kueue; `make demo` then builds it too), ZOO_DEMO_DATA (dataset directory, default /tmp/zoo-data/digits), ZOO_DEMO_NAMESPACE
# (default zoo-demo), ZOO_DEMO_TIMEOUT (seconds to wait for the job, default 1200), ZOO_DEMO_HEALTH_PORT (the
# operator's /healthz port; default 8080, or a free port when 8080 is taken: the local kubelet runs pods as host
# processes), and the ZOO_CLUSTER_* variables of the local cluster (README.md, "Local cluster").
set -euo pipefail

repo="$(cd "$(dirname "$0")/../.." && pwd)"
data="${ZOO_DEMO_DATA:-/tmp/zoo-data/digits}"
ns="${ZOO_DEMO_NAMESPACE:-zoo-demo}"
timeout="${ZOO_DEMO_TIMEOUT:-1200}"
job_file="$repo/hack/demo/job.yaml"
job="digits-demo"
release="zoo-operator"
release_ns="zoo-system"
py="$repo/.venv/bin/python"
export PATH="$repo/.cache/bin:$repo/.venv/bin:$PATH"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

say "Local cluster (hack/cluster/zoo-cluster up: etcd, kube-apiserver, controller-manager, scheduler, kubelet)"
up="$("$repo/hack/cluster/zoo-cluster" up)" || die "the local cluster did not come up"
echo "$up"
KUBECONFIG="$(sed -n 's/^ *export KUBECONFIG=//p' <<<"$up")"
export KUBECONFIG
kubectl get nodes
if [[ -n "${ZOO_DEMO_KUEUE:-}" ]]; then
  say "Kueue (asked for with ZOO_DEMO_KUEUE): hack/cluster/zoo-cluster kueue"
  "$repo/hack/cluster/zoo-cluster" kueue
fi

say "Dataset: zoo-data digits --out $data"
if [[ -f "$data/.complete" ]]; then
  echo "already there ($(find "$data/train" -name '*.png' | wc -l) training images)"
else
  rm -rf "$data"
  zoo-data digits --out "$data"
  touch "$data/.complete"
fi

say "Operator: helm install $release charts/zoo-operator -n $release_ns (watching namespace $ns)"
kubectl get namespace "$ns" >/dev/null 2>&1 || kubectl create namespace "$ns"
if helm status "$release" -n "$release_ns" >/dev/null 2>&1; then
  helm upgrade "$release" "$repo/charts/zoo-operator" -n "$release_ns" --reuse-values --wait --timeout 5m
else
  port="${ZOO_DEMO_HEALTH_PORT:-$("$py" - <<'EOF'
import socket
for port in (8080, 0):
    try:
        with socket.socket() as s:
            s.bind(("0.0.0.0", port))
            print(s.getsockname()[1])
            break
    except OSError:
        continue
EOF
)}"
  # A CRD installed by someone else (e.g. a test's release) stays theirs: then the chart leaves it alone.
  crds=true
  owner="$(kubectl get crd zootrainingjobs.modelzoo.io \
    -o jsonpath='{.metadata.annotations.meta\.helm\.sh/release-name}' 2>/dev/null || echo none)"
  [[ "$owner" != "none" && "$owner" != "$release" ]] && crds=false
  helm install "$release" "$repo/charts/zoo-operator" -n "$release_ns" --create-namespace \
    --set "watchNamespaces={$ns}" --set "health.port=$port" --set "crds.enabled=$crds" --wait --timeout 5m
fi
kubectl -n "$release_ns" rollout status "deployment/$release" --timeout=180s
kubectl -n "$release_ns" get pods -o wide

say "Job: kubectl apply -f hack/demo/job.yaml (2 CPU ranks, dataset hostPath $data)"
# A rerun starts from scratch: the old job and (through ownerReferences) its pods go first.
kubectl -n "$ns" delete ztj "$job" --ignore-not-found --wait=true --timeout=120s
while kubectl -n "$ns" get pods -l "modelzoo.io/job-name=$job" -o name 2>/dev/null | grep -q .; do sleep 1; done
sed "s|path: /tmp/zoo-data/digits|path: $data|" "$job_file" | kubectl -n "$ns" apply -f -

say "Training: kubectl get ztj $job, a line whenever its status changes (MindSpore compiles the graph first)"
start=$SECONDS
last="" phase=""
fields='{.status.phase}{"|"}{.status.progress.epoch}{"/"}{.status.progress.epochs}{"|"}{.status.progress.step}{"/"}{.status.progress.stepsPerEpoch}{"|"}{.status.progress.loss}{"|"}{.status.result.top1}{"|"}{.status.ranks.active}'
printf '%7s  %-10s %-6s %-6s %-9s %-7s %s\n' ELAPSED PHASE EPOCH STEP LOSS TOP-1 "RANKS RUNNING"
while (( SECONDS - start < timeout )); do
  row="$(kubectl -n "$ns" get ztj "$job" -o jsonpath="$fields" 2>/dev/null || true)"
  if [[ -n "$row" && "$row" != "$last" ]]; then
    IFS='|' read -r phase epoch step loss top1 active <<<"$row"
    [[ "$epoch" == "/" ]] && epoch=""
    [[ "$step" == "/" ]] && step=""
    [[ "$epoch" == /* ]] && epoch="-$epoch"   # "-/4": the epoch count is known, no epoch has started
    [[ "$step" == /* ]] && step="-$step"
    printf '%6ss  %-10s %-6s %-6s %-9s %-7s %s\n' "$((SECONDS - start))" "${phase:--}" "${epoch:--}" "${step:--}" \
      "${loss:--}" "${top1:--}" "${active:--}"
    last="$row"
  fi
  [[ "$phase" == "Succeeded" || "$phase" == "Failed" ]] && break
  sleep 3
done

say "Result"
kubectl -n "$ns" get zootrainingjobs
kubectl -n "$ns" get pods -l "modelzoo.io/job-name=$job" -o wide
echo
echo "status.result:   $(kubectl -n "$ns" get ztj "$job" -o jsonpath='{.status.result}')"
echo "status.progress: $(kubectl -n "$ns" get ztj "$job" -o jsonpath='{.status.progress}')"
echo "status.message:  $(kubectl -n "$ns" get ztj "$job" -o jsonpath='{.status.message}')"
echo
# This job's Events only (a rerun's predecessor had the same name), in the order they were posted.
uid="$(kubectl -n "$ns" get ztj "$job" -o jsonpath='{.metadata.uid}')"
kubectl -n "$ns" get events --field-selector "involvedObject.uid=$uid" --sort-by=.metadata.resourceVersion
echo
echo "rank 0's last lines (kubectl logs $job-worker-0):"
kubectl -n "$ns" logs "$job-worker-0" --tail=200 2>/dev/null | grep -E '^(epoch|result)' | tail -4 || true

cat <<EOF

The cluster is still up. To look around:
  export KUBECONFIG=$KUBECONFIG PATH=$repo/.cache/bin:\$PATH
  kubectl get ztj -A; kubectl describe ztj $job -n $ns; kubectl logs $job-worker-1 -n $ns
Tear it down with: make cluster-down
EOF
case "$phase" in
  Succeeded) ;;
  Failed) die "the job failed: $(kubectl -n "$ns" get ztj "$job" -o jsonpath='{.status.message}')" ;;
  *) die "the job did not finish within ${timeout}s (phase: ${phase:-none})" ;;
esac
