#!/usr/bin/env bash
# Installs the keel build tree at $1 into a temporary prefix, then configures, builds and runs the
# outside project in this folder against it, as a user of the installed package would.
# Usage: run.sh BUILD_DIR [BUILD_TYPE] [CXX_FLAGS] [LINKER_FLAGS] (flags: e.g. the sanitizers').
set -euo pipefail
build_dir=$1
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/keel-package-XXXXXX")
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$here" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE="${2:-Release}" -DCMAKE_CXX_FLAGS="${3:-}" -DCMAKE_EXE_LINKER_FLAGS="${4:-}" \
  >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
"$work/build/consumer_all"
"$work/build/consumer_ratelimit"
"$work/build/consumer_saga"
if [[ -x "$work/build/consumer_adapters" ]]; then "$work/build/consumer_adapters"; fi
