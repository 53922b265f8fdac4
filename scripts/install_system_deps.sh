#!/usr/bin/env bash
# Headless OpenGL libraries for restac_ros.sim (MuJoCo rendering without a display):
# EGL (MUJOCO_GL=egl, the default) and OSMesa (MUJOCO_GL=osmesa, the fallback).
# Idempotent: apt-get runs only when a library is missing; silent when all are present.
# RESTAC_SKIP_SYSTEM_DEPS=1 skips the check (machines managed some other way).
set -euo pipefail

[[ "${RESTAC_SKIP_SYSTEM_DEPS:-0}" == "1" ]] && exit 0

# shared library (as ldconfig lists it) -> Debian/Ubuntu package that ships it
declare -A PACKAGE_OF=(
  [libEGL.so.1]=libegl1
  [libEGL_mesa.so.0]=libegl-mesa0
  [libGL.so.1]=libgl1
  [libOSMesa.so.8]=libosmesa6
)
# llvmpipe (the software rasteriser EGL falls back to without a GPU)
DRI_PACKAGE=libgl1-mesa-dri

have_lib() { ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$1 "; }
have_dri() { compgen -G "/usr/lib/*/dri/swrast_dri.so" >/dev/null || compgen -G "/usr/lib/*/dri/*llvmpipe*" >/dev/null; }

missing=()
for lib in "${!PACKAGE_OF[@]}"; do
  have_lib "$lib" || missing+=("${PACKAGE_OF[$lib]}")
done
have_dri || missing+=("$DRI_PACKAGE")
[[ ${#missing[@]} -eq 0 ]] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "install_system_deps: installing ${missing[*]} (headless rendering for restac_ros.sim)"
if ! command -v apt-get >/dev/null; then
  echo "install_system_deps: no apt-get; install the EGL/OSMesa libraries for ${missing[*]}" \
       "with your package manager, or set RESTAC_SKIP_SYSTEM_DEPS=1" >&2
  exit 1
fi
SUDO=()
if [[ "$(id -u)" != "0" ]]; then
  command -v sudo >/dev/null || { echo "install_system_deps: need root or sudo for apt-get" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
apt_install() { "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
# A clean machine may have no package lists yet: update once, only when the install fails.
apt_install || { "${SUDO[@]}" apt-get update -qq >/dev/null && apt_install; }
