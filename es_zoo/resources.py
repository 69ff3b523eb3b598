"""Where the shipped data lives, in a checkout and in an installed wheel.

The wheel carries ``recipes/`` and ``model_cards/`` inside the package (as ``es_zoo/_recipes`` and
``es_zoo/_model_cards``, see pyproject.toml); a checkout or an editable install reads the top-level
folders. The embedded corpus always lives in ``es_zoo/data``.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def _shipped(name: str) -> Path:
    inside = PACKAGE_DIR / f"_{name}"
    if inside.is_dir():
        return inside
    return PACKAGE_DIR.parent / name


def recipes_dir() -> Path:
    """The folder holding ``<name>.yaml`` recipes and ``accelerate/`` configs."""
    return _shipped("recipes")


def model_cards_dir() -> Path:
    """The folder holding the Jinja model-card templates."""
    return _shipped("model_cards")
