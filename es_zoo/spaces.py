"""The Hugging Face Space of each demo: ``spaces/<task>/{app.py, README.md, requirements.txt}``, rendered
from the demo registry (metadata through huggingface_hub's ``SpaceCardData``), and published through the
same publishing layer as models and datasets.

    python -m es_zoo.spaces            # (re)write spaces/*/ in a checkout (the tests check they are current)
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Callable

from es_zoo import __version__
from es_zoo.cards import sign_card
from es_zoo.catalog import find_model
from es_zoo.demos import DEMOS, get_demo
from es_zoo.publish import Plan, check_repo_id, publish_files

GRADIO_VERSION = "6.31.0"  # the Gradio the demos are tested with (pinned in the dev extra)
_COLORS = {"fill-mask": ("yellow", "red"), "zoo": ("green", "blue")}

_APP = '''"""{title}: an es-zoo demo, as a Hugging Face Space or locally (`python app.py`).

The model defaults to the catalogue's fine-tune for the task; set ES_ZOO_DEMO_MODEL to a Hub id or a
folder to serve another one.
"""

import os

from es_zoo.demos import launch

launch(
    "{name}",
    model=os.environ.get("ES_ZOO_DEMO_MODEL") or None,
    host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
    port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
)
'''


def render_space(name: str) -> dict[str, str]:
    """``{file name: text}`` of the Space of demo ``name``."""
    from huggingface_hub import SpaceCard, SpaceCardData

    demo = get_demo(name)
    models = [find_model(n).hub_id for n in (demo.default, demo.reverse_default) if n and find_model(n)]
    color_from, color_to = _COLORS.get(name, ("indigo", "purple"))
    data = SpaceCardData(title=demo.title, sdk="gradio", sdk_version=GRADIO_VERSION, app_file="app.py",
                         license="apache-2.0", models=models or None, tags=["es-zoo", "spanish"],
                         emoji=demo.emoji, colorFrom=color_from, colorTo=color_to, pinned=False,
                         short_description=demo.description[:60].rstrip(" ."))
    body = (f"\n# {demo.emoji} {demo.title}\n\n{demo.description}\n\n"
            f"Run it locally: `pip install \"es-zoo[demo]\"` then `es-zoo demo {name}`"
            + ("" if name == "zoo" else " (`--model DIR` for a local model)") + ".\n\n"
            "Made with [es-zoo](https://github.com/es-zoo/es-zoo): reproduce, evaluate, publish and demo the Spanish "
            "models BETO, BARTO, T5S and BERT2BERT.\n")
    card = SpaceCard(f"---\n{data.to_yaml()}\n---\n{body}")
    return {"app.py": _APP.format(name=name, title=demo.title),
            "README.md": sign_card(str(card)),
            "requirements.txt": f"es-zoo[demo]=={__version__}\ngradio=={GRADIO_VERSION}\n"}


def write_spaces(root: str | Path) -> list[Path]:
    """Write every demo's Space under ``root/<task>/``."""
    written = []
    for name in DEMOS:
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        for fname, text in render_space(name).items():
            (folder / fname).write_text(text, encoding="utf-8")
            written.append(folder / fname)
    return written


def publish_space(name: str, repo_id: str, private: bool = False, revision: str | None = None,
                  create_pr: bool = False, dry_run: str | Path | None = None, overwrite_card: bool = False,
                  echo: Callable[[str], Any] = print) -> dict:
    """``es-zoo spaces publish``: the Space of demo ``name`` in one commit (a Gradio Space repo)."""
    check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="es-zoo-space-") as tmp:
        files = {}
        for fname, text in render_space(name).items():
            (Path(tmp) / fname).write_text(text, encoding="utf-8")
            files[fname] = Path(tmp) / fname
        plan = Plan(repo_id, "space", files, f"es-zoo: publish the {name} demo (es-zoo {__version__}, "
                    f"gradio {GRADIO_VERSION})", "", private, revision, create_pr)
        return publish_files(plan, dry_run=dry_run, overwrite_card=overwrite_card, echo=echo)


if __name__ == "__main__":
    here = Path(__file__).resolve().parent.parent / "spaces"
    for p in write_spaces(here):
        print(p)
