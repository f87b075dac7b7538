"""pytest fixtures for simples apps (registered as the ``simples`` pytest plugin).

Define a fixture ``simples_app`` that returns your app; ``simples_client`` then
gives a blocking client for it, with the app's lifespan run around the test::

    @pytest.fixture
    def simples_app():
        from myproject.app import server
        return server

    def test_home(simples_client):
        assert simples_client.get("/").status == 200
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from . import client
from .sync import SyncClient


@pytest.fixture
def simples_client(simples_app: Any) -> Iterator[SyncClient]:
    """A ``simples.client(simples_app).sync()`` client, opened (lifespan started)."""
    with client(simples_app).sync() as opened:
        yield opened


@pytest.fixture
def simples_app() -> Any:
    """Override this fixture in your conftest.py: it returns the app under test."""
    raise pytest.UsageError(
        "the simples_client fixture needs a fixture named simples_app that returns your app"
    )
