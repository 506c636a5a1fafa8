#!/usr/bin/env bash
# Memory-safety check of the Cython kernels.
#
# Builds the extensions with Cython's bounds checking on (FASTNET_BOUNDSCHECK=1:
# boundscheck + initializedcheck, every typed-memoryview index checked, in the kernels'
# nogil loops too) in a temporary copy of the sources, then runs the Cython kernel tests
# against that build.  An index out of bounds inside a `noexcept nogil` helper cannot
# propagate, so Cython reports it through sys.unraisablehook; pytest turns that into a
# PytestUnraisableExceptionWarning, which -W error makes a failure.
#
# Usage:   .ci/boundscheck.sh [extra pytest arguments]
# Env:     PYTHON (default python3), FASTNET_DATA (default ../shared/data beside the repo)
# Needs:   a C compiler, Cython, numpy, scipy, pytest, hypothesis (what the normal build and
#          tests need); builds nothing in the working tree and leaves nothing behind.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/fastnet-boundscheck.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# sources only: no compiled extension, no generated C, no caches
tar -C "$ROOT" --exclude='*.so' --exclude='*.pyd' --exclude='*.c' --exclude='__pycache__' \
    -cf - fastnet src_cython tests setup.py pyproject.toml | tar -C "$TMP" -xf -

cd "$TMP"
echo "boundscheck: building the checked extensions in $TMP"
# the baseline variant only (the same source as the others: the checks are the same), and
# the tests run it whatever the CPU (FASTNET_SIMD)
FASTNET_BOUNDSCHECK=1 FASTNET_REQUIRE_CYTHON=1 FASTNET_SIMD_BUILD=baseline \
    "$PY" setup.py -q build_ext --inplace > build.log 2>&1 || { cat build.log; exit 1; }
export FASTNET_SIMD=baseline
export FASTNET_TEST_BACKENDS=cython

export FASTNET_DATA=${FASTNET_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}
"$PY" - <<EOF
import fastnet
from fastnet._cython import _variants
m = _variants.load("mlp")
assert fastnet.__file__.startswith("$TMP"), fastnet.__file__
assert m.__file__.startswith("$TMP"), m.__file__
assert "cython" in fastnet.available_backends(), fastnet.available_backends()
print("boundscheck: testing", m.__file__)
EOF
"$PY" -m pytest -q -p no:cacheprovider -W error::pytest.PytestUnraisableExceptionWarning \
    tests/test_kernels.py tests/test_cython_backend.py tests/test_cython_dense_threads.py \
    tests/test_word2vec_kernels.py \
    tests/test_rnn_kernels.py "$@"
