"""Where the package's shared files (config/, launch/) live.

A source checkout (or pip editable install) keeps them next to the Python
package; a colcon install puts them in share/restac_ros.
"""

from __future__ import annotations

from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parent.parent


def share_dir() -> Path:
    """Directory holding config/ and launch/; raises FileNotFoundError if none."""
    if (_SOURCE_ROOT / "config" / "fastdds_loopback.xml").is_file():
        return _SOURCE_ROOT
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise FileNotFoundError(
            f"restac_ros config not found next to {_SOURCE_ROOT} and ament_index_python "
            "is not importable"
        ) from exc
    return Path(get_package_share_directory("restac_ros"))


def config_path(name: str) -> Path:
    path = share_dir() / "config" / name
    if not path.is_file():
        raise FileNotFoundError(f"restac_ros config file missing: {path}")
    return path
