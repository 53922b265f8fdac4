#!/usr/bin/env bash
# Build msg/ with the ROS 2 Kilted wheels' rosidl + ament_cmake and install the
# generated code into the venv (the venv root is the ament prefix).
# Usage: scripts/build_msgs.sh VENV_DIR
set -euo pipefail
venv=$(cd "${1:?usage: build_msgs.sh VENV_DIR}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
py="$venv/bin/python"
build="$root/build/msgs"

# The wheels' exported CMake files name the include dirs of the machine that
# built them (/opt/python/...); point them at this interpreter's and numpy's.
py_inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
np_inc=$("$py" -c 'import numpy; print(numpy.get_include())')
for f in "$venv"/share/*/cmake/export_*__rosidl_generator_pyExport.cmake; do
  if grep -q 'INTERFACE_INCLUDE_DIRECTORIES "/opt/python' "$f"; then
    sed -i -E "s#INTERFACE_INCLUDE_DIRECTORIES \"/opt/python[^\"]*\"#INTERFACE_INCLUDE_DIRECTORIES \"$py_inc;$np_inc\"#" "$f"
  fi
done

export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
export PATH="$venv/bin:$PATH"

# build_one SOURCE_DIR BUILD_DIR [cmake args...]
build_one() {
  local src=$1 dir=$2; shift 2
  local log="$dir.log"
  mkdir -p "$dir"
  cmake -S "$src" -B "$dir" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_RPATH="$venv/lib" "$@" >"$log" 2>&1 || { cat "$log"; exit 1; }
  cmake --build "$dir" -j2 >>"$log" 2>&1 || { tail -50 "$log"; exit 1; }
  cmake --install "$dir" >>"$log" 2>&1 || { tail -50 "$log"; exit 1; }
}

# Message packages the wheels lack (msg_deps/README.md): only where none is installed.
if ! "$py" -c 'import tf2_msgs.msg' 2>/dev/null; then
  build_one "$root/msg_deps/tf2_msgs" "$root/build/tf2_msgs"
  echo "built tf2_msgs (TFMessage) into $venv"
fi

build_one "$root" "$build" -DRESTAC_INSTALL_PYTHON=OFF

# rosidl installs site-packages/restac_ros/__init__.py; drop it so the generated
# files become a portion of the source package (restac_ros/__init__.py extends
# __path__) instead of shadowing it.
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
rm -f "$site/restac_ros/__init__.py"
echo "built restac_ros messages into $venv"
