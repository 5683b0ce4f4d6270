#!/usr/bin/env bash
# The README's main job: installs what is missing, builds (Release) into build/, runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
build/bin/nasforge_space_tour search_spaces/nb201.json ../shared/data/nb201/nb201_cifar10_200ep.csv
