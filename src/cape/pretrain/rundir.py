"""The run directory: layout, JSON-lines log, provenance.

```
OUT/
  config.yaml          resolved config (read back by cape.pretrain.load_config)
  provenance.json      git revision, versions, host, world size, store and selection
                       fingerprints, patients per cohort, steps per epoch
  log.jsonl            one JSON object per log interval ("kind": "step") and per
                       epoch ("kind": "epoch")
  checkpoints/last.pt  latest checkpoint (atomic; --resume continues from it)
  encoder.safetensors  encoder weights for sharing, refreshed every epoch
  tensorboard/         only with tensorboard: true
```
Only rank 0 writes here.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import cape


@dataclass(frozen=True)
class RunDir:
    """Paths of a run directory."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def provenance(self) -> Path:
        return self.root / "provenance.json"

    @property
    def log(self) -> Path:
        return self.root / "log.jsonl"

    @property
    def last_checkpoint(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def encoder(self) -> Path:
        return self.root / "encoder.safetensors"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"


def git_revision() -> str | None:
    """Commit of the CAPE source tree (with ``-dirty`` if modified), or None outside git."""
    source = Path(cape.__file__).resolve().parent
    try:
        revision = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{revision}-dirty" if status else revision


def provenance(extra: dict[str, Any]) -> dict[str, Any]:
    """What made this run: code version, environment, plus ``extra`` facts."""
    return {
        "cape_version": cape.__version__,
        "git_revision": git_revision(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "host": platform.node(),
        "command": sys.argv,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically (temp file + rename)."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    temp.replace(path)


class JsonlLog:
    """Appends one JSON object per line and flushes, so a crashed run keeps its log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as file:
            file.write(json.dumps(record, default=float) + "\n")

    def truncate_after(self, global_step: int) -> int:
        """Drop the lines logged after ``global_step`` (a killed run's steps past its checkpoint).

        A resumed run repeats those steps and logs them again; keeping the old lines
        would leave two different records of one step. Unparsable lines (a line cut
        short by the kill) go too. Returns the number of lines dropped.
        """
        if not self.path.is_file():
            return 0
        kept, dropped = [], 0
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
                keep = int(record.get("global_step", 0)) <= global_step
            except (ValueError, TypeError, AttributeError):
                keep = False
            if keep:
                kept.append(line)
            else:
                dropped += 1
        temp = self.path.with_name(self.path.name + ".tmp")
        temp.write_text("".join(f"{line}\n" for line in kept))
        temp.replace(self.path)
        return dropped
