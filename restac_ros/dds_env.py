"""DDS environment that keeps all traffic on loopback (tests, demo, benchmarks).

Fast DDS reads these variables when a participant is created, so they must be
in the environment before ``rclpy.init``; child processes inherit them.
A real robot deployment leaves the environment to the integrator.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping

from restac_ros.paths import config_path

LOOPBACK_PROFILE = "fastdds_loopback.xml"
# Fast DDS derives UDP ports from the domain id; ids up to 232 are valid.
_DOMAIN_RANGE = (20, 200)


def fresh_domain_id(rng: random.Random | None = None) -> int:
    """A domain id for one run, so parallel runs on one machine do not cross-talk."""
    rng = rng or random.Random(os.getpid() ^ int.from_bytes(os.urandom(4), "little"))
    return rng.randint(*_DOMAIN_RANGE)


def loopback_env(domain_id: int | None = None) -> dict[str, str]:
    """The variables that confine Fast DDS to 127.0.0.1 for one ROS domain."""
    return {
        "FASTDDS_DEFAULT_PROFILES_FILE": str(config_path(LOOPBACK_PROFILE)),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_DOMAIN_ID": str(fresh_domain_id() if domain_id is None else domain_id),
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    }


def apply_loopback_env(
    environ: dict[str, str] | None = None, domain_id: int | None = None
) -> Mapping[str, str]:
    """Set the loopback variables in ``environ`` (default ``os.environ``).

    An already-set ``ROS_DOMAIN_ID`` is kept so a parent's choice wins.
    """
    environ = os.environ if environ is None else environ
    if domain_id is None and environ.get("ROS_DOMAIN_ID"):
        domain_id = int(environ["ROS_DOMAIN_ID"])
    env = loopback_env(domain_id)
    environ.update(env)
    return env


def is_loopback_env(environ: Mapping[str, str] | None = None) -> bool:
    environ = os.environ if environ is None else environ
    profile = environ.get("FASTDDS_DEFAULT_PROFILES_FILE", "")
    return (
        environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST"
        and profile.endswith(LOOPBACK_PROFILE)
        and bool(environ.get("ROS_DOMAIN_ID"))
    )
