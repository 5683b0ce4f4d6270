#!/usr/bin/env bash
# Configures and builds nasforge (Release) into build/. Warnings are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs="${NASFORGE_JOBS:-2}"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DNASFORGE_WERROR=ON
cmake --build build -j "$jobs"
