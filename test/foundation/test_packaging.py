"""Packaging: one version, a colcon build of the package, loopback DDS config."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from restac_ros.dds_env import is_loopback_env, loopback_env

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)


def test_package_xml_and_setup_py_share_one_version():
    xml_version = ET.parse(ROOT / "package.xml").getroot().findtext("version")
    out = subprocess.run(
        [sys.executable, "setup.py", "--version"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == xml_version
    assert re.fullmatch(r"\d+\.\d+\.\d+", xml_version)


def test_package_xml_declares_run_dependencies():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3"
    deps = {e.text for e in root if e.tag in ("depend", "exec_depend")}
    for needed in (
        "rclpy", "std_msgs", "sensor_msgs", "trajectory_msgs", "nav_msgs",
        "visualization_msgs", "diagnostic_msgs", "builtin_interfaces", "launch_ros",
        "rosidl_default_runtime",
    ):
        assert needed in deps, needed


def test_loopback_profile_allows_only_lo():
    env = loopback_env(domain_id=77)
    assert env["ROS_DOMAIN_ID"] == "77" and is_loopback_env(env)
    tree = ET.parse(env["FASTDDS_DEFAULT_PROFILES_FILE"])
    ns = {"d": "http://www.eprosima.com"}
    interfaces = [e.get("name") for e in tree.iterfind(".//d:allowlist/d:interface", ns)]
    assert interfaces == ["lo"]
    builtin = tree.find(".//d:participant/d:rtps/d:useBuiltinTransports", ns)
    assert builtin is not None and builtin.text == "false"
    peers = [e.text for e in tree.iterfind(".//d:initialPeersList//d:address", ns)]
    assert peers == ["127.0.0.1"]


def test_this_test_run_is_confined_to_loopback():
    assert is_loopback_env(os.environ)


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake is not installed")
def test_colcon_build_in_a_temporary_workspace(tmp_path):
    colcon = VENV / "bin" / "colcon"
    assert colcon.exists(), "colcon-common-extensions must be installed by the set-up"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "restac_ros").symlink_to(ROOT)
    env = dict(os.environ)
    env.update(
        AMENT_PREFIX_PATH=str(VENV),
        CMAKE_PREFIX_PATH=str(VENV),
        PATH=f"{VENV / 'bin'}:{env.get('PATH', '')}",
    )
    build = subprocess.run(
        [str(colcon), "build", "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}",
         "-DBUILD_TESTING=OFF"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]

    install = tmp_path / "install" / "restac_ros"
    site = next(install.glob("lib/python3*/site-packages"))
    for exe in ("policy_node", "chunk_executor", "tactile_monitor", "bag_player",
                "frame_publisher", "restac-record"):
        assert os.access(install / "lib" / "restac_ros" / exe, os.X_OK), exe
    assert (install / "share" / "restac_ros" / "launch" / "policy.launch.py").is_file()
    # The installed package (not the source checkout) provides the messages.
    probe = subprocess.run(
        [sys.executable, "-c",
         "import restac_ros.msg as m, restac_ros.dds_env as d; "
         "print(m.__file__); print(d.__file__); print(m.ActionChunk().horizon)"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(site),
             "LD_LIBRARY_PATH": f"{install / 'lib'}:{env.get('LD_LIBRARY_PATH', '')}"},
        capture_output=True, text=True, timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    lines = probe.stdout.split()
    assert lines[0].startswith(str(site)) and lines[1].startswith(str(site)) and lines[2] == "0"


# -- the venv's ament layout (make setup), resolved as ros2 launch / ros2 run do --------

RESOLVE = r"""
import json, os, sys
from ament_index_python.packages import (
    get_package_prefix, get_package_share_directory, get_packages_with_prefixes)
pkg = "restac_ros"
share = get_package_share_directory(pkg)
# ros2launch.api.get_share_file_path_from_package: os.walk of the share directory
launch = sorted(f for _, _, files in os.walk(share) for f in files if f.endswith(".launch.py"))
# launch_ros ExecutableInPackage / ros2pkg get_executable_paths: <prefix>/lib/<pkg>
libexec = os.path.join(get_package_prefix(pkg), "lib", pkg)
exes = sorted(f for f in os.listdir(libexec) if os.access(os.path.join(libexec, f), os.X_OK)
              and os.path.isfile(os.path.join(libexec, f)))
print(json.dumps({"share": share, "launch": launch, "libexec": libexec, "exes": exes,
                  "listed": pkg in get_packages_with_prefixes()}))
"""


def _resolve_in(env: dict) -> dict:
    import json

    out = subprocess.run([sys.executable, "-c", RESOLVE], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_venv_has_the_ament_layout_ros2_launch_and_run_resolve():
    env = {**os.environ, "AMENT_PREFIX_PATH": str(VENV)}
    found = _resolve_in(env)
    share = Path(found["share"])
    assert found["listed"] and share == VENV / "share" / "restac_ros"
    assert (share / "package.xml").read_text() == (ROOT / "package.xml").read_text()
    assert found["launch"] == sorted(p.name for p in (ROOT / "launch").glob("*.launch.py"))
    assert found["launch"] == ["monitor.launch.py", "policy.launch.py", "replay.launch.py",
                               "sim.launch.py"]
    for name in ("policy.yaml", "restac.rviz", "fastdds_loopback.xml"):
        assert (share / "config" / name).read_text() == (ROOT / "config" / name).read_text()
    assert Path(found["libexec"]) == VENV / "lib" / "restac_ros"
    for exe in ("policy_node", "chunk_executor", "bag_player", "tactile_monitor",
                "frame_publisher", "restac-record", "restac-bringup", "restac-eval"):
        assert exe in found["exes"], (exe, found["exes"])
    # what `ros2 run restac_ros restac-bringup --help` executes
    run = subprocess.run([str(VENV / "lib" / "restac_ros" / "restac-bringup"), "--help"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0 and "--launch" in run.stdout, run.stderr


def test_activate_sets_and_deactivate_restores_ament_prefix_path():
    script = (
        f". '{VENV}/bin/activate'; echo \"A=$AMENT_PREFIX_PATH\"; "
        f". '{VENV}/bin/activate'; echo \"B=$AMENT_PREFIX_PATH\"; "
        "deactivate; echo \"C=${AMENT_PREFIX_PATH-unset}\""
    )
    for before, restored in ((None, "unset"), ("/opt/ros/kilted", "/opt/ros/kilted")):
        env = {k: v for k, v in os.environ.items() if k != "AMENT_PREFIX_PATH"}
        if before:
            env["AMENT_PREFIX_PATH"] = before
        out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        want = str(VENV) + (f":{before}" if before else "")
        assert out.stdout.split() == [f"A={want}", f"B={want}", f"C={restored}"]
