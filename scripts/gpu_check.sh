#!/usr/bin/env bash
# Builds nasforge against a machine's own CUDA PyTorch (2.x) and checks the GPU paths: the CUDA
# tests, NVML energy, a measured latency + energy table of NAS-Bench-201 networks, and the
# latency table's accuracy on the GPU. Written for the lent GPU machines (no package archive):
# the Debian packages nasforge needs travel as .deb files in .devdeps/, fetched beforehand with
#   mkdir -p .devdeps && (cd .devdeps && apt-get download libfmt-dev libfmt9 libspdlog-dev \
#     libspdlog1.10 nlohmann-json3-dev libeigen3-dev libtbb-dev libtbb12 libtbbmalloc2 \
#     libtbbbind-2-5 libhwloc15 libxgboost-dev libxgboost0 libdmlc0 zlib1g-dev libgtest-dev libgmock-dev)
# Every step has a time limit and writes what it found under $OUT (default /tmp/gpu-check).
#   scripts/gpu_check.sh [ENERGY_SECONDS=120] [STEPS=tests,backtrace,energy,lut,alltests]
# The energy step extends tests/data/measured/nb201_h200_b256_energy.csv (--resume) into $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-/tmp/gpu-check}"
mkdir -p "$OUT"
energy_s="${1:-120}"
steps="${2:-tests,backtrace,energy,lut,alltests}"
want() { [[ ",$steps," == *",$1,"* ]]; }
t0=$(date +%s)
step() { echo "=== [$(( $(date +%s) - t0 )) s] $*"; }

step "machine"
nvidia-smi --query-gpu=name,driver_version,power.draw,power.limit --format=csv 2>&1 | tee "$OUT/gpu.txt"
g++ --version | head -1; cmake --version | head -1; ninja --version
python3 - <<'EOF' 2>&1 | tee -a "$OUT/gpu.txt"
import time, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11 abi", torch._C._GLIBCXX_USE_CXX11_ABI)
try:  # how often NVML's energy counter steps: poll it for a second
    import pynvml
    pynvml.nvmlInit(); h = pynvml.nvmlDeviceGetHandleByIndex(0)
    last, t_last, steps = pynvml.nvmlDeviceGetTotalEnergyConsumption(h), time.perf_counter(), []
    end = t_last + 1.0
    while time.perf_counter() < end:
        e = pynvml.nvmlDeviceGetTotalEnergyConsumption(h)
        if e != last:
            now = time.perf_counter(); steps.append((now - t_last) * 1e3); last, t_last = e, now
    print("nvml energy counter steps in 1 s (idle):", len(steps), "median interval ms:",
          sorted(steps)[len(steps) // 2] if steps else None)
except Exception as ex:
    print("nvml probe failed:", ex)
EOF

step "dependencies (.devdeps/*.deb into /)"
for f in .devdeps/*.deb; do dpkg -x "$f" / || echo "cannot unpack $f"; done
lib=/usr/lib/x86_64-linux-gnu  # Debian's libz.so names Debian's libz.so.1.x: point it at the machine's own
[ -e $lib/libz.so ] || ln -sf libz.so.1 $lib/libz.so
ldconfig

step "configure"
torch_root=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
abi=$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
common=(-S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DNASFORGE_BUILD_BENCHMARKS=OFF
        -DCMAKE_CXX_FLAGS="-D_GLIBCXX_USE_CXX11_ABI=$abi")
if ! timeout 120 cmake "${common[@]}" -DCMAKE_PREFIX_PATH="$torch_root" > "$OUT/configure.log" 2>&1; then
  echo "find_package(Torch) failed (tail below); linking $torch_root directly"
  tail -15 "$OUT/configure.log"
  rm -rf build-gpu
  timeout 120 cmake "${common[@]}" -DNASFORGE_TORCH_ROOT="$torch_root" > "$OUT/configure.log" 2>&1 \
    || { tail -30 "$OUT/configure.log"; exit 1; }
fi
grep -E "nasforge:|Torch|CUDA" "$OUT/configure.log" | head -8

step "build"
if ! timeout 330 cmake --build build-gpu -j "$(nproc)" --target nasforge nasforge_core_tests nasforge_torch_tests \
     nasforge_lut_figures -- -k 0 > "$OUT/build.log" 2>&1; then
  grep -E "error|Error" -A3 "$OUT/build.log" | head -60
  exit 1
fi
tail -1 "$OUT/build.log"
bin=build-gpu/bin

if want tests; then
step "CUDA and NVML tests"
timeout 120 $bin/nasforge_torch_tests --gtest_filter='Cuda.*' 2>&1 | tail -15
timeout 60 $bin/nasforge_core_tests --gtest_filter='CostModel.Measured*' 2>&1 | tail -6
$bin/nasforge measure --space search_spaces/nb201.json --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|' \
  --device cuda --batch 256 --energy 2>&1
$bin/nasforge measure --space search_spaces/nb201.json --arch '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|' \
  --device cuda:7 2>&1 | tail -1
fi

if want backtrace; then
# Segfaulted on LibTorch 2.11 (pip, CUDA build; 2026-11-27): std::filesystem::remove_all bound
# to libtorch.so's own copy (now detail::remove_tree). Run it; if it fails, cuda-gdb (the
# machines have no gdb) says where.
step "Darts.ResumedSearchEndsWhereAnUninterruptedOneDoes"
nm -D --defined-only "$torch_root"/lib/libtorch*.so 2>/dev/null | c++filt | grep -E " std::(__fs::)?filesystem::" \
  | sed -E 's/^[0-9a-f]+ //' | cut -c1-110 | sort -u > "$OUT/libtorch_filesystem_symbols.txt"
echo "std::filesystem symbols libtorch exports: $(wc -l < "$OUT/libtorch_filesystem_symbols.txt") (in libtorch_filesystem_symbols.txt)"
if ! timeout 120 $bin/nasforge_torch_tests --gtest_filter='Darts.ResumedSearchEndsWhereAnUninterruptedOneDoes' \
     > "$OUT/resume_test.txt" 2>&1; then
  tail -5 "$OUT/resume_test.txt"
  timeout 120 cuda-gdb -batch -ex run -ex bt --args $bin/nasforge_torch_tests \
    --gtest_filter='Darts.ResumedSearchEndsWhereAnUninterruptedOneDoes' > "$OUT/backtrace.txt" 2>&1
  grep -E "^#|SIG|OK|FAILED" "$OUT/backtrace.txt" | head -30
else
  tail -1 "$OUT/resume_test.txt"
fi
fi

if want energy; then
step "latency + energy table: random NAS-Bench-201 networks, batch 256, for ${energy_s} s"
cp tests/data/measured/nb201_h200_b256_energy.csv "$OUT/nb201_energy.csv"
timeout "$energy_s" $bin/nasforge measure --space search_spaces/nb201.json --samples 2000 --seed 0 --device cuda \
  --batch 256 --energy --energy-ms 300 --out "$OUT/nb201_energy.csv" --resume 2>&1 | tail -2
echo "rows: $(( $(wc -l < "$OUT/nb201_energy.csv") - 1 ))"
fi

if want lut; then
# LUT_ENV adds settings, e.g. LUT_ENV="NASFORGE_LUT_RETEST=1 NASFORGE_LUT_DUMP=1"; full output in $OUT/lut_*.txt.
step "latency table vs measurement on the GPU (NB201, batch 64, in-network, 50 networks): CUDA events"
env ${LUT_ENV:-} NASFORGE_LUT_EVENTS=1 NASFORGE_LUT_DEVICE=cuda timeout 80 $bin/nasforge_lut_figures nb201 50 64 1 "" median in-network \
  > "$OUT/lut_events.txt" 2>&1; grep -v -E "^(test|calibration) " "$OUT/lut_events.txt" | tail -7
step "the same with a sync after every layer"
env ${LUT_ENV:-} NASFORGE_LUT_DEVICE=cuda timeout 80 $bin/nasforge_lut_figures nb201 50 64 1 "" \
  median in-network > "$OUT/lut_sync.txt" 2>&1; grep -v -E "^(test|calibration) " "$OUT/lut_sync.txt" | tail -7
fi

if want alltests; then
step "all other torch tests on this LibTorch (CPU paths too), what time allows"
timeout "${ALLTESTS_SECONDS:-60}" $bin/nasforge_torch_tests --gtest_filter='-Darts.ResumedSearchEndsWhereAnUninterruptedOneDoes' \
  > "$OUT/torch_tests.log" 2>&1
echo "exit $?; failed:"; grep -E "^\[  FAILED" "$OUT/torch_tests.log" | sort -u | head -20
echo "last test started:"; grep -E "^\[ RUN" "$OUT/torch_tests.log" | tail -1; tail -3 "$OUT/torch_tests.log"
fi

step "done"
