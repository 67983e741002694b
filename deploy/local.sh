#!/usr/bin/env bash
# Set-up and entry points for a fresh Debian/Ubuntu machine with Rust (rustup) installed:
#   deploy/local.sh run    build and run Kiln (API + workers; starts a private Redis if none is running)
#   deploy/local.sh test   run the whole test suite
# Both first install what is missing: redis-server (apt-get) and the wasm32-wasip2 Rust target.
set -euo pipefail
cd "$(dirname "$0")/.."

install_prerequisites() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if ((${#missing[@]})); then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "deploy/local.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "deploy/local.sh: adding the wasm32-wasip2 Rust target" >&2
    rustup target add wasm32-wasip2
  fi
}

case "${1:-}" in
  run)
    install_prerequisites
    shift
    exec cargo run --release -- serve "$@"
    ;;
  test)
    install_prerequisites
    shift
    exec cargo test --workspace "$@"
    ;;
  prerequisites)
    install_prerequisites
    ;;
  *)
    echo "usage: deploy/local.sh run|test|prerequisites" >&2
    exit 2
    ;;
esac
