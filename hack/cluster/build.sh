#!/usr/bin/env bash
# Builds the local cluster's control plane (kube-apiserver, kube-controller-manager, kube-scheduler) from the
# pinned k8s.io/kubernetes module in hack/cluster/k8s and caches the binaries machine-wide, keyed by version,
# so a second worktree or bring-up reuses them. Also installs etcd (Debian's etcd-server) when missing.
# A no-op when everything is already there. Env: ZOO_K8S_BIN_DIR (cache dir), GO (go binary), ZOO_BUILD_JOBS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="$(awk '$1=="k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/k8s/go.mod")"
[[ -n "$K8S_VERSION" ]] || { echo "build.sh: no k8s.io/kubernetes version in $here/k8s/go.mod" >&2; exit 1; }
bin_dir="${ZOO_K8S_BIN_DIR:-$HOME/.cache/zoo-operator/k8s-$K8S_VERSION}"
binaries=(kube-apiserver kube-controller-manager kube-scheduler)

ensure_etcd() {
  if ! command -v etcd >/dev/null 2>&1 && [[ ! -x /usr/bin/etcd ]]; then
    echo "build.sh: installing etcd-server (apt)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq etcd-server >/dev/null
    # The package starts a system etcd on :2379; our cluster runs its own, so stop the service's instance.
    (systemctl stop etcd 2>/dev/null || service etcd stop 2>/dev/null || true) >/dev/null 2>&1
  fi
}

built() {
  local b
  [[ "$(cat "$bin_dir/.version" 2>/dev/null)" == "$K8S_VERSION" ]] || return 1
  for b in "${binaries[@]}"; do [[ -x "$bin_dir/$b" ]] || return 1; done
}

ensure_etcd
if built; then
  exit 0
fi

# shellcheck source=hack/cluster/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
echo "build.sh: building Kubernetes $K8S_VERSION control plane into $bin_dir (takes a while the first time)" >&2
major="${K8S_VERSION#v}"; major="${major%%.*}"
minor="${K8S_VERSION#v*.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitCommit=zoo-operator-module-build -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
mkdir -p "$bin_dir"
tmp="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cd "$here/k8s"
# -p 2 keeps a shared 2-core machine usable; CGO off gives the same static binaries as the upstream release.
run_with_heartbeat "kube-apiserver, kube-controller-manager, kube-scheduler" \
  env CGO_ENABLED=0 GOFLAGS=-mod=readonly "$GO" build -p "${ZOO_BUILD_JOBS:-2}" -trimpath -ldflags "$ldflags" -o "$tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler
for b in "${binaries[@]}"; do mv -f "$tmp/$b" "$bin_dir/$b"; done
echo "$K8S_VERSION" > "$bin_dir/.version"
echo "build.sh: built $("$bin_dir/kube-apiserver" --version)" >&2
