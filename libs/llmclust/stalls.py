"""Where a silent piece of work sits: :func:`stall_report` logs the calling thread's innermost
frames whenever it has not reported progress for a while.

Made for the steps that have been silent on GPU nodes (a Ray Train worker's DeepSpeed set-up,
a first step that compiles kernels, a collective that waits): a cut-off run then says where it
was instead of only that it was cut.

Example::

    with stall_report("DPO worker", after_s=60) as beat:
        model = load()
        beat()                       # progress: the next report waits another 60 s
        trainer.train()              # a callback calls beat() after each step
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator

log = logging.getLogger(__name__)


@contextmanager
def stall_report(what: str, after_s: float = 90.0, frames: int = 12) -> Iterator[Callable[[], None]]:
    """Yield ``beat``; while the block runs, a watcher thread logs this thread's last ``frames``
    frames each time ``beat`` has not been called for ``after_s`` seconds."""
    target, last, done = threading.get_ident(), [time.monotonic()], threading.Event()

    def beat() -> None:
        last[0] = time.monotonic()

    def watch() -> None:
        while not done.wait(after_s / 4):
            idle = time.monotonic() - last[0]
            if idle < after_s:
                continue
            frame = sys._current_frames().get(target)
            stack = "".join(traceback.format_stack(frame)[-frames:]) if frame is not None else "(thread gone)\n"
            log.warning("%s: no progress for %.0f s; it is in:\n%s", what, idle, stack.rstrip())
            last[0] = time.monotonic()  # the next report after another after_s

    watcher = threading.Thread(target=watch, name=f"stall-report:{what}", daemon=True)
    watcher.start()
    try:
        yield beat
    finally:
        done.set()
        watcher.join()
