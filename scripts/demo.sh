#!/usr/bin/env bash
# The README's main command: installs what is missing, builds (Release) into build/, and runs
# the hardware-aware search demo (examples/hardware_aware_darts.cpp): profile this CPU, search
# NAS-Bench-201 (reduced for CPU) on Fashion-MNIST with PC-DARTS under a latency budget, train
# the derived network, measure it. Results in runs/demo/. Under 10 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
build/bin/nasforge_hardware_aware_darts runs/demo "$@"
