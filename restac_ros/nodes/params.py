"""Declaring node parameters with descriptions (every topic name is a parameter)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node


def declare(node: Node, specs: Mapping[str, tuple[Any, str]]) -> dict[str, Any]:
    """Declare `name -> (default, description)`; a default that is a Parameter.Type
    declares the parameter unset (value None unless overridden). Returns the values."""
    values = {}
    for name, (default, description) in specs.items():
        descriptor = ParameterDescriptor(description=description)
        param = node.declare_parameter(name, default, descriptor)
        values[name] = param.value
    return values
