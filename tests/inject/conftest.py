"""Tiny pipelines (real diffusers classes, random weights), built once per test module."""

from __future__ import annotations

import os
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"


@pytest.fixture(scope="module")
def sd1() -> Any:
    from client.testing import tiny_pipeline

    return tiny_pipeline("sd1")


@pytest.fixture(scope="module")
def sd2() -> Any:
    from client.testing import tiny_pipeline

    return tiny_pipeline("sd2")


@pytest.fixture(scope="module")
def sdxl() -> Any:
    from client.testing import tiny_pipeline

    return tiny_pipeline("sdxl")


@pytest.fixture
def pipes(sd1: Any, sd2: Any, sdxl: Any) -> dict[str, Any]:
    return {"sd1": sd1, "sd2": sd2, "sdxl": sdxl}
