#!/usr/bin/env bash
# Checks the deployment files offline, as part of the tests (scripts/test.sh):
# - each Kubernetes overlay renders (kubectl kustomize) and validates against
#   the Kubernetes schemas (kubernetes-validate, strict), and the policy
#   scanner (checkov) finds nothing; the CloudNativePG resources validate
#   against the operator's schemas (@kubernetes-models/cloudnative-pg, npm);
#   the demo's generated Secrets validate;
# - the Containerfile passes checkov's Dockerfile checks;
# - the systemd units verify (systemd-analyze) with an exposure level of at
#   most 2.0 of 10 (systemd-analyze security).
# The Python and npm tools are installed once, pinned, in target/deploy-tools.
set -euo pipefail
cd "$(dirname "$0")/.."

tools=target/deploy-tools
if [ ! -x "$tools/bin/checkov" ] || [ ! -x "$tools/bin/kubernetes-validate" ]; then
  echo "== installing kubernetes-validate and checkov (PyPI) into $tools"
  python3 -m venv "$tools"
  "$tools/bin/pip" install --quiet --disable-pip-version-check \
    "kubernetes-validate==1.37.0" "checkov==3.3.30"
fi
# The CloudNativePG resources' schemas (npm, pinned by the lock file).
cnpg=$tools/cnpg-check
if ! cmp -s deploy/kubernetes/cnpg-check/package-lock.json "$cnpg/package-lock.json"; then
  echo "== installing the CloudNativePG schemas (npm) into $cnpg"
  rm -rf "$cnpg"
  mkdir -p "$cnpg"
  cp deploy/kubernetes/cnpg-check/package.json deploy/kubernetes/cnpg-check/package-lock.json "$cnpg/"
  (cd "$cnpg" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
cp deploy/kubernetes/cnpg-check/validate.mjs "$cnpg/"
for tool in kubectl systemd-analyze openssl node npm; do
  command -v "$tool" >/dev/null || { echo "check-deploy.sh needs $tool" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kubernetes_version=1.30.0

for overlay in demo production; do
  echo "== Kubernetes overlay $overlay"
  kubectl kustomize "deploy/kubernetes/overlays/$overlay" > "$work/$overlay.yaml"
  # Custom resources (the CloudNativePG operator's) have no schema there:
  # kubernetes-validate warns and checks everything else, and the
  # operator's own schemas check them.
  "$tools/bin/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "$work/$overlay.yaml"
  node "$cnpg/validate.mjs" "$work/$overlay.yaml"
  "$tools/bin/checkov" -f "$work/$overlay.yaml" --framework kubernetes \
    --compact --quiet --skip-download
done

echo "== the demo's Secrets"
bash scripts/k8s-demo-secrets.sh "$work/secrets" > /dev/null
"$tools/bin/kubernetes-validate" --strict --quiet -k "$kubernetes_version" "$work"/secrets/*.yaml

echo "== Containerfile"
mkdir -p "$work/container"
cp deploy/container/Containerfile "$work/container/Dockerfile"
"$tools/bin/checkov" -d "$work/container" --framework dockerfile --compact --quiet --skip-download

echo "== systemd units"
mkdir -p "$work/systemd"
for unit in deploy/systemd/*.service; do
  # The binaries are not installed here: the units are checked as written
  # but for the program's path.
  sed 's#/usr/local/bin/[a-z-]*#/bin/true#' "$unit" > "$work/systemd/$(basename "$unit")"
done
cp "$work/systemd/exchange-agency-node@.service" "$work/systemd/exchange-agency-node@shelter-north.service"
units=("$work/systemd/exchange-gateway.service" "$work/systemd/exchange-console.service"
       "$work/systemd/exchange-agency-node@shelter-north.service")
SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no "${units[@]}"
for unit in "${units[@]}"; do
  systemd-analyze security --offline=true --threshold=20 "$unit" | tail -1
done
echo "deployment files: all checks passed"
