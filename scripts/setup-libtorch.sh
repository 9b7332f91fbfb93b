#!/usr/bin/env bash
# Sets up a CPU-only libtorch 2.13.0 for tch 0.26 (the `sflow-ml` crate) from PyPI wheels,
# without installing or importing Python's torch.
#
#   scripts/setup-libtorch.sh [DIR]        # default DIR: .libtorch/ in the repository root
#   eval "$(scripts/setup-libtorch.sh --env [DIR])"   # set up if needed, then export the env
#
# What it does (idempotent: a complete DIR is left alone and only re-verified):
#   1. `pip download --no-deps` of three pinned wheels (hashes checked) into a cache,
#      ${SFLOW_LIBTORCH_CACHE:-${XDG_CACHE_HOME:-~/.cache}/sflow/libtorch-wheels}:
#        torch==2.13.0 (manylinux_2_28 x86_64, ~527 MB), nvidia-cuda-runtime==13.0.96 and
#        nvidia-cuda-cupti==13.0.85 (libtorch_cpu.so links libcudart.so.13 and libcupti.so.13
#        even when no GPU is used);
#   2. unzips only lib/{libtorch_cpu,libtorch,libc10}.so, libgomp.so.1 (+ a libgomp.so link),
#      libcudart.so.13, libcupti.so.13, include/ and share/ into DIR, and writes
#      DIR/build-version (`2.13.0`, which torch-sys checks);
#   3. checks with `ldd` that libtorch_cpu.so and libc10.so resolve every library, and prints the environment to export
#      (LIBTORCH, LD_LIBRARY_PATH).
# Needs: bash, python3 with pip (only as a downloader), unzip, ldd, sha256sum. Linux x86_64.
set -euo pipefail

TORCH_VERSION=2.13.0
CUDART_VERSION=13.0.96
CUPTI_VERSION=13.0.85
# sha256 of the exact files `pip download` picks with the platform flags below.
TORCH_SHA256=796633c4cdf0fe2cdced72d8f88f22e73dbcfce83132763162f6d4bff13b820b
CUDART_SHA256=7f82250d7782aa23b6cfe765ecc7db554bd3c2870c43f3d1821f1d18aebf0548
CUPTI_SHA256=4eb01c08e859bf924d222250d2e8f8b8ff6d3db4721288cf35d14252a4d933c8

LIBS=(libtorch_cpu.so libtorch.so libc10.so libgomp.so.1 libcudart.so.13 libcupti.so.13)

emit_env=0
if [[ "${1:-}" == "--env" ]]; then
  emit_env=1
  shift
fi
case "${1:-}" in
  -h | --help)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/.libtorch}"
mkdir -p "$(dirname "$dir")"
dir="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"
cache="${SFLOW_LIBTORCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/sflow/libtorch-wheels}"

say() { echo "setup-libtorch: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

[[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] ||
  die "only Linux x86_64 is supported by this script (got $(uname -s)-$(uname -m)); see docs/ml.md for other ways to get libtorch $TORCH_VERSION"

# Does DIR hold a complete, loadable libtorch?
verify() {
  local d="$1"
  [[ -f "$d/build-version" && "$(tr -d '[:space:]' <"$d/build-version")" == "$TORCH_VERSION" ]] || return 1
  [[ -f "$d/include/torch/csrc/api/include/torch/torch.h" ]] || return 1
  local lib
  for lib in "${LIBS[@]}" libgomp.so; do
    [[ -e "$d/lib/$lib" ]] || return 1
  done
  # libtorch.so is only linked against (tch passes -ltorch; --as-needed drops it from the
  # binaries): it names libtorch_cuda.so, which a CPU-only set-up leaves out on purpose.
  local missing
  missing="$(LD_LIBRARY_PATH="$d/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$d/lib/libtorch_cpu.so" "$d/lib/libc10.so" 2>&1 | grep -E 'not found' || true)"
  if [[ -n "$missing" ]]; then
    say "ldd reports unresolved libraries in $d/lib:"
    echo "$missing" >&2
    return 1
  fi
  return 0
}

print_env() {
  if ((emit_env)); then
    printf 'export LIBTORCH=%q\n' "$dir"
    printf 'export LD_LIBRARY_PATH=%q${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\n' "$dir/lib"
  else
    cat >&2 <<EOF
setup-libtorch: libtorch $TORCH_VERSION (CPU) is ready in $dir
Export, before building or running anything that uses sflow-ml:
  export LIBTORCH=$dir
  export LD_LIBRARY_PATH=$dir/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}
(or: eval "\$(scripts/setup-libtorch.sh --env${1:+ $1})")
EOF
  fi
}

if verify "$dir"; then
  say "$dir already holds libtorch $TORCH_VERSION; verified with ldd"
  print_env "${1:-}"
  exit 0
fi

start=$SECONDS
for tool in unzip ldd sha256sum; do
  command -v "$tool" >/dev/null || die "\`$tool\` is needed (apt-get install unzip / libc-bin / coreutils)"
done
pip=()
if command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; then
  pip=(python3 -m pip)
elif command -v pip3 >/dev/null; then
  pip=(pip3)
elif command -v pip >/dev/null; then
  pip=(pip)
else
  die "pip is needed to download the wheels (apt-get install python3-pip); Python's torch is never imported"
fi

mkdir -p "$cache"
req="$(mktemp)"
work=""
cleanup() {
  rm -f "$req"
  [[ -n "$work" ]] && rm -rf "$work"
}
trap cleanup EXIT
cat >"$req" <<EOF
torch==$TORCH_VERSION --hash=sha256:$TORCH_SHA256
nvidia-cuda-runtime==$CUDART_VERSION --hash=sha256:$CUDART_SHA256
nvidia-cuda-cupti==$CUPTI_VERSION --hash=sha256:$CUPTI_SHA256
EOF

find_wheel() { compgen -G "$cache/$1" | head -n1 || true; }
torch_whl="$(find_wheel "torch-$TORCH_VERSION-cp312-cp312-manylinux_2_28_x86_64.whl")"
cudart_whl="$(find_wheel "nvidia_cuda_runtime-$CUDART_VERSION-*.whl")"
cupti_whl="$(find_wheel "nvidia_cuda_cupti-$CUPTI_VERSION-*.whl")"
check_sha() { [[ -n "$1" && "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]; }
if ! check_sha "$torch_whl" "$TORCH_SHA256" || ! check_sha "$cudart_whl" "$CUDART_SHA256" ||
  ! check_sha "$cupti_whl" "$CUPTI_SHA256"; then
  say "downloading the wheels into $cache (torch is ~527 MB)"
  # Platform flags pin the exact files (the libraries are the same for every Python version).
  "${pip[@]}" download --no-deps --only-binary=:all: --require-hashes --disable-pip-version-check \
    --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_25_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 \
    -d "$cache" -r "$req" >&2 || die "pip download failed (is PyPI reachable?)"
  torch_whl="$(find_wheel "torch-$TORCH_VERSION-cp312-cp312-manylinux_2_28_x86_64.whl")"
  cudart_whl="$(find_wheel "nvidia_cuda_runtime-$CUDART_VERSION-*.whl")"
  cupti_whl="$(find_wheel "nvidia_cuda_cupti-$CUPTI_VERSION-*.whl")"
  check_sha "$torch_whl" "$TORCH_SHA256" || die "torch wheel missing or with a wrong sha256 in $cache"
  check_sha "$cudart_whl" "$CUDART_SHA256" || die "nvidia-cuda-runtime wheel missing or with a wrong sha256 in $cache"
  check_sha "$cupti_whl" "$CUPTI_SHA256" || die "nvidia-cuda-cupti wheel missing or with a wrong sha256 in $cache"
else
  say "using the cached wheels in $cache"
fi

# Build into a scratch directory next to DIR, then move it into place: an interrupted run
# never leaves a DIR that looks complete.
work="$(mktemp -d "$(dirname "$dir")/.libtorch-setup.XXXXXX")"
say "unpacking into $dir"
unzip -q "$torch_whl" \
  'torch/lib/libtorch_cpu.so' 'torch/lib/libtorch.so' 'torch/lib/libc10.so' 'torch/lib/libgomp.so.1' \
  'torch/include/*' 'torch/share/*' -d "$work/wheel"
unzip -q -j "$cudart_whl" 'nvidia/cu13/lib/libcudart.so.13' -d "$work/wheel/torch/lib"
unzip -q -j "$cupti_whl" 'nvidia/cu13/lib/libcupti.so.13' -d "$work/wheel/torch/lib"
mv "$work/wheel/torch" "$work/libtorch"
ln -sf libgomp.so.1 "$work/libtorch/lib/libgomp.so"
echo "$TORCH_VERSION" >"$work/libtorch/build-version"
verify "$work/libtorch" || die "the unpacked libtorch does not verify (see above)"
rm -rf "$dir"
mv "$work/libtorch" "$dir"
# The include paths torch-sys compiles against must not move after this point: verify again.
verify "$dir" || die "$dir does not verify after the move"
say "done in $((SECONDS - start)) s ($(du -sh "$dir" | cut -f1) on disk)"
print_env "${1:-}"
