#!/usr/bin/env bash
# Installs schemathesis (Python package registry) into /opt/schemathesis for the API's
# property-based test. Idempotent; prints nothing when it cannot (not root): that test then
# skips, or fails under CI.
set -euo pipefail
venv=/opt/schemathesis
if [ -x "$venv/bin/st" ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "test-schemathesis: not root; the schemathesis test will skip" >&2
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis==4.32.5'
