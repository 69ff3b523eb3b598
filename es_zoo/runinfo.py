"""Run metadata every command records, in one place: the library versions, the git revision of the
es-zoo checkout (None for an installed package) and atomic file writes (a reader never sees half a file)."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
from pathlib import Path


def git_revision() -> str | None:
    """The commit of the es-zoo checkout this runs from, or None (an installed package, no git)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def library_versions() -> dict[str, str]:
    """Python's and the installed versions of es-zoo and the libraries a result depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("es-zoo", "torch", "transformers", "tokenizers", "accelerate", "datasets", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def atomic_write(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed over it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def scratch_folder(path: str | Path) -> Path:
    """``path`` removed if a failed attempt left it (the caller writes a folder there from scratch)."""
    path = Path(path)
    shutil.rmtree(path, ignore_errors=True)
    return path


def replace_folder(tmp: str | Path, final: str | Path, complete: bool = False) -> Path:
    """Put the finished folder ``tmp`` in place of ``final`` (a reader sees the old folder or the new one,
    never half of one); ``complete`` first marks it with a ``COMPLETE`` file (tokenizer folders)."""
    tmp, final = Path(tmp), Path(final)
    if complete:
        (tmp / "COMPLETE").write_text("ok\n")
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    return final


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MB blocks (what the Hub's LFS pointers and checkpoint records hold)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
