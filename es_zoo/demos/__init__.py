"""Gradio demos for every es-zoo task (``es-zoo demo TASK``) and the Spaces under ``spaces/``.

Each demo defaults to the catalogue's fine-tuned checkpoint for its task and takes any Hub id, local
folder or run folder (``--model`` or the ``ES_ZOO_DEMO_MODEL`` environment variable). Offline, or with a
model of the wrong kind, the demo still starts and says which model to point it at.

Example:
    >>> from es_zoo.demos import build
    >>> app = build("ner", model="runs/beto-tiny/glues/ner/model")  # doctest: +SKIP
    >>> app.launch()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

# the demo registry lives in its own module, which es_zoo.demos.ui imports too (no cycle through this package)
from es_zoo.demos.registry import DEMO_ALIASES, DEMOS, Demo, demo_name, get_demo

__all__ = ["DEMO_ALIASES", "DEMOS", "Demo", "build", "demo_name", "get_demo", "launch"]


def build(name: str, model: str | None = None, reverse_model: str | None = None, results: tuple = (),
          strict: bool = False) -> Any:
    """The ``gradio.Blocks`` of demo ``name`` (see :mod:`es_zoo.demos.ui`)."""
    from es_zoo.demos.ui import build_blocks

    return build_blocks(get_demo(name), model=model, reverse_model=reverse_model, results=results, strict=strict)


def launch(name: str, model: str | None = None, port: int = 7860, host: str = "127.0.0.1", share: bool = False,
           max_queue: int = 32, concurrency: int = 1, reverse_model: str | None = None, results: tuple = (),
           block: bool = True, on_ready: Any = None, strict: bool = False) -> Any:
    """Start demo ``name`` hardened: localhost unless ``host`` says otherwise, no share link unless asked,
    analytics off, a bounded queue (``max_queue`` waiting requests, ``concurrency`` at a time), no file
    access beyond Gradio's own temporary files. The model and results are loaded first, so a demo that
    cannot work fails before it listens; ``on_ready(app)`` is called once it listens."""
    import os

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    app = build(name, model=model, reverse_model=reverse_model, results=results, strict=strict)
    app.queue(max_size=max_queue, default_concurrency_limit=concurrency)
    app.launch(server_name=host, server_port=port, share=share, max_file_size="1mb", allowed_paths=[],
               show_error=False, enable_monitoring=False, ssr_mode=False, prevent_thread_lock=True,
               quiet=True)
    if on_ready is not None:
        on_ready(app)
    if block:
        app.block_thread()
    return app
