"""A plain transformers folder for the LLM, which training needs (the Trainer refuses GGUF).

A GGUF file is de-quantised once (about 34 s for SmolLM2-135M on 2 cores) and saved with
``save_pretrained`` to a cache folder keyed by the file's path and size; later calls return
the folder at once. A folder given as the model is returned as it is.

Example::

    model_dir = trainable_model_dir("SmolLM2-135M-Instruct")   # ~/.cache/llmclust/dequantised/...
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path

from llmclust.models import resolve_model

log = logging.getLogger(__name__)

CACHE = Path(os.environ.get("LLMCLUST_CACHE", Path.home() / ".cache" / "llmclust")) / "dequantised"


def trainable_model_dir(model: str) -> str:
    """Folder with fp32 weights + tokenizer for ``model`` (a folder, a .gguf file or an embedded name)."""
    path = Path(resolve_model(model))
    if path.is_dir():
        return str(path)
    key = hashlib.sha256(f"{path}:{path.stat().st_size}".encode()).hexdigest()[:12]
    target = CACHE / f"{path.stem}-{key}"
    if (target / "config.json").exists():
        return str(target)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("de-quantising %s once into %s", path, target)
    model_obj = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    # the weights are plain floats now; drop the GGUF flags, else saving and the Trainer refuse them
    if hasattr(model_obj.config, "quantization_config"):
        del model_obj.config.quantization_config
    model_obj.hf_quantizer = None
    model_obj.is_quantized = False
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model_obj.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target)  # a kill never leaves a half-written folder that looks finished
    return str(target)
