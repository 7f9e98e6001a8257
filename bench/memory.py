"""Resident and peak memory of this process, from /proc (Linux)."""
from __future__ import annotations

from pathlib import Path


def memory_mb() -> dict[str, float]:
    """{"rss_mb": resident now, "peak_mb": the most ever resident}; zeros off Linux."""
    values = {"rss_mb": 0.0, "peak_mb": 0.0}
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values["rss_mb" if key == "VmRSS" else "peak_mb"] = int(rest.split()[0]) / 1024
    return values
