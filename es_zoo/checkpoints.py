"""Checkpoints that cannot be lost.

A checkpoint is written into ``checkpoints/.tmp-step-XXXXXXXX``; when every file is on disk a
``COMPLETE`` marker is written last and the folder is renamed to ``checkpoints/step-XXXXXXXX`` (a rename
is atomic on one file system). Older complete checkpoints are pruned only after the new one is complete,
so a crash at any moment leaves the previous good checkpoint intact. Resuming takes the newest complete
checkpoint and names (then removes) any incomplete one.

Layout of one checkpoint (written by ``accelerate``'s ``save_state`` plus ours)::

    step-00000120/
      model.safetensors        weights (safetensors, never pickle)
      optimizer.bin            optimizer state
      random_states_<rank>.pkl RNG states of every process (python, numpy, torch)
      trainer_state.json       step, phase, tokens seen, elapsed seconds
      COMPLETE                 written last

Under FSDP and DeepSpeed the weights and optimizer state are what those libraries write, every process
its own shard, and not safetensors (``safe_serialization`` does not apply to them): FSDP's
``SHARDED_STATE_DICT`` writes ``pytorch_model_fsdp_0/`` and ``optimizer_0/`` (torch.distributed.checkpoint
``.distcp`` files), ``FULL_STATE_DICT`` ``pytorch_model_fsdp.bin`` and ``optimizer.bin`` (pickle);
DeepSpeed writes ``pytorch_model/`` (``*_model_states.pt``, ``zero_pp_rank_*_optim_states.pt``), ``latest``
and its ``zero_to_fp32.py``. Such a checkpoint resumes under the same strategy and number of processes.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from accelerate import Accelerator

MARKER = "COMPLETE"
STATE_FILE = "trainer_state.json"


class _TiedWeightsNote(logging.Filter):
    """BERT ties its decoder to the embeddings; safetensors stores the shared tensor once and
    ``load_state`` re-ties it. accelerate warns about that on every save, which is expected here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Removed shared tensor" not in record.getMessage()


logging.getLogger("accelerate.utils.other").addFilter(_TiedWeightsNote())


def _name(step: int) -> str:
    return f"step-{step:08d}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def complete_checkpoints(root: str | Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.glob("step-*") if p.is_dir() and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: p.name)


def incomplete_checkpoints(root: str | Path) -> list[Path]:
    """Folders under ``root`` that look like checkpoints but lack the ``COMPLETE`` marker."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir()
        if p.is_dir() and (p.name.startswith(".tmp-step-") or p.name.startswith("step-"))
        and not (p / MARKER).is_file()
    )


def latest_checkpoint(root: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    done = complete_checkpoints(root)
    return done[-1] if done else None


def read_state(checkpoint: str | Path) -> dict:
    return json.loads((Path(checkpoint) / STATE_FILE).read_text())


def save_checkpoint(accelerator: "Accelerator", root: str | Path, state: dict, keep: int) -> Path:
    """Write a checkpoint atomically on every process; returns its final path.

    Must be called by all processes (``save_state`` gathers from each). Only the main process
    renames and prunes.
    """
    root = Path(root)
    step = int(state["step"])
    final = root / _name(step)
    tmp = root / f".tmp-{_name(step)}"
    if accelerator.is_main_process:
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
        for f in sorted(tmp.rglob("*")):  # FSDP and DeepSpeed write their shards into sub-folders
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
            elif f.is_dir():
                _fsync_dir(f)
        marker = tmp / MARKER
        marker.write_text("ok\n")
        with open(marker, "rb") as fh:
            os.fsync(fh.fileno())
        if final.exists():  # a leftover of the same step (should not happen); replace it
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
        for old in complete_checkpoints(root)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: "Accelerator", checkpoint: str | Path) -> dict:
    """Restore model, optimizer and RNG states on every process; returns the trainer state."""
    accelerator.load_state(str(checkpoint))
    return read_state(checkpoint)
