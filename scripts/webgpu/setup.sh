#!/usr/bin/env bash
# Makes onnxruntime-node's WebGPU provider (Dawn, Vulkan on Linux x64) usable on a machine without a
# GPU: SwiftShader, the software Vulkan driver that Debian's chromium-common package ships
# (/usr/lib/chromium/vk_swiftshader_icd.json, libvk_swiftshader.so, and the Vulkan loader
# libvulkan.so.1 beside them). Debian 12's own lavapipe (Mesa 22.3) is too old for Dawn.
#
#   scripts/webgpu/setup.sh           find the driver, or extract it from Debian's package; print the env
#   scripts/webgpu/setup.sh --check   find it only (install nothing): exit 0 and print the env, or exit 1
#
# Safe to run again. It uses /usr/lib/chromium when chromium-common is installed (scripts/e2e/setup.sh
# installs chromium), else $FEDEX_WEBGPU_DIR (default node_modules/.cache/fedex-webgpu), where it puts
# those three files from `apt-get download chromium-common` and `dpkg-deb -x` when they are not there
# yet: nothing is installed on the system (apt-get update runs once, as root, when apt has no lists).
#
# stdout: the two variables to start a process with, one per line, shell-quoted (`eval "$(…)"` works).
# LD_LIBRARY_PATH must be set when the process starts (the loader reads it once), so set them on the
# command, e.g.  VK_ICD_FILENAMES=… LD_LIBRARY_PATH=… fedex train … --device webgpu
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE_DIR="${FEDEX_WEBGPU_DIR:-$ROOT/node_modules/.cache/fedex-webgpu}"
SYSTEM_DIR="/usr/lib/chromium"
ICD="vk_swiftshader_icd.json"
FILES=("$ICD" libvk_swiftshader.so libvulkan.so.1)

log() { printf '== webgpu setup: %s\n' "$*" >&2; }

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

has_driver() {
  local f
  for f in "${FILES[@]}"; do [[ -f "$1/$f" ]] || return 1; done
}

print_env() {
  printf 'export VK_ICD_FILENAMES=%q\n' "$1/$ICD"
  printf 'export LD_LIBRARY_PATH=%q\n' "$1"
}

candidates=("$SYSTEM_DIR" "$CACHE_DIR")
for dir in "${candidates[@]}"; do
  if has_driver "$dir"; then
    ((check_only)) || log "SwiftShader found in $dir"
    print_env "$dir"
    exit 0
  fi
done

if ((check_only)); then
  echo "webgpu setup: no SwiftShader Vulkan driver in ${candidates[*]}; run scripts/webgpu/setup.sh" >&2
  exit 1
fi

if [[ "$(uname -s)/$(uname -m)" != Linux/x86_64 ]]; then
  echo "webgpu setup: the SwiftShader route is for Linux x86_64 (Debian's amd64 package); this is $(uname -s)/$(uname -m)" >&2
  exit 1
fi
for tool in apt-get dpkg-deb; do
  command -v "$tool" >/dev/null 2>&1 || { echo "webgpu setup: $tool not found (a Debian-based system is needed)" >&2; exit 1; }
done

work="$(mktemp -d)"
# Assembled beside the cache and renamed into place: an interrupted run leaves no half a driver.
staging="$(dirname "$CACHE_DIR")/.fedex-webgpu.partial.$$"
trap 'rm -rf "$work" "$staging"' EXIT
# As root, apt would drop to its _apt user, which cannot write to this private temp folder.
sandbox=()
[[ "$(id -u)" == 0 ]] && sandbox=(-o APT::Sandbox::User=root)
download() { (cd "$work" && apt-get download -qq "${sandbox[@]}" chromium-common) >&2; }
log "apt-get download chromium-common"
if ! download; then
  # An image with empty package lists: refresh them once (needs root), then retry.
  if [[ "$(id -u)" != 0 ]]; then
    echo "webgpu setup: apt-get download failed; run 'sudo apt-get update' and try again" >&2
    exit 1
  fi
  log "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  download
fi
deb=("$work"/chromium-common_*.deb)
dpkg-deb -x "${deb[0]}" "$work/root"
mkdir -p "$staging"
for f in "${FILES[@]}"; do cp "$work/root$SYSTEM_DIR/$f" "$staging/$f"; done
dpkg-deb -f "${deb[0]}" Version >"$staging/chromium-common.version"
rm -rf "$CACHE_DIR"
mv "$staging" "$CACHE_DIR"
log "SwiftShader from chromium-common $(cat "$CACHE_DIR/chromium-common.version") extracted to $CACHE_DIR"
has_driver "$CACHE_DIR"
print_env "$CACHE_DIR"
