#!/usr/bin/env bash
# checkov over everything zoo-operator puts into a cluster (docs/security.md, "checkov"): the chart (`helm template`)
# and every example job rendered by `zoo-operator render` (the objects the operator creates for it), twice: with
# the defaults, and with the hardening values the doc names (image digests, a high uid, the operator's CPU
# limit). Prints each variant's counts and failed checks; the JSON reports stay in the output directory.
#
# checkov is not a dependency of the project; install it anywhere, e.g.
#   uv venv /tmp/ckv && uv pip install -p /tmp/ckv checkov==3.3.30
#   CHECKOV=/tmp/ckv/bin/checkov hack/checkov.sh            # writes .cache/checkov/
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
checkov="${CHECKOV:-checkov}"
out="${1:-$top/.cache/checkov}"
helm="$top/.cache/bin/helm"
zoo="$top/.venv/bin/zoo-operator"
py="$top/.venv/bin/python"
# Any well-formed digest: checkov judges the reference, not the registry.
digest="sha256:$(printf '%064d' 0)"

rm -rf "$out"
mkdir -p "$out/defaults" "$out/hardened"
chart=("$helm" template zoo-operator "$top/charts/zoo-operator" -n zoo-system)
"${chart[@]}" > "$out/defaults/chart.yaml"
"${chart[@]}" --set metrics.enabled=true > "$out/defaults/chart-metrics.yaml"
"${chart[@]}" --set metrics.enabled=true --set "image.digest=$digest" --set resources.limits.cpu=1 \
  > "$out/hardened/chart.yaml"
for f in "$top"/manifests/examples/*.yaml "$top"/manifests/examples/custom-script/job.yaml; do
  name="$(basename "$(dirname "$f")")-$(basename "$f")"
  name="${name#examples-}"
  "$zoo" render -f "$f" > "$out/defaults/job-$name"
  # What the chart's images.workload.*Digest and workloadSecurity.runAsUser values set in the operator's env.
  ZOO_IMAGE_CPU="zoo-operator/workload-cpu:dev@$digest" ZOO_IMAGE_ASCEND="zoo-operator/workload-ascend:dev@$digest" \
    ZOO_POD_RUN_AS_USER=10001 "$zoo" render -f "$f" > "$out/hardened/job-$name"
done
for variant in defaults hardened; do
  # checkov exits 1 when a check fails (the report says which); --skip-download: no Prisma Cloud guidelines.
  "$checkov" -d "$out/$variant" --framework kubernetes --skip-download --quiet --compact -o json \
    > "$out/$variant.json" 2> "$out/$variant.log" || true
  "$py" - "$out/$variant.json" "$variant" <<'EOF'
import collections, json, sys

report = json.load(open(sys.argv[1]))
summary = report["summary"]
print(f"{sys.argv[2]}: {summary['passed']} passed, {summary['failed']} failed, {summary['resource_count']} resources"
      f" (checkov {summary['checkov_version']})")
kinds = collections.defaultdict(collections.Counter)
for check in report["results"]["failed_checks"]:
    kinds[check["check_id"]][check["resource"].split(".")[0]] += 1
for check_id in sorted(kinds):
    print(f"  {check_id}: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds[check_id].items())))
EOF
done
