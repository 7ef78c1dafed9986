#!/usr/bin/env bash
# Install PyTorch's CPU build into the virtual environment whose pip is $1 (genrekit needs no GPU).
# PyPI's torch for Linux is the CUDA build (several GB); the CPU build comes from PyTorch's own index. A CPU
# wheel pip already finds without any index (a wheel folder in pip's configuration, as on our CI machines)
# is taken first.
set -euo pipefail
PIP="$1"
VERSION="${TORCH_VERSION:-2.13.0}"
if "$PIP" install -q --no-index --no-deps "torch==$VERSION" 2>/dev/null; then
    "$PIP" install -q "torch==$VERSION"  # its dependencies, from the usual index
else
    "$PIP" install -q "torch==$VERSION" --index-url https://download.pytorch.org/whl/cpu
fi
"$PIP" show torch | sed -n 's/^Version: /torch /p'
