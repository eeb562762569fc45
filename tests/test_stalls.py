"""stall_report: a silent block says where it sits; a block that reports progress says nothing."""

import logging
import time

from llmclust.stalls import stall_report


def waits_for_a_compile():
    time.sleep(0.5)


def test_a_silent_block_logs_where_it_is(caplog):
    with caplog.at_level(logging.WARNING, logger="llmclust.stalls"), stall_report("DPO worker", after_s=0.2):
        waits_for_a_compile()
    reports = [r.getMessage() for r in caplog.records]
    assert reports and reports[0].startswith("DPO worker: no progress for 0 s; it is in:")
    assert "in waits_for_a_compile" in reports[0] and "time.sleep(0.5)" in reports[0]
    assert len(reports) <= 3  # once per after_s, not on every check


def test_beats_keep_it_quiet(caplog):
    with caplog.at_level(logging.WARNING, logger="llmclust.stalls"), stall_report("steps", after_s=0.3) as beat:
        for _ in range(6):
            time.sleep(0.1)
            beat()
    assert not caplog.records
