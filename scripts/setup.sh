#!/usr/bin/env bash
# Installs what nasforge needs from Debian 12 packages, and nothing that is already there.
# Idempotent and quick when everything is installed. The only install step of the project.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config   # toolchain
  libfmt-dev libspdlog-dev nlohmann-json3-dev  # core dependencies
  libgtest-dev libgmock-dev libbenchmark-dev   # tests and benchmarks
  libtbb-dev libeigen3-dev zlib1g-dev          # parallel search, predictors, data readers
  libxgboost-dev                               # gradient-boosted tree predictors
  libtorch-dev libopenblas0-pthread            # nasforge::torch (OpenBLAS: 25x faster matmuls)
  dataset-fashion-mnist                        # real images for training and tests
  python3-torch                                # cross-check: Python's torch.load reads our weights
)
if [[ "${NASFORGE_FUZZ:-0}" == 1 ]]; then packages+=(clang libclang-rt-14-dev); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi
echo "setup: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
