# Sourced by the scripts here: installs what building and testing need when it is missing.
# protoc: etcd-client compiles etcd's .proto files at build time.

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Arguments: command=package pairs; a leading --no-install-recommends is passed to apt-get.
apt_install_missing() {
  local apt_flags=()
  if [ "${1:-}" = --no-install-recommends ]; then apt_flags+=("$1"); shift; fi
  local missing=()
  local pair
  for pair in "$@"; do
    command -v "${pair%%=*}" >/dev/null || missing+=("${pair#*=}")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}" >&2
    sudo_if_needed apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${apt_flags[@]}" "${missing[@]}" >/dev/null
  fi
}

need_build_tools() { apt_install_missing protoc=protobuf-compiler; }

need_test_tools() {
  need_build_tools
  apt_install_missing etcd=etcd-server etcdctl=etcd-client
  # promtool checks and unit-tests the alert rules; the server scrapes in the dashboard tests
  # and e2e. Without recommends: the package would also pull and start node-exporter.
  apt_install_missing --no-install-recommends promtool=prometheus prometheus=prometheus
  if ! python3 -c 'import helm_python' 2>/dev/null; then
    echo "installing helm-python-sdk" >&2
    python3 -m pip install --quiet helm-python-sdk
  fi
  # tests/s3_upload.rs: a test CA and server certificate for the HTTPS upload.
  apt_install_missing openssl=openssl
  # tests/s3_upload.rs: an S3-compatible server that checks SigV4 signatures (moto), and
  # botocore (a dependency of moto) to cross-check the operator's own signer.
  if ! command -v moto_server >/dev/null 2>&1 || ! python3 -c 'import botocore' 2>/dev/null; then
    echo "installing moto[server]" >&2
    python3 -m pip install --quiet 'moto[server]'
  fi
  # The house rules: rustfmt and clippy (rustup's components, when rustup manages Rust).
  if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
    echo "installing rustfmt and clippy" >&2
    rustup component add rustfmt clippy
  fi
}
