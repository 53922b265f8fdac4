#!/usr/bin/env python3
"""Give the venv the ament layout `ros2 run` / `ros2 launch` / `ros2 pkg` look for.

The editable pip install (compat mode) installs neither setup.py's data_files nor
lib/<package>/ executables, so `make setup` runs this after it:

- share/restac_ros/{package.xml,launch/*,config/*}: one symlink per source file (like
  `colcon build --symlink-install`: edits in the checkout apply; ros2launch walks
  share/ without following directory links, so the links are per file);
- lib/restac_ros/<name>: a link to .venv/bin/<name> for every console script of
  the installed restac_ros distribution (what `ros2 run restac_ros <name>` runs);
- share/ament_index/resource_index/packages/restac_ros: the ament index marker
  (also installed by ament_package when msg/ is built; checked here);
- .venv/bin/activate: prepends the venv to AMENT_PREFIX_PATH (deactivate undoes it).

Usage: install_ament_layout.py VENV_DIR
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from pathlib import Path

PACKAGE = "restac_ros"
ROOT = Path(__file__).resolve().parent.parent
SHARED_DIRS = {"launch": "*.launch.py", "config": "*"}
BEGIN = "# >>> restac_ros: AMENT_PREFIX_PATH (make setup) >>>"
END = "# <<< restac_ros <<<"
ON_ACTIVATE = f"""{BEGIN}
_RESTAC_OLD_AMENT_PREFIX_PATH="${{AMENT_PREFIX_PATH:-}}"
case ":${{AMENT_PREFIX_PATH:-}}:" in
    *":$VIRTUAL_ENV:"*) ;;
    *) AMENT_PREFIX_PATH="$VIRTUAL_ENV${{AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}}" ;;
esac
export AMENT_PREFIX_PATH
{END}
"""
ON_DEACTIVATE = f"""    {BEGIN}
    if [ -n "${{_RESTAC_OLD_AMENT_PREFIX_PATH+set}}" ] ; then
        if [ -n "$_RESTAC_OLD_AMENT_PREFIX_PATH" ] ; then
            AMENT_PREFIX_PATH="$_RESTAC_OLD_AMENT_PREFIX_PATH"
            export AMENT_PREFIX_PATH
        else
            unset AMENT_PREFIX_PATH
        fi
        unset _RESTAC_OLD_AMENT_PREFIX_PATH
    fi
    {END}
"""


def link(target: Path, at: Path) -> None:
    """at -> target (relative link), replacing whatever is there."""
    at.parent.mkdir(parents=True, exist_ok=True)
    if at.is_symlink() or at.exists():
        at.unlink()
    at.symlink_to(os.path.relpath(target, at.parent))


def install_share(venv: Path) -> list[Path]:
    share = venv / "share" / PACKAGE
    link(ROOT / "package.xml", share / "package.xml")  # (ament_package installed a copy)
    linked = [share / "package.xml"]
    for sub, pattern in SHARED_DIRS.items():
        dest = share / sub
        wanted = {p.name: p for p in sorted((ROOT / sub).glob(pattern)) if p.is_file()}
        if dest.is_symlink():  # an older directory-level link
            dest.unlink()
        dest.mkdir(parents=True, exist_ok=True)
        for stale in dest.iterdir():
            if stale.name not in wanted:
                stale.unlink()
        for name, src in wanted.items():
            link(src, dest / name)
            linked.append(dest / name)
    return linked


def console_scripts() -> list[str]:
    # rosidl's ament_python_install_package adds a second (egg-info) restac_ros
    # distribution without entry points; pip's dist-info has them.
    return sorted(
        {
            ep.name
            for dist in importlib.metadata.distributions()
            if (dist.metadata["Name"] or "").replace("-", "_") == PACKAGE
            for ep in dist.entry_points
            if ep.group == "console_scripts"
        }
    )


def install_executables(venv: Path) -> list[Path]:
    libexec = venv / "lib" / PACKAGE
    libexec.mkdir(parents=True, exist_ok=True)
    names = console_scripts()
    if not names:
        raise SystemExit(f"{PACKAGE} has no console scripts installed: run pip install -e . first")
    for stale in libexec.iterdir():
        if stale.name not in names:
            stale.unlink()
    out = []
    for name in names:
        script = venv / "bin" / name
        if not os.access(script, os.X_OK):
            raise SystemExit(f"{script} is missing or not executable")
        link(script, libexec / name)
        out.append(libexec / name)
    return out


def check_index_marker(venv: Path) -> Path:
    marker = venv / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE
    if not marker.is_file():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("")
    return marker


def patch_activate(venv: Path) -> Path:
    activate = venv / "bin" / "activate"
    text = activate.read_text()
    if BEGIN in text:
        return activate
    head = "deactivate () {\n"
    if head not in text:
        raise SystemExit(f"{activate}: no 'deactivate () {{' line to hook into")
    text = text.replace(head, head + ON_DEACTIVATE, 1) + "\n" + ON_ACTIVATE
    activate.write_text(text)
    return activate


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    venv = Path(argv[0]).resolve()
    share = install_share(venv)
    exes = install_executables(venv)
    check_index_marker(venv)
    patch_activate(venv)
    print(
        f"ament layout in {venv}: {len(share)} share files, {len(exes)} executables in "
        f"lib/{PACKAGE}/\nfor ros2 run / ros2 launch: source {venv}/bin/activate "
        f"(sets AMENT_PREFIX_PATH={venv})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
