#!/bin/sh
# Installs the Debian packages lkeras needs, when some are missing.
# Safe to run often: it does nothing when everything is there.
set -e
PKGS="lua5.4 liblua5.4-dev libopenblas-dev lua-busted zlib1g-dev libedit-dev libhdf5-dev dataset-fashion-mnist make gcc clang libclang-rt-dev python3-h5py lua-check"
# the plotting calls' programs (keras.utils.plot_model, plot_history) and the
# rockspec's check; the library itself loads and works without them
PKGS="$PKGS graphviz gnuplot-nox luarocks"
[ -n "$LKERAS_WITH_TORCH" ] && PKGS="$PKGS python3-torch python3-numpy time"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing
