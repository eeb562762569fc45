"""The one place that turns a config's ``auto`` / ``cpu`` / ``cuda`` into a torch device name.

Example::

    resolve_device("auto", "llm.device")      # 'cpu' where no GPU is visible
"""

from __future__ import annotations


def resolve_device(device: str, key: str = "device") -> str:
    """``auto`` -> cuda when visible, else cpu; asking for cuda without one is an error naming ``key``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"{key}={device} but no CUDA device is visible; use {key}=auto or cpu")
    return device
