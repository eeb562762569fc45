"""Keep umap-learn's compiled numba code on disk, so a machine pays the compile once, not once a job.

umap-learn and pynndescent compile about 400 numba functions on the first fit in a process
(60-80 s of one core on a 2-core machine, 47-115 s on an H200 node) and ask numba to cache few of
them. Every job is a new process, so every job paid it again. :func:`keep_compiled` turns
numba's on-disk cache on for every function of the packages named, in ``$NUMBA_CACHE_DIR`` or
else ``<llmclust cache>/numba`` (``$LLMCLUST_CACHE``: the shared volume on a cluster). The next
process loads them instead; what it still compiles is the few functions left out below
(``python benchmarks/numba_cache.py`` measures both).

Never written: compiled copies whose signature holds a compiled function (pynndescent's
distance, umap's metrics): numba keys them by that function's address, which differs in every
process, so they would never be found again and the cache would grow by one copy a job. A cache
folder that fails (full, read-only) costs the compile, as before, never the fit.

Example::

    import umap
    keep_compiled(["umap", "pynndescent"])   # after importing them, before their first fit
"""

from __future__ import annotations

import logging
import os
import sys

from llmclust.models import cache_root

log = logging.getLogger(__name__)

_done: set[str] = set()


def cache_dir() -> str:
    return os.environ.get("NUMBA_CACHE_DIR") or str(cache_root() / "numba")


def keep_compiled(packages: list[str]) -> int:
    """Cache, from now on, the compiled code of every numba function in the loaded modules of
    ``packages`` (once per package and process). Returns how many functions were switched on."""
    import numba
    from numba.core.caching import NullCache
    from numba.core.dispatcher import Dispatcher

    if not numba.config.CACHE_DIR:  # read when each function's cache is made, so setting it now counts
        numba.config.CACHE_DIR = cache_dir()
    modules = [m for name, m in list(sys.modules.items())
               if name.split(".")[0] in packages and name.split(".")[0] not in _done and m is not None]
    functions = {id(v): v for m in modules for v in vars(m).values() if isinstance(v, Dispatcher)}
    switched = 0
    for function in functions.values():
        if not isinstance(function._cache, NullCache):
            continue  # cached already (cache=True)
        try:
            function.enable_caching()
        except RuntimeError as err:  # numba found no folder it can write for this function's file
            log.debug("numba code of %s not cached: %s", function.py_func.__qualname__, err)
            continue
        _tolerate_failures(function._cache)
        switched += 1
    _done.update(packages)
    log.debug("numba cache in %s: %d functions of %s", numba.config.CACHE_DIR, switched, packages)
    return switched


def _tolerate_failures(cache) -> None:
    """Never save a copy keyed by a function's address; an I/O error is a miss, not a failure."""
    from numba.core import types

    load, save = cache.load_overload, cache.save_overload

    def load_overload(sig, target_context):
        try:
            return load(sig, target_context)
        except OSError as err:
            _warn_once(err)
            return None

    def save_overload(sig, data):
        if any(isinstance(t, types.Dispatcher) for t in sig):
            return
        try:
            save(sig, data)
        except OSError as err:
            _warn_once(err)

    cache.load_overload, cache.save_overload = load_overload, save_overload


_warned: list[str] = []


def _warn_once(err: OSError) -> None:
    if not _warned:
        _warned.append(str(err))
        import numba

        log.warning("numba's code cache in %s failed (%s); compiling instead", numba.config.CACHE_DIR, err)
