#!/usr/bin/env bash
# Renders a CurveCluster manifest offline (default: the minimal example): every object the
# operator would apply, as one YAML stream. Installs protoc first when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
need_build_tools
exec cargo run -q --locked -- render -f "${1:-examples/curvecluster.yaml}" "${@:2}"
