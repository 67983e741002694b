#!/usr/bin/env bash
# Set-up and entry points for a fresh Debian/Ubuntu machine with Rust (rustup) installed:
#   deploy/local.sh run    build and run Kiln (API + workers; starts a private Redis if none is running),
#                          in dev mode (--dev: no keys, localhost only) unless KILN_ADMIN_KEY is set
#   deploy/local.sh test   run the whole test suite
# Both first install what is missing: redis-server (apt-get) and the wasm32-wasip2 Rust target; `test` also
# chromium, node and npm for the web page's browser test, openssl for the CLI's https test, and
# componentize-py (in target/py-venv) for the Python job-kind tests.
set -euo pipefail
cd "$(dirname "$0")/.."

# With `tests`, also what the web page's browser test needs: Debian's chromium, node and npm, and the
# test's locked npm packages (host/tests/web).
# componentize-py (Python job kinds: `kiln kind build`, the kind_cli tests) in target/py-venv, where the
# tests look for it; pinned to the release the Python templates are written for. Idempotent: a venv that
# already has that version is left alone.
COMPONENTIZE_PY_VERSION=0.25.1
install_componentize_py() {
  local venv=target/py-venv
  if [ -x "$venv/bin/componentize-py" ] && \
    [ "$("$venv/bin/componentize-py" --version 2>/dev/null)" = "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
    return
  fi
  if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "deploy/local.sh: installing python3 and python3-venv" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  echo "deploy/local.sh: installing componentize-py $COMPONENTIZE_PY_VERSION in $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
}

install_prerequisites() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  if [ "${1:-}" = tests ]; then
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
  fi
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
  if [ "${1:-}" = tests ]; then
    install_componentize_py
  fi
  if [ "${1:-}" = tests ] && [ ! -f host/tests/web/node_modules/playwright-core/package.json ]; then
    echo "deploy/local.sh: installing the web test's npm packages" >&2
    npm ci --prefix host/tests/web --no-audit --no-fund --loglevel=error >/dev/null
  fi
}

case "${1:-}" in
  run)
    install_prerequisites
    shift
    if [ -n "${KILN_ADMIN_KEY:-}" ]; then
      echo "deploy/local.sh: KILN_ADMIN_KEY is set, so Kiln runs in keyed mode (add tenants with \`kiln tenant add NAME\`)" >&2
      exec cargo run --release -- serve "$@"
    fi
    echo "deploy/local.sh: running in dev mode (--dev): no API keys, answers only on localhost;" \
      "set KILN_ADMIN_KEY for keyed mode" >&2
    exec cargo run --release -- serve --dev "$@"
    ;;
  test)
    install_prerequisites tests
    shift
    exec cargo test --workspace "$@"
    ;;
  prerequisites)
    install_prerequisites tests
    ;;
  *)
    echo "usage: deploy/local.sh run|test|prerequisites" >&2
    exit 2
    ;;
esac
