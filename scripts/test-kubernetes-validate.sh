#!/usr/bin/env bash
# Installs kubernetes-validate (Python package registry; it ships the Kubernetes JSON schemas
# of 1.25 to 1.37, so validating needs no download) into /opt/kubernetes-validate for the
# manifests' test. Idempotent; prints nothing when it cannot (not root): that test then
# skips, or fails under CI.
set -euo pipefail
venv=/opt/kubernetes-validate
if [ -x "$venv/bin/kubernetes-validate" ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "test-kubernetes-validate: not root; the manifests' schema test will skip" >&2
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'kubernetes-validate==1.37.0'
