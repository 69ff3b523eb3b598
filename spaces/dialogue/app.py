"""Spanish dialogue: an es-zoo demo, as a Hugging Face Space or locally (`python app.py`).

The model defaults to the catalogue's fine-tune for the task; set ES_ZOO_DEMO_MODEL to a Hub id or a
folder to serve another one.
"""

import os

from es_zoo.demos import launch

launch(
    "dialogue",
    model=os.environ.get("ES_ZOO_DEMO_MODEL") or None,
    host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
    port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
)
