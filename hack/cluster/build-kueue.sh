#!/usr/bin/env bash
# Builds the Kueue manager (sigs.k8s.io/kueue/cmd/kueue) pinned in hack/cluster/kueue/go.mod and caches the
# binary machine-wide, keyed by version, like build.sh does for the control plane; the local cluster runs it
# for the queueing tests (`zoo-cluster kueue`). A no-op when already built.
# Env: ZOO_KUEUE_BIN_DIR (cache dir), GO (go binary), ZOO_BUILD_JOBS.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
KUEUE_VERSION="$(awk '$1=="sigs.k8s.io/kueue" && $2 ~ /^v/ {print $2; exit}' "$here/kueue/go.mod")"
[[ -n "$KUEUE_VERSION" ]] || { echo "build-kueue.sh: no sigs.k8s.io/kueue version in $here/kueue/go.mod" >&2; exit 1; }
bin_dir="${ZOO_KUEUE_BIN_DIR:-$HOME/.cache/zoo-operator/kueue-$KUEUE_VERSION}"

if [[ "$(cat "$bin_dir/.version" 2>/dev/null)" == "$KUEUE_VERSION" && -x "$bin_dir/kueue" ]]; then
  exit 0
fi

# shellcheck source=hack/cluster/go-env.sh
source "$(dirname "${BASH_SOURCE[0]}")/go-env.sh"
echo "build-kueue.sh: building Kueue $KUEUE_VERSION into $bin_dir" >&2
mkdir -p "$bin_dir"
tmp="$(mktemp -d "$bin_dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
cd "$here/kueue"
# Kueue's Makefile stamps the version into sigs.k8s.io/kueue/pkg/version (Makefile: LD_FLAGS).
ldflags="-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION -X sigs.k8s.io/kueue/pkg/version.GitCommit=zoo-operator-module-build"
run_with_heartbeat "Kueue" env CGO_ENABLED=0 GOFLAGS=-mod=readonly "$GO" build -p "${ZOO_BUILD_JOBS:-2}" -trimpath -ldflags "$ldflags" \
  -o "$tmp/kueue" sigs.k8s.io/kueue/cmd/kueue
mv -f "$tmp/kueue" "$bin_dir/kueue"
echo "$KUEUE_VERSION" > "$bin_dir/.version"
echo "build-kueue.sh: built $bin_dir/kueue" >&2
