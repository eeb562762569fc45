"""stall_report: a silent block says where it sits and for how long; a block that reports progress says nothing."""

import logging
import re
import time

import pytest
from llmclust.stalls import stall_report


def waits_for_a_compile():
    time.sleep(0.7)


def test_a_silent_block_logs_where_it_is_and_for_how_long(caplog):
    with caplog.at_level(logging.WARNING, logger="llmclust.stalls"), stall_report("DPO worker", after_s=0.2):
        waits_for_a_compile()
    reports = [r.getMessage() for r in caplog.records]
    assert reports and all(re.match(r"DPO worker: no progress for \d+ s; it is in:\n", r) for r in reports)
    assert "in waits_for_a_compile" in reports[0] and "time.sleep(0.7)" in reports[0]
    assert 2 <= len(reports) <= 4  # once every after_s of silence, not on every check


def test_beats_keep_it_quiet(caplog):
    with caplog.at_level(logging.WARNING, logger="llmclust.stalls"), stall_report("steps", after_s=1.0) as beat:
        for _ in range(8):
            time.sleep(0.1)
            beat()
    assert not caplog.records


def test_a_period_must_be_positive():
    with pytest.raises(ValueError, match="after_s=0; expected a positive number"), stall_report("x", after_s=0):
        pass
