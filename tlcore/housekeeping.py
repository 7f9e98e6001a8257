"""Keep the disk bounded while the server runs: what expired, what was left half-written,
and derived caches beyond their size.

`tidy()` is the one entry point: the app calls it at start and every few minutes after,
so a public demo that runs for weeks does not fill its disk.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from tlcore import atomic, config, runs, visitors

# Caches that can always be rebuilt: embeddings, folder scans, the host's extracted zips.
# (Downloaded data sets, the demo set and weights are the host's, never swept.)
REBUILDABLE = ("embeddings", "scans", "uploads")


@dataclasses.dataclass(frozen=True)
class Tidied:
    """What one `tidy()` removed."""

    temporaries: int
    visitor_runs: int
    visitor_folders: int
    cache_entries: int

    @property
    def total(self) -> int:
        """Everything removed."""
        return self.temporaries + self.visitor_runs + self.visitor_folders + self.cache_entries


def tidy() -> Tidied:
    """Remove temporaries untouched for an hour, expired visitor runs and folders
    (`visitor_run_hours`), and the oldest cache entries beyond `cache_mb`."""
    limits = config.limits()
    return Tidied(temporaries=len(atomic.sweep(config.tlcore_home())),
                  visitor_runs=len(runs.sweep_visitor_runs()),
                  visitor_folders=len(visitors.sweep()),
                  cache_entries=len(sweep_caches(limits.cache_mb)) if limits.cache_mb else 0)


def sweep_caches(max_mb: float, root: Path | None = None) -> list[Path]:
    """Remove the least recently written cache entries until the rebuildable caches hold
    at most `max_mb`; return what went. An entry is a file or a folder (an extracted zip)
    directly inside one of REBUILDABLE."""
    root = Path(root or config.cache_dir())
    entries = [entry for name in REBUILDABLE if (root / name).is_dir()
               for entry in (root / name).iterdir()
               if not entry.name.startswith(atomic.TEMPORARY_PREFIX)]
    sized = []
    for entry in entries:
        try:
            sized.append((atomic.last_change(entry), _size(entry), entry))
        except OSError:
            continue  # gone meanwhile
    total, budget, removed = sum(size for _, size, _ in sized), max_mb * 2**20, []
    for _, size, entry in sorted(sized, key=lambda item: item[0]):
        if total <= budget:
            break
        try:
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        except OSError:
            continue
        total -= size
        removed.append(entry)
    return removed


def _size(entry: Path) -> int:
    return visitors.folder_bytes(entry) if entry.is_dir() else entry.stat().st_size
