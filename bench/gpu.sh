#!/usr/bin/env bash
# The GPU checks of issue 17, item 5, for a machine with an NVIDIA GPU and no network (the device
# machine of this workplace), in two steps:
#
#   bash bench/gpu.sh prepare         here, after npm ci: packs into .gpu/ (ignored by git through
#                                     .git/info/exclude) what the GPU machine lacks: this Node binary,
#                                     the runtime node_modules with only onnxruntime-node's linux-x64
#                                     binary, tsx and esbuild's linux-x64 binary, and Debian's Vulkan
#                                     loader (libvulkan1). About 45 MB, for the device tool's carry.
#   bash bench/gpu.sh run [OUT]       there (carry .gpu): unpacks, finds the NVIDIA Vulkan driver,
#                                     records the card (nvidia-smi), then runs
#                                     1. test/gpu/webgpu.test.ts on the GPU: fedex train --device
#                                        webgpu against --device cpu (losses, adapters, eval loss),
#                                        every node of every session on the WebGPU provider;
#                                     2. bench/gpuTrainer.ts: the trainer on WebGPU at the
#                                        Llama-3.2-1B shape (fp16 frozen weights, 4 × 512 tokens)
#                                        against PyTorch on CUDA on the same card and rows.
#                                     Logs and JSON go to OUT (default $OUT, else bench/results/gpu).
#   bash bench/gpu.sh run --swiftshader [OUT]
#                                     the same pipeline on a machine without a GPU: SwiftShader
#                                     (scripts/webgpu/setup.sh), the tiny shape in fp32 (SwiftShader
#                                     has no float16 shaders) and PyTorch on the CPU. It checks the
#                                     script, not a GPU.
# Budget: the run is meant to end within 5 minutes on the GPU machine (a 2.5 GB checkpoint is
# written first; each step has its own timeout below).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PACK="$ROOT/.gpu"

prepare() {
  [[ -d node_modules/onnxruntime-node ]] || { echo "gpu.sh prepare: run npm ci first" >&2; exit 1; }
  mkdir -p "$PACK" .git/info
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  local node_bin
  node_bin="$(readlink -f "$(command -v node)")"
  if [[ ! -f "$PACK/node.xz" || "$node_bin" -nt "$PACK/node.xz" ]]; then
    echo "packing $node_bin ($(node --version))"
    xz -T0 -6 -c "$node_bin" > "$PACK/node.xz"
  fi
  echo "packing node_modules (runtime dependencies, tsx, esbuild linux-x64, onnxruntime-node linux-x64 only)"
  tar -cJf "$PACK/node_modules.tar.xz" \
    --exclude='node_modules/onnxruntime-node/bin/napi-v6/darwin' \
    --exclude='node_modules/onnxruntime-node/bin/napi-v6/win32' \
    --exclude='node_modules/onnxruntime-node/bin/napi-v6/linux/arm64' \
    node_modules/onnxruntime-node node_modules/onnxruntime-common node_modules/ws \
    node_modules/@huggingface/jinja node_modules/@huggingface/tokenizers \
    node_modules/tsx node_modules/esbuild node_modules/@esbuild/linux-x64
  if ! ls "$PACK"/libvulkan1_*.deb > /dev/null 2>&1; then
    (cd "$PACK" && apt-get download libvulkan1) || echo "gpu.sh prepare: apt-get download libvulkan1 failed; the GPU machine must have the Vulkan loader" >&2
  fi
  du -ch "$PACK"/* | tail -1
}

# The NVIDIA Vulkan ICD file, where drivers install it.
nvidia_icd() {
  local f
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json; do
    [[ -f "$f" ]] && { echo "$f"; return 0; }
  done
  find / -xdev -name 'nvidia_icd*.json' 2> /dev/null | head -1
}

run() {
  local mode=gpu
  if [[ "${1:-}" == --swiftshader ]]; then mode=swiftshader; shift; fi
  local out="${1:-${OUT:-$ROOT/bench/results/gpu}}"
  mkdir -p "$out"
  [[ -f "$PACK/node_modules.tar.xz" ]] || { echo "gpu.sh run: $PACK/node_modules.tar.xz missing: run 'bash bench/gpu.sh prepare' here and carry .gpu" >&2; exit 1; }
  # Node: the carried binary unless this machine has Node 20 or newer.
  if ! command -v node > /dev/null || [[ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]]; then
    mkdir -p "$PACK/bin"
    [[ -x "$PACK/bin/node" ]] || { xz -dc "$PACK/node.xz" > "$PACK/bin/node"; chmod +x "$PACK/bin/node"; }
    export PATH="$PACK/bin:$PATH"
  fi
  [[ -d node_modules/onnxruntime-node ]] || tar -xJf "$PACK/node_modules.tar.xz"
  echo "node $(node --version) at $(command -v node)" | tee "$out/gpu.txt"

  local icd trainer_flags torch_env=()
  if [[ "$mode" == gpu ]]; then
    if ! ldconfig -p | grep -q 'libvulkan.so.1'; then
      for f in "$PACK"/libvulkan1_*.deb; do dpkg -x "$f" /; done
      ldconfig
    fi
    icd="$(nvidia_icd)"
    [[ -n "$icd" ]] || { echo "gpu.sh run: no NVIDIA Vulkan ICD (nvidia_icd.json) on this machine; in a container NVIDIA_DRIVER_CAPABILITIES must include graphics" >&2; exit 1; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "$out/gpu.txt"
    trainer_flags=(--shape 1b --device webgpu --precision fp16 --torch-device cuda --batch 4 --seq 512 --warmup 2 --steps 5)
  else
    eval "$(bash scripts/webgpu/setup.sh --check)"
    icd="$VK_ICD_FILENAMES"
    trainer_flags=(--shape tiny --device webgpu --precision fp32 --torch-device cpu --batch 2 --seq 32 --warmup 1 --steps 3 --threads 1)
    local r="$ROOT/bench/results/cache/torch/root"
    if ! python3 -c 'import torch' 2> /dev/null && [[ -d "$r" ]]; then
      torch_env=(PYTHONPATH="$r/usr/lib/python3/dist-packages" LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$r/usr/lib/x86_64-linux-gnu/openblas-pthread:$r/usr/lib/x86_64-linux-gnu:$r/lib/x86_64-linux-gnu:$r/usr/lib")
    fi
  fi
  echo "Vulkan ICD: $icd" | tee -a "$out/gpu.txt"

  local status=0
  echo "== 1. WebGPU against CPU (test/gpu/webgpu.test.ts)"
  FEDEX_WEBGPU_ICD="$icd" CI=true timeout 170 node --import tsx --test --test-reporter=spec test/gpu/webgpu.test.ts > "$out/webgpu-check.log" 2>&1 || status=1
  grep -E '^ *(✔|✖)|^ℹ (pass|fail)|# (WebGPU|max)' "$out/webgpu-check.log" || tail -20 "$out/webgpu-check.log"
  echo "== 2. the trainer at the ${trainer_flags[1]} shape against PyTorch (bench/gpuTrainer.ts)"
  env VK_ICD_FILENAMES="$icd" "${torch_env[@]}" timeout 300 node --import tsx bench/gpuTrainer.ts "${trainer_flags[@]}" --json "$out/gpu-trainer.json" 2>&1 | tee "$out/gpu-trainer.log" || status=1
  echo "results in $out (exit $status)"
  return $status
}

case "${1:-}" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
