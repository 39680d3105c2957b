#!/usr/bin/env bash
# Unpacks Debian's PyTorch (python3-torch 1.13, OpenBLAS pthread) into bench/results/cache/torch WITHOUT
# root: `apt-get download` of python3-torch, libtorch1.13, libopenblas0-pthread and every library and
# Python package they depend on that this machine lacks, then `dpkg-deb -x` into one folder (about
# 140 MB of .deb, 560 MB unpacked; bench/results/ is ignored by git and ESLint). Use `bash bench/setup.sh` instead
# where you are root. bench/export.ts uses this copy when /usr/bin/python3 cannot import torch:
#
#   R=bench/results/cache/torch/root
#   PYTHONPATH=$R/usr/lib/python3/dist-packages \
#   LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu/openblas-pthread:$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu:$R/usr/lib \
#   /usr/bin/python3 -c 'import torch'
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$here/results/cache/torch}
mkdir -p "$dest/debs" "$dest/root"
cd "$dest/debs"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# The dependency closure, less what is installed and less alternatives of the BLAS we use.
mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
  --no-breaks --no-replaces --no-enhances python3-torch libtorch1.13 2>/dev/null | grep -v '^[ <]' | sort -u)
want=(python3-torch libtorch1.13 libopenblas0-pthread)
for p in "${closure[@]}"; do
  case "$p" in
    python3-torch|libtorch1.13|libopenblas0-pthread) continue ;;
    libblis*|libatlas*|libopenblas0-openmp|libopenblas0-serial|libopenblas0|libtorch-test|libelogind*|libdebian-installer*) continue ;;
    lib*|python3-*|ocl-icd-libopencl1) ;;
    *) continue ;;
  esac
  installed "$p" || want+=("$p")
done
echo "fetch-debian: ${#want[@]} packages" >&2
apt-get download -q "${want[@]}" >/dev/null 2>&1 || apt-get download "${want[@]}"
for d in ./*.deb; do dpkg-deb -x "$d" "$dest/root"; done

R=$dest/root
export PYTHONPATH=$R/usr/lib/python3/dist-packages
export LD_LIBRARY_PATH=$R/usr/lib/x86_64-linux-gnu/openblas-pthread:$R/usr/lib/x86_64-linux-gnu:$R/lib/x86_64-linux-gnu:$R/usr/lib
missing=$(for f in "$R"/usr/lib/python3/dist-packages/torch/_C.cpython-*.so "$R"/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.*; do ldd "$f" | grep 'not found' || true; done | sort -u)
if [ -n "$missing" ]; then
  echo "fetch-debian: libraries still missing:" >&2
  echo "$missing" >&2
  exit 1
fi
/usr/bin/python3 -c 'import torch; print("PyTorch", torch.__version__, "from", torch.__file__)'
