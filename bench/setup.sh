#!/usr/bin/env bash
# Installs the PyTorch reference used by `npm run bench` (Debian packages; needs root).
set -euo pipefail
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch libopenblas0-pthread
/usr/bin/python3 -c 'import torch; print("PyTorch", torch.__version__)'
