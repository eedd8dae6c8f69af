#!/usr/bin/env bash
# Runs every test of curve-operator (unit, mocked API server, real etcd, real Helm, image
# emulation), after the house rules: rustfmt's formatting and clippy without warnings.
# Installs what the tests need when it is missing: protoc (etcd-client's build), Debian's
# etcd server and etcdctl (election tests), Prometheus and promtool (alert rules), and the Helm
# library from PyPI (chart tests).
# The e2e suite needs a Kubernetes API server and runs separately: see e2e/README.md (its tests
# are #[ignore]d here and counted as skipped).
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/prereqs.sh
need_test_tools

# House rules first: one formatting style, no clippy warnings (a red line here fails the run).
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --all-targets --locked --no-fail-fast "$@" -- --skip emulated_ 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
# Image emulation (tests/image_emulation.rs): needs root and the Curve image's files; without
# the files its tests are listed as ignored, i.e. counted as skipped, never as passed.
image_conf=${CURVE_IMAGE_CONF:-../shared/curve-image/v1.2.6/conf}
if [ -d "$image_conf" ]; then
  cargo test --locked --test image_emulation "$@" -- --ignored 2>&1 | tee -a "$log"
else
  echo "image emulation: skipped: no image files at $image_conf (set CURVE_IMAGE_CONF)" | tee -a "$log"
  cargo test --locked --test image_emulation "$@" 2>&1 | tee -a "$log"
fi
emulation_status=${PIPESTATUS[0]}
[ "$status" -ne 0 ] || status=$emulation_status
set -e
# One closing line for the whole run (cargo prints one per test binary, the last often "0 passed").
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1); if ($i ~ /^ignored/) s += $(i-1) } }
     END { printf "all tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
