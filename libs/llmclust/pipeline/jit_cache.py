"""Keep umap-learn's compiled numba code on disk, so a machine pays the compile once, not once a job.

umap-learn and pynndescent compile about 400 numba functions on the first fit in a process
(60-80 s of one core on a 2-core machine, 47-115 s on an H200 node) and ask numba to cache few of
them. Every job is a new process, so every job paid it again. :func:`keep_compiled` turns
numba's on-disk cache on for every function of the packages named, in ``$NUMBA_CACHE_DIR`` or
else ``<llmclust cache>/numba`` (``$LLMCLUST_CACHE``: the shared volume on a cluster). The next
process loads them instead; what it still compiles is the few functions left out below
(``python benchmarks/numba_cache.py`` measures both).

Left out: functions that take a compiled function as an argument (pynndescent's distance,
``dist``; umap's ``output_metric``). numba keys their compiled copies by that function's address,
which differs in every process: a cached copy would never be found again, and the cache would
grow by one copy a job.

Example::

    import umap
    keep_compiled(["umap", "pynndescent"])   # after importing them, before their first fit
"""

from __future__ import annotations

import inspect
import logging
import os
import sys

from llmclust.models import cache_root

log = logging.getLogger(__name__)

FUNCTION_PARAMETERS = {"dist", "output_metric"}  # where these packages pass a compiled function
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
        if not isinstance(function._cache, NullCache) or _takes_a_function(function):
            continue  # cached already (cache=True), or its copies could never be found again
        try:
            function.enable_caching()
            switched += 1
        except RuntimeError as err:  # no writable cache folder: compile as before
            log.warning("numba code is not cached on disk (%s); each job compiles it again", err)
            break
    _done.update(packages)
    log.debug("numba cache in %s: %d functions of %s", numba.config.CACHE_DIR, switched, packages)
    return switched


def _takes_a_function(function) -> bool:
    return bool(FUNCTION_PARAMETERS & set(inspect.signature(function.py_func).parameters))
