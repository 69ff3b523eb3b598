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
      COMPLETE                 written last: the size and sha256 of every other file

Resuming verifies the newest complete checkpoint against its ``COMPLETE`` record (and that it loads);
a damaged one (a truncated or corrupted file, a missing one) is named, moved aside to
``checkpoints/damaged-step-XXXXXXXX`` and the previous one is tried. A save that fails (a full disk, a
quota, a read-only folder) removes its partial folder and stops with one line naming the cause and the
last good checkpoint.

Under FSDP and DeepSpeed the weights and optimizer state are what those libraries write, every process
its own shard, and not safetensors (``safe_serialization`` does not apply to them): FSDP's
``SHARDED_STATE_DICT`` writes ``pytorch_model_fsdp_0/`` and ``optimizer_0/`` (torch.distributed.checkpoint
``.distcp`` files), ``FULL_STATE_DICT`` ``pytorch_model_fsdp.bin`` and ``optimizer.bin`` (pickle);
DeepSpeed writes ``pytorch_model/`` (``*_model_states.pt``, ``zero_pp_rank_*_optim_states.pt``), ``latest``
and its ``zero_to_fp32.py``. Such a checkpoint resumes under the same strategy and number of processes.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from es_zoo.errors import TrainingError
from es_zoo.runinfo import sha256_file

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


def _record(folder: Path) -> dict:
    """Size and sha256 of every file of a checkpoint folder (the marker aside), by relative path."""
    return {f.relative_to(folder).as_posix(): {"size": f.stat().st_size, "sha256": sha256_file(f)}
            for f in sorted(folder.rglob("*")) if f.is_file() and f.name != MARKER}


def verify(checkpoint: str | Path) -> str | None:
    """What is wrong with a complete checkpoint, or None: every file its ``COMPLETE`` record lists must
    be there with the recorded size and sha256, and ``trainer_state.json`` must hold the loop's state.
    (A checkpoint written before records existed, whose marker is just "ok", is checked by loading.)"""
    ckpt = Path(checkpoint)
    try:
        marker = (ckpt / MARKER).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return f"its {MARKER} marker cannot be read ({exc})"
    if marker.strip() != "ok":
        try:
            files = json.loads(marker)["files"]
            assert isinstance(files, dict)
        except (ValueError, KeyError, TypeError, AssertionError):
            return f"its {MARKER} record is not the JSON es-zoo writes"
        for rel, want in files.items():
            f = ckpt / rel
            if not f.is_file():
                return f"{rel} is missing"
            size = f.stat().st_size
            if size != want.get("size"):
                return f"{rel} has {size:,} bytes, {want.get('size', 0):,} were written (truncated?)"
            if sha256_file(f) != want.get("sha256"):
                return f"{rel} does not match the sha256 recorded when it was written (corrupted)"
    try:
        state = read_state(ckpt)
        if not all(isinstance(state.get(k), (int, float)) for k in ("step", "tokens_seen", "elapsed")):
            raise ValueError
    except (OSError, ValueError, UnicodeDecodeError, AttributeError):
        return f"{STATE_FILE} does not hold the trainer state"
    return None


def _set_aside(ckpt: Path) -> Path:
    target = ckpt.with_name(f"damaged-{ckpt.name}")
    n = 1
    while target.exists():
        n += 1
        target = ckpt.with_name(f"damaged-{ckpt.name}-{n}")
    os.replace(ckpt, target)
    return target


def load_latest_good(accelerator: "Accelerator", root: str | Path,
                     echo: Callable[[str], Any] = print) -> tuple[Path | None, dict | None]:
    """Restore the newest complete checkpoint that verifies and loads; each damaged one on the way is
    named and moved aside. Returns ``(checkpoint, trainer state)``, ``(None, None)`` when there is no
    checkpoint; raises :class:`TrainingError` when there are checkpoints but none is good."""
    damaged: list[str] = []
    for ckpt in reversed(complete_checkpoints(root)):
        problem = verify(ckpt) if accelerator.is_main_process else None
        if accelerator.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            problem = broadcast_object_list([problem], from_process=0)[0]
        if problem is None:
            try:
                state = load_checkpoint(accelerator, ckpt)
            except Exception as exc:  # noqa: BLE001 - whatever torch/safetensors raise for a bad file
                problem = f"it does not load ({_short(exc)})"
        if problem is None:
            return ckpt, state
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            moved = _set_aside(ckpt)
            echo(f"checkpoint {ckpt.name} is damaged: {problem}; moved to {moved.name}, trying the one before")
        damaged.append(f"{ckpt.name}: {problem}")
        accelerator.wait_for_everyone()
    if damaged:
        raise TrainingError(f"no checkpoint in {root} can be resumed ({'; '.join(damaged)}); they were moved "
                            "aside as damaged-step-*. Start again with --overwrite")
    return None, None


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _save_failure(exc: BaseException, root: Path, final: Path) -> TrainingError:
    """One line for a checkpoint that could not be written: the cause (a full disk, a quota, a
    read-only folder) and the last good checkpoint."""
    import re

    text = str(exc)
    code = exc.errno if isinstance(exc, OSError) else None
    if code is None:  # safetensors (Rust) says "os error 28"; torch.save "file write failed"
        found = re.search(r"(?:os error|errno) (\d+)", text, re.IGNORECASE)
        if found:
            code = int(found.group(1))
        elif "No space left" in text or "StorageFull" in text or "file write failed" in text:
            code = errno.ENOSPC
        elif "File too large" in text:
            code = errno.EFBIG
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        free = None
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        cause = "the disk is full" + (f" ({free / 2**20:,.0f} MB free on {root})" if free is not None else "")
        if code != errno.ENOSPC:
            cause = f"{os.strerror(code)} (a quota or file size limit)"
    elif code is not None:
        cause = os.strerror(code)
    else:
        cause = _short(exc)
    good = complete_checkpoints(root)
    last = f"the last good checkpoint is {good[-1]}" if good else "no checkpoint was written before"
    return TrainingError(f"could not write checkpoint {final.name}: {cause}; the partial checkpoint was removed "
                         f"and {last}. Fix that, then run the same command with --resume")


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
    try:
        accelerator.save_state(str(tmp), safe_serialization=True)
    except Exception as exc:  # noqa: BLE001 - OSError, or what torch/safetensors make of one
        shutil.rmtree(tmp, ignore_errors=True)
        raise _save_failure(exc, root, final) from None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        try:
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=2))
            for f in sorted(tmp.rglob("*")):  # FSDP and DeepSpeed write their shards into sub-folders
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
                elif f.is_dir():
                    _fsync_dir(f)
            marker = tmp / MARKER
            marker.write_text(json.dumps({"files": _record(tmp)}, indent=1))
            with open(marker, "rb") as fh:
                os.fsync(fh.fileno())
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise _save_failure(exc, root, final) from None
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
