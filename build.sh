#!/usr/bin/env bash
# codepane's one build script. Subcommands:
#   deps    install the system packages the build and tests need (apt, as root)
#   native  the portable core and its unit tests, natively, with ASan + UBSan
#   wasm    the core compiled with emcc into build/wasm/libcpcore.a, plus a link test
#   client  the WASM client and the npm package's files in dist/
#   web     the <code-pane> element (dist/code-pane.mjs, dist/chunks/) and the served
#           site in build/web (the playground, the embedding demo)
#   size    gzip sizes: the browser entry, the element before its editor loads, and
#           everything the playground loads for a python run
#   server  codepane-server into build/server/codepane-server, its kernels beside it
#   kernels the kernels alone (build/server/kernels)
#   cjson   fetch cJSON's pinned source into build/cjson and print where it is
#   test    everything above, then run every test suite
#   clean   remove build/
# Environment: CC (native compiler, default cc), CJSON_SRC (a cJSON source tree to use
# for the wasm build instead of fetching one), EMCC (default: emcc on PATH).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BUILD="$ROOT/build"
CC=${CC:-cc}
EMCC=${EMCC:-emcc}

# cJSON for the wasm build: Debian's source package, pinned by version and checksums.
CJSON_DEB_VERSION=1.7.15-1+deb12u4
CJSON_DEB_FILES=(
  "cjson_1.7.15-1+deb12u4.dsc 764c2de141d680f4fb4cada30c526dacaa30ead061b9b9c34f2b81e2df0f8439"
  "cjson_1.7.15.orig.tar.gz 5308fd4bd90cef7aa060558514de6a1a4a0819974a26e6ed13973c5f624c24b2"
  "cjson_1.7.15-1+deb12u4.debian.tar.xz afd19a970966cf534ff1e9ec077d710a5e7e78eb4ec9b499c8bdc32e55da12cb"
)
# Elsewhere (no apt): the upstream release tarball of the same version. Debian's orig
# tarball is that same GitHub tag archive (debian/watch), hence the same checksum.
CJSON_UPSTREAM_URL=https://github.com/DaveGamble/cJSON/archive/refs/tags/v1.7.15.tar.gz
CJSON_UPSTREAM_SHA256=5308fd4bd90cef7aa060558514de6a1a4a0819974a26e6ed13973c5f624c24b2

WARN=(-std=c11 -Wall -Wextra -Wshadow -Werror)
SANITIZE=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
CORE_SRC=("$ROOT"/src/core/*.c)

log() { printf '[build] %s\n' "$*" >&2; }
die() { printf '[build] error: %s\n' "$*" >&2; exit 1; }

# Debian packages the build and the tests need, by the command or file that shows them.
DEPS=(
  gcc make pkg-config dpkg-dev xz-utils ca-certificates
  libcjson-dev
  emscripten
  # codepane-server and the sandboxed languages
  libcivetweb-dev libseccomp-dev nettle-dev bubblewrap
  python3 nodejs openjdk-17-jdk-headless r-base-core
  # the kernels' libraries (src/server/kernels)
  python3-ipython python3-matplotlib python3-matplotlib-inline python3-pandas python3-numpy
  r-cran-evaluate r-cran-repr r-cran-jsonlite r-cran-base64enc r-cran-irdisplay
  # the browser tests (driven by npm playwright-core, which never downloads a browser)
  chromium
)

cmd_deps() {
  local missing=() p
  for p in "${DEPS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if command -v emcc >/dev/null 2>&1 && [ "$(command -v emcc)" != /usr/bin/emcc ]; then
    # An emsdk on PATH is used as it is; do not pull Debian's emscripten beside it.
    local keep=() m
    for m in "${missing[@]}"; do [ "$m" = emscripten ] || keep+=("$m"); done
    missing=("${keep[@]}")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    local cmd="apt-get install -y --no-install-recommends ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || die "missing packages; run as root: apt-get update && $cmd"
    log "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "deps: system packages present"
  fi
  # npm packages, exactly as package-lock.json pins them, when node_modules is not
  # already that install.
  if ! cmp -s "$ROOT/package-lock.json" "$ROOT/node_modules/.codepane-lock.json"; then
    log "deps: npm ci"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
    mkdir -p "$ROOT/node_modules"
    cp "$ROOT/package-lock.json" "$ROOT/node_modules/.codepane-lock.json"
  fi
}

# Native build: core objects and the unit test runner, sanitizers on.
cmd_native() {
  mkdir -p "$BUILD/native"
  log "native: core + unit tests (ASan, UBSan)"
  "$CC" "${WARN[@]}" -g -O1 "${SANITIZE[@]}" -I"$ROOT/src/core" \
    "${CORE_SRC[@]}" "$ROOT"/tests/core/*.c -lcjson -lm -o "$BUILD/native/core-tests"
}

# codepane-server: src/server + src/core, optimised, warnings as errors. SERVER_SANITIZE=1
# builds it with ASan + UBSan instead.
cmd_server() {
  mkdir -p "$BUILD/server"
  local flags=(-O2 -g)
  [ "${SERVER_SANITIZE:-0}" = 1 ] && flags=(-O1 -g "${SANITIZE[@]}")
  log "server: build/server/codepane-server"
  "$CC" "${WARN[@]}" "${flags[@]}" -pthread -I"$ROOT/src/core" -I"$ROOT/src/server" \
    "${CORE_SRC[@]}" "$ROOT"/src/server/*.c \
    -lcivetweb -lcjson -lseccomp -lnettle -lm -o "$BUILD/server/codepane-server"
  cmd_kernels
}

# The kernels as codepane-server finds them (build/server/kernels, next to the binary):
# the Python, Node and R kernels copied, the Java kernel compiled into jkernel.jar.
cmd_kernels() {
  local out="$BUILD/server/kernels" tmp f
  log "kernels: build/server/kernels"
  # Built beside, then moved into place: a server starting meanwhile sees the old set or
  # the new one, never half of one.
  mkdir -p "$BUILD/server"
  tmp=$(mktemp -d "$BUILD/server/kernels.XXXXXX")
  for f in python_kernel.py node_kernel.cjs r_kernel.R; do
    if [ -f "$ROOT/src/server/kernels/$f" ]; then install -m 644 "$ROOT/src/server/kernels/$f" "$tmp/$f"; fi
  done
  if compgen -G "$ROOT/src/server/kernels/*.java" >/dev/null; then
    javac -Xlint:all -Werror --release 17 -d "$tmp/classes" "$ROOT"/src/server/kernels/*.java
    jar --create --file "$tmp/jkernel.jar" -C "$tmp/classes" .
    rm -rf "$tmp/classes"
  fi
  chmod 755 "$tmp"
  rm -rf "$out.old"
  if [ -d "$out" ]; then mv "$out" "$out.old"; fi
  mv "$tmp" "$out"
  rm -rf "$out.old"
}

# The native probes of the server's sandbox and run supervisor (real bwrap, real
# cgroups; as root they also check the per-slot uids), with ASan + UBSan.
cmd_server_probes() {
  mkdir -p "$BUILD/server"
  local srv=("$ROOT"/src/server/{sandbox,cgroup,syscall_filter}.c)
  log "server: native probes (ASan, UBSan)"
  "$CC" "${WARN[@]}" -O1 -g "${SANITIZE[@]}" -pthread -I"$ROOT/src/core" -I"$ROOT/src/server" \
    "${CORE_SRC[@]}" "${srv[@]}" "$ROOT/tests/server/sandbox_probe.c" \
    -lseccomp -lcjson -lm -o "$BUILD/server/sandbox-probe"
  "$CC" "${WARN[@]}" -O1 -g "${SANITIZE[@]}" -pthread -I"$ROOT/src/core" -I"$ROOT/src/server" \
    "${CORE_SRC[@]}" "${srv[@]}" "$ROOT"/src/server/{runner,java_wrap}.c "$ROOT/tests/server/runner_probe.c" \
    -lseccomp -lcjson -lm -o "$BUILD/server/runner-probe"
  "$CC" "${WARN[@]}" -O1 -g "${SANITIZE[@]}" -I"$ROOT/src/core" -I"$ROOT/src/server" \
    "$ROOT/src/core/utf8.c" "$ROOT/src/server/wsproto.c" "$ROOT/tests/server/wsproto_test.c" \
    -lnettle -o "$BUILD/server/wsproto-test"
}

sha256_ok() { # file expected
  [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

# Fetch cJSON's source into build/cjson and print its directory.
cjson_src() {
  if [ -n "${CJSON_SRC:-}" ]; then
    [ -f "$CJSON_SRC/cJSON.c" ] || die "CJSON_SRC=$CJSON_SRC has no cJSON.c"
    echo "$CJSON_SRC"; return
  fi
  local dir="$BUILD/cjson" src="$BUILD/cjson/src"
  if [ -f "$src/cJSON.c" ] && [ -f "$dir/.complete" ]; then echo "$src"; return; fi
  rm -rf "$dir"; mkdir -p "$dir/dl"
  if command -v apt-get >/dev/null 2>&1 && [ -f /usr/share/keyrings/debian-archive-keyring.gpg ]; then
    # A private apt configuration: own sources list and state under build/, so the
    # host's apt setup is left as it is.
    local apt="$dir/apt" kr=/usr/share/keyrings/debian-archive-keyring.gpg
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/sources.list.d"
    cat >"$apt/sources.list" <<EOT
deb-src [signed-by=$kr] http://deb.debian.org/debian bookworm main
deb-src [signed-by=$kr] http://deb.debian.org/debian-security bookworm-security main
EOT
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
                -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1
                -o APT::Sandbox::User=root)
    log "wasm: fetching cjson $CJSON_DEB_VERSION (Debian source package)"
    apt-get "${opts[@]}" update -q >/dev/null
    (cd "$dir/dl" && apt-get "${opts[@]}" source --download-only -q "cjson=$CJSON_DEB_VERSION" >/dev/null) \
      || die "cjson $CJSON_DEB_VERSION is not in Debian's archive any more: update the pin in build.sh"
    local entry f sum
    for entry in "${CJSON_DEB_FILES[@]}"; do
      f=${entry% *}; sum=${entry#* }
      sha256_ok "$dir/dl/$f" "$sum" || die "checksum mismatch for $f"
    done
    # dpkg-source checks the tarballs against the .dsc; it cannot check the uploader's
    # signature without Debian's keyring of maintainers, which the checksums above replace.
    (cd "$dir/dl" && dpkg-source -q -x "cjson_${CJSON_DEB_VERSION}.dsc" "$src" >"$dir/dpkg-source.log" 2>&1) \
      || { cat "$dir/dpkg-source.log" >&2; die "dpkg-source could not unpack cjson"; }
  else
    log "wasm: fetching cJSON 1.7.15 (upstream release)"
    curl -fsSL -o "$dir/dl/cjson.tar.gz" "$CJSON_UPSTREAM_URL"
    sha256_ok "$dir/dl/cjson.tar.gz" "$CJSON_UPSTREAM_SHA256" || die "checksum mismatch for cJSON tarball"
    mkdir -p "$src" && tar -xzf "$dir/dl/cjson.tar.gz" -C "$src" --strip-components=1
  fi
  touch "$dir/.complete"
  echo "$src"
}

# emcc from Debian runs its JS tools with the system node and needs Debian's node modules.
emcc_env() {
  if [ "$(command -v "$EMCC")" = /usr/bin/emcc ]; then
    export NODE_PATH=/usr/share/nodejs${NODE_PATH:+:$NODE_PATH}
  fi
}

cmd_wasm() {
  command -v "$EMCC" >/dev/null || die "emcc not found: run ./build.sh deps (or put emsdk's emcc on PATH)"
  emcc_env
  local cj out="$BUILD/wasm" f o objs=()
  cj=$(cjson_src)
  mkdir -p "$out/obj" "$out/include/cjson"
  cp "$cj/cJSON.h" "$out/include/cjson/cJSON.h"
  log "wasm: core + cJSON → build/wasm/libcpcore.a"
  # Integer-only printf for the core, and cJSON's number conversions through JS: both
  # keep musl's long-double formatting out of the wasm (src/client/small_printf.h,
  # src/client/cjson_numbers.c).
  for f in "${CORE_SRC[@]}"; do
    o="$out/obj/$(basename "${f%.c}").o"
    "$EMCC" "${WARN[@]}" -Oz -flto -include "$ROOT/src/client/small_printf.h" \
      -I"$out/include" -I"$ROOT/src/core" -c "$f" -o "$o"
    objs+=("$o")
  done
  # Third-party code is compiled as its authors ship it, without our warning set.
  "$EMCC" -std=c11 -Oz -flto -Dsprintf=cp_cjson_sprintf -Dsscanf=cp_cjson_sscanf \
    -Dstrtod=cp_cjson_strtod -c "$cj/cJSON.c" -o "$out/obj/cJSON.o"
  for f in cjson_numbers small_printf; do
    "$EMCC" "${WARN[@]}" -Oz -flto -c "$ROOT/src/client/$f.c" -o "$out/obj/$f.o"
    objs+=("$out/obj/$f.o")
  done
  objs+=("$out/obj/cJSON.o")
  rm -f "$out/libcpcore.a"
  emar rcs "$out/libcpcore.a" "${objs[@]}"
  log "wasm: link test → build/wasm/link_test.mjs"
  "$EMCC" "${WARN[@]}" -Oz -flto -I"$out/include" -I"$ROOT/src/core" \
    -include "$ROOT/src/client/small_printf.h" "$ROOT/tests/wasm/link_test.c" "$out/libcpcore.a" --js-library "$ROOT/src/client/hooks.js" \
    -sMODULARIZE -sEXPORT_ES6 -sEXPORT_NAME=createLinkTest -sENVIRONMENT=web,worker \
    -sFILESYSTEM=0 -sMALLOC=emmalloc -sALLOW_MEMORY_GROWTH \
    -sEXPORTED_FUNCTIONS=_malloc,_free,_cp_link_test,_cp_link_format \
    -sEXPORTED_RUNTIME_METHODS=UTF8ToString,stringToUTF8,lengthBytesUTF8 \
    -o "$out/link_test.mjs"
}

# The WASM client (src/client on the core) and the npm package's files in dist/:
# codepane.mjs (browser entry), node.mjs (Node entry), core.wasm, codepane.d.ts.
# CLIENT_DEBUG=1 links without Closure and with assertions.
cmd_client() {
  cmd_wasm
  emcc_env
  local out="$BUILD/client" dist="$ROOT/dist" exports link=()
  mkdir -p "$out" "$dist"
  exports=$(paste -sd, "$ROOT/src/client/exports.txt")
  # The minimal runtime keeps the exports in local variables and resolves `ready` with the
  # bare Module: a --post-js (inside the factory) hands the JS API the functions of
  # exports.txt once the instance exists, and the heap through a getter, since growing
  # memory replaces the view.
  {
    echo "/** @suppress {undefinedVars} */"
    echo "Module['ready'] = Module['ready'].then(function (m) {"
    sed "s/.*/  m['&'] = &;/" "$ROOT/src/client/exports.txt"
    echo "  m['heap'] = function () { return HEAPU8; };"
    echo "  return m;"
    echo "});"
  } >"$out/post.js"
  # What the module reads from the factory's argument (anything else is dead code): the
  # wasm bytes (the minimal runtime never fetches them itself), the Node entry's
  # transports, and the hooks' handlers (api.mjs).
  local incoming=wasm,XMLHttpRequest,WebSocket,onRunDone,onStream,onConnState,onTimer
  if [ "${CLIENT_DEBUG:-0}" = 1 ]; then
    link=(-O1 -g -sASSERTIONS=2)
  else
    link=(-Oz -flto --closure 1)
    export EM_CLOSURE_COMPILER="$ROOT/node_modules/.bin/google-closure-compiler"
    [ -x "$EM_CLOSURE_COMPILER" ] || die "google-closure-compiler missing: run ./build.sh deps"
  fi
  log "client: src/client + core → build/client/core.mjs + core.wasm"
  "$EMCC" "${WARN[@]}" "${link[@]}" -I"$BUILD/wasm/include" -I"$ROOT/src/core" \
    -include "$ROOT/src/client/small_printf.h" \
    "$ROOT/src/client/client.c" "$BUILD/wasm/libcpcore.a" \
    --js-library "$ROOT/src/client/hooks.js" --pre-js "$ROOT/src/client/pre.js" \
    --post-js "$out/post.js" -sMINIMAL_RUNTIME \
    -sFETCH -sFETCH_SUPPORT_INDEXEDDB=0 -lwebsocket.js \
    -sMODULARIZE -sEXPORT_ES6 -sEXPORT_NAME=createCore -sENVIRONMENT=web,worker \
    -sFILESYSTEM=0 -sMALLOC=emmalloc -sALLOW_MEMORY_GROWTH -sINITIAL_MEMORY=1MB -sTOTAL_STACK=256KB \
    -sEXPORTED_FUNCTIONS="$exports" -sTEXTDECODER=2 -sSTRICT -sINCOMING_MODULE_JS_API="$incoming" \
    -o "$out/core.mjs"
  log "client: bundles → dist/"
  local esb="$ROOT/node_modules/.bin/esbuild"
  [ -x "$esb" ] || die "esbuild missing: run ./build.sh deps"
  "$esb" --log-level=warning --bundle --minify --format=esm --target=es2020 \
    "$ROOT/src/client/browser.mjs" --outfile="$dist/codepane.mjs"
  "$esb" --log-level=warning --bundle --minify --format=esm --target=es2020 --platform=node \
    --external:ws --external:xhr2 \
    "$ROOT/src/client/node.mjs" --outfile="$dist/node.mjs"
  install -m 644 "$out/core.wasm" "$dist/core.wasm"
  cp "$ROOT/src/client/codepane.d.ts" "$dist/codepane.d.ts"
}

# The <code-pane> element (web/code-pane.mjs and what it imports) → dist/code-pane.mjs,
# with every lazily loaded part (the editor, each language's grammar, the LaTeX, Markdown
# and chart renderers) split into dist/chunks/. Then the served site in build/web: the
# pages of web/ and a copy of dist/ (codepane-server's web root refuses symlinks).
cmd_web() {
  [ -f "$BUILD/client/core.mjs" ] || cmd_client
  local dist="$ROOT/dist" site="$BUILD/web"
  [ -d "$ROOT/node_modules/esbuild" ] || die "esbuild missing: run ./build.sh deps"
  log "web: web/code-pane.mjs → dist/code-pane.mjs + dist/chunks/"
  rm -rf "$dist/chunks"
  (cd "$ROOT" && node scripts/build-web.mjs)
  cp "$ROOT/web/code-pane.d.ts" "$dist/code-pane.d.ts"
  log "web: the site → build/web"
  rm -rf "$site.new"
  mkdir -p "$site.new/dist"
  cp "$ROOT"/web/*.html "$site.new/"
  cp -r "$dist/code-pane.mjs" "$dist/core.wasm" "$dist/chunks" "$site.new/dist/"
  rm -rf "$site"
  mv "$site.new" "$site"
}

# Gzip size of what a browser page loads for the client: the browser entry and its wasm.
cmd_size() {
  [ -f "$ROOT/dist/codepane.mjs" ] || cmd_client
  [ -f "$BUILD/web-meta.json" ] || cmd_web
  echo "The client alone (import 'codepane' in a browser):"
  node "$ROOT/scripts/size.mjs" --client
  (cd "$ROOT" && node scripts/size.mjs --web "$BUILD/web-meta.json")
}

cmd_test() {
  cmd_native
  cmd_client
  cmd_web
  cmd_server
  cmd_server_probes
  local san=(ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1)
  log "test: core unit tests"
  env "${san[@]}" "$BUILD/native/core-tests"
  log "test: sandbox probe"
  (cd "$ROOT" && env "${san[@]}" CP_PROBE_UID_BASE=63000 "$BUILD/server/sandbox-probe")
  log "test: WebSocket protocol unit tests"
  env "${san[@]}" "$BUILD/server/wsproto-test"
  log "test: runner probe"
  (cd "$ROOT" && env "${san[@]}" CP_PROBE_UID_BASE=63100 "$BUILD/server/runner-probe" src/server/runners)
  log "test: node suites (wasm core, kernels, client, browser, web, package, codepane-server, docs examples)"
  # One file at a time: each starts its own server, and sandboxes share the machine's
  # two cores.
  node --test --test-concurrency=1 "$ROOT"/tests/wasm/*.test.mjs "$ROOT"/tests/kernels/*.test.mjs \
    "$ROOT"/tests/client/*.test.mjs \
    "$ROOT"/tests/browser/*.test.mjs "$ROOT"/tests/web/*.test.mjs "$ROOT"/tests/package/*.test.mjs \
    "$ROOT"/tests/server/*.test.mjs "$ROOT"/tests/docs/*.test.mjs
  # The attack catalogue once more with every language in kernels, the server's default
  # (the test servers above run one process per run unless they ask for kernels): the
  # session, not the run, is then the unit of isolation (tests/server/harness.mjs).
  log "test: the sandbox catalogue with kernels"
  CP_TEST_KERNELS=all node --test --test-concurrency=1 \
    "$ROOT"/tests/server/catalogue_*.test.mjs
}

cmd_clean() { rm -rf "$BUILD"; }

case "${1:-}" in
  deps) cmd_deps ;;
  native) cmd_native ;;
  wasm) cmd_wasm ;;
  client) cmd_client ;;
  web) cmd_web ;;
  size) cmd_size ;;
  cjson) cjson_src ;;
  server) cmd_server ;;
  kernels) cmd_kernels ;;
  test) cmd_test ;;
  clean) cmd_clean ;;
  *) echo "usage: $0 {deps|native|wasm|client|web|size|server|kernels|cjson|test|clean}" >&2; exit 2 ;;
esac
