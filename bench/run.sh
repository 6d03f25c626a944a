#!/usr/bin/env bash
# bench/run.sh: what `npm run bench` runs. Installs what the benchmark needs (as root;
# otherwise it prints the command and stops), builds what is missing or older than its
# sources, then runs bench/run.mjs with the arguments given (e.g. `npm run bench -- --quick`).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[bench] %s\n' "$*" >&2; }

# The peer (Jupyter Server with the IPython kernel) and strace (the hop-by-hop profile).
BENCH_DEPS=(jupyter-server python3-ipykernel strace)
missing=()
for p in "${BENCH_DEPS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    log "missing packages; run as root: apt-get update && $cmd"
    exit 1
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

# codepane's own build and test dependencies (Debian packages, npm ci), as npm test does.
./build.sh deps

# stale TARGET DIR...: TARGET is missing, or a file under one of the DIRs is newer.
stale() {
  local target=$1
  shift
  [ -e "$target" ] || return 0
  [ -n "$(find "$@" -type f -newer "$target" -print -quit 2>/dev/null)" ]
}
if stale dist/core.wasm src/core src/client || [ ! -e dist/node.mjs ] || [ ! -e dist/codepane.mjs ]; then
  ./build.sh client
fi
if stale build/web/index.html web || [ ! -e dist/code-pane.mjs ]; then
  ./build.sh web
fi
if stale build/server/codepane-server src/core src/server || [ ! -d build/server/kernels ]; then
  ./build.sh server
fi

exec node bench/run.mjs "$@"
