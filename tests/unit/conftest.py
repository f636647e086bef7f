"""Fixtures shared by unit tests: a store with a validator attached (the validation tests),
and the root logger put back after a CLI run."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from guards.clock import ManualClock
from guards.config import Validation
from guards.store import Store
from guards.validation import Validator


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[tuple[Store, Validator, ManualClock]]:
    """A real store with every migration applied, a validator attached, and its clock."""
    clock = ManualClock()
    store = await Store.open(tmp_path / "v.db", clock=clock)
    validator = Validator(Validation())
    validator.attach(store)
    yield store, validator, clock
    await store.close()


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The CLI sets up the root logger for a process; put it back for the next test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
