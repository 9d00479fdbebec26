"""Fixtures for policy tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from itertools import count
from pathlib import Path

import pytest

from tests.policy.helpers import write_files

BundleWriter = Callable[..., Path]


@pytest.fixture
def write_bundle(tmp_path: Path) -> BundleWriter:
    """Write a bundle directory: ``write_bundle({"a.rego": "..."}, name="b")``."""
    numbers = count()

    def write(files: Mapping[str, str | bytes], name: str | None = None) -> Path:
        directory = tmp_path / (name or f"bundle{next(numbers)}")
        directory.mkdir(parents=True, exist_ok=True)
        return write_files(directory, files)

    return write
