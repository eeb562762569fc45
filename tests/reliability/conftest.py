"""Fixtures of the reliability suite (what they build is in harness.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from harness import Verdict, fit, job_config


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """A clean, finished run of :func:`harness.job_config` (copy it before changing anything)."""
    run_dir = tmp_path_factory.mktemp("reliability") / "reference"
    with pytest.MonkeyPatch.context() as mp:
        fit(job_config(run_dir), mp)
    return run_dir


@pytest.fixture
def copy_of_reference(reference, tmp_path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    return run_dir


@pytest.fixture
def verdict(record_property) -> Verdict:
    return Verdict(record_property)
