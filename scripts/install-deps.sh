#!/bin/sh
# Installs the Debian packages lkeras needs, when some are missing.
# Safe to run often: it does nothing when everything is there.
set -e
PKGS="lua5.4 liblua5.4-dev libopenblas-dev lua-busted zlib1g-dev libedit-dev libhdf5-dev libpng-dev libjpeg62-turbo-dev dataset-fashion-mnist make gcc clang libclang-rt-dev python3-h5py lua-check"
# the plotting calls' programs (keras.utils.plot_model, plot_history) and the
# rockspec's check; the library itself loads and works without them
PKGS="$PKGS graphviz gnuplot-nox luarocks"
# make test's memcheck of the examples
PKGS="$PKGS valgrind"
# keras.distributed over MPI (optional: without mpicc the build has no
# build/keras_mpi.so and keras.distributed is a world of size 1)
PKGS="$PKGS openmpi-bin libopenmpi-dev"
# the benchmarks' peers: PyTorch from Python, and libtorch's C++ API for the
# latency section (scripts/bench/latency_torch.cpp)
[ -n "$LKERAS_WITH_TORCH" ] && PKGS="$PKGS python3-torch python3-numpy time libtorch-dev g++"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# Debian's luarocks builds for Lua 5.1 unless told otherwise; lkeras is a Lua 5.4
# module, so a luarocks that has no default yet gets 5.4 (then a plain
# `luarocks make` in a clone builds and installs for lua5.4). A default someone
# chose is left alone; LKERAS_NO_LUAROCKS_DEFAULT=1 skips this.
luarocks_default() {
  [ -z "${LKERAS_NO_LUAROCKS_DEFAULT:-}" ] && [ "$(id -u)" = 0 ] || return 0
  command -v luarocks >/dev/null 2>&1 || return 0
  [ -e /etc/luarocks/default-lua-version.lua ] && return 0
  luarocks config --scope system lua_version 5.4 >/dev/null &&
    echo "luarocks: Lua 5.4 is now its default (/etc/luarocks/default-lua-version.lua)"
}
if [ -z "$missing" ]; then luarocks_default; exit 0; fi
echo "installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
luarocks_default
