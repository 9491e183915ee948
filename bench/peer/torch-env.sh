# Sourced by the PyTorch peer scripts: PY, Debian's python3 with Debian's python3-torch (CPU), installed
# when missing (never needed by the build or the tests), on OpenBLAS.
PY=/usr/bin/python3
if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "installing Debian's python3-torch (CPU) for the comparison..." >&2
  apt-get install -y -qq python3-torch >/dev/null
fi
# Debian's torch calls the system libblas.so.3 (BLAS_INFO=generic); without OpenBLAS that is the slow
# reference BLAS, which would flatter predcode. Installing OpenBLAS switches the alternative.
if ! readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu | grep -q openblas; then
  apt-get install -y -qq libopenblas0-pthread >/dev/null
fi
echo "PyTorch's BLAS: $(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu)" >&2
