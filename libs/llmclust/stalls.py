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
    frames, and how long since the last ``beat``, every ``after_s`` seconds without one."""
    if after_s <= 0:
        raise ValueError(f"stall_report: after_s={after_s}; expected a positive number of seconds")
    target, done = threading.get_ident(), threading.Event()
    last_beat, last_report = [time.monotonic()], [time.monotonic()]

    def beat() -> None:
        last_beat[0] = time.monotonic()

    def report() -> None:
        now = time.monotonic()
        if now - max(last_beat[0], last_report[0]) < after_s:
            return
        last_report[0] = now
        frame = sys._current_frames().get(target)
        stack = "".join(traceback.format_stack(frame)[-frames:]) if frame is not None else "(thread gone)\n"
        log.warning("%s: no progress for %.0f s; it is in:\n%s", what, now - last_beat[0], stack.rstrip())

    def watch() -> None:
        while not done.wait(after_s / 4):
            try:
                report()
            except Exception:  # a report that fails must not end the watch
                log.exception("%s: the stall report failed", what)

    watcher = threading.Thread(target=watch, name=f"stall-report:{what}", daemon=True)
    watcher.start()
    try:
        yield beat
    finally:
        done.set()
        watcher.join(timeout=after_s)
