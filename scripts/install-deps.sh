#!/usr/bin/env bash
# Installs what qforge needs on Debian 12 (skips what is already there):
# compilers and CMake, libyaml, jansson, DLPack, OpenBLAS + LAPACKE,
# Criterion, hipcc + the HIP runtime headers, and the Python packages the
# interoperability tests use (numpy, safetensors, gguf; Debian's python3-torch for
# the model runtime's independent reference).
set -euo pipefail
PKGS=(build-essential cmake pkg-config clang libyaml-dev libjansson-dev libdlpack-dev
      libopenblas-dev liblapacke-dev libcriterion-dev hipcc libamdhip64-dev python3 python3-pip
      python3-numpy python3-torch)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PY=python3
if ! $PY -c 'import numpy, safetensors, gguf' 2>/dev/null; then
  $PY -m pip install -q numpy safetensors gguf 2>/dev/null ||
    $PY -m pip install -q --break-system-packages numpy safetensors gguf
fi
