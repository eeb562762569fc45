"""Optional dependencies, one way: import it, or fail with what needs it and how to install it.

faiss (``.[cpu]`` or ``.[gpu]``), vLLM (``.[gpu]``), DeepSpeed (``.[gpu]``, and ``.[dev]`` for the tests), cuML (RAPIDS) are extras;
the CPU path works without the GPU ones. Code that can do without a module catches the
ImportError (the report's map falls back to PCA without umap-learn).

Example::

    faiss = import_faiss()
    vllm = optional_import("vllm", "llm.backend=vllm needs vllm: pip install 'llmclust[gpu]'")
"""

from __future__ import annotations

import importlib


def optional_import(module: str, explanation: str):
    """``importlib.import_module(module)``, or an ImportError that says what needs it and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(explanation) from None


def import_faiss():
    """faiss, or an error saying which extra installs it (faiss-cpu and faiss-gpu are alternatives)."""
    return optional_import("faiss", "faiss is not installed: pip install -e '.[cpu]' on CPU machines or "
                                   "'.[gpu]' on GPU machines (never both: they install the same package)")
