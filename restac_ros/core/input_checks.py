"""Plain checks of incoming values that no message field may skip (ROS-free).

Each returns None when the value is acceptable, else the reason as text, so the caller
raises its own typed error (ObservationBuilder: InvalidObservation with a ReasonCode)
and /diagnostics can show why. Texts never copy unbounded input (a prompt, a name list).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROMPT_PREVIEW_CHARS = 60


def joint_limits_error(
    state: np.ndarray,
    names: Sequence[str],
    lower: Sequence[float],
    upper: Sequence[float],
) -> str | None:
    """Positions outside [lower, upper] (per name; empty bounds = unlimited)."""
    bad = []
    for i, name in enumerate(names):
        lo = lower[i] if lower else -np.inf
        hi = upper[i] if upper else np.inf
        if not lo <= state[i] <= hi:
            bad.append(f"{name}={state[i]:.6g} outside [{lo:.6g}, {hi:.6g}]")
    return None if not bad else "; ".join(bad[:8])


def joint_velocity_error(
    newer: np.ndarray,
    older: np.ndarray,
    dt_s: float,
    names: Sequence[str],
    vmax: Sequence[float],
) -> str | None:
    """|newer - older| / dt above vmax in some joint (dt <= 0: nothing to compare)."""
    if not vmax or not dt_s > 0:
        return None
    speed = np.abs(np.asarray(newer, np.float64) - older) / dt_s
    bad = [f"{n} {speed[i]:.6g}/s > {vmax[i]:.6g}/s" for i, n in enumerate(names)
           if not speed[i] <= vmax[i]]
    return None if not bad else f"over {dt_s * 1e3:.1f} ms: " + "; ".join(bad[:8])


def prompt_error(text: str, max_chars: int) -> str | None:
    """A prompt longer than max_chars, or with a NUL character (never silently cut)."""
    if len(text) > max_chars:
        return f"prompt has {len(text)} characters (> max_prompt_chars {max_chars})"
    if "\x00" in text:
        return f"prompt contains a NUL character at index {text.index(chr(0))}"
    return None


def prompt_summary(text: str | None) -> str:
    """A bounded repr for /diagnostics and logs."""
    if text is None:
        return "<none>"
    if len(text) <= PROMPT_PREVIEW_CHARS:
        return repr(text)
    return f"{text[:PROMPT_PREVIEW_CHARS]!r}... ({len(text)} chars)"
