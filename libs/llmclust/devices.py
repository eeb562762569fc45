"""Torch devices, in one place: a config's ``auto`` / ``cpu`` / ``cuda`` as a device name, and what a
Ray Train worker runs on.

A worker's device is what it really sees, not what it asked Ray for: a worker granted a GPU by
Ray on a machine whose torch has no CUDA (a local Ray with a declared GPU, as the tests start
one) trains on the CPU with the gloo backend instead of failing on ``cuda:0`` and NCCL.

Example::

    resolve_device("auto", "llm.device")      # 'cpu' where no GPU is visible
    collective_backend(use_gpu=True)          # 'nccl' where torch has NCCL, else 'gloo'
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


def worker_device():
    """The torch device of this Ray Train worker: its GPU when CUDA is visible, else the CPU."""
    import ray.train.torch
    import torch

    return ray.train.torch.get_device() if torch.cuda.is_available() else torch.device("cpu")


def collective_backend(use_gpu: bool) -> str:
    """torch.distributed backend for Ray Train workers: NCCL for GPU workers where torch has it, else gloo."""
    import torch.distributed

    return "nccl" if use_gpu and torch.distributed.is_nccl_available() else "gloo"
