"""Settings.plan: each phase's features with their switches and compiled
states, made once per resolved configuration and walked by every exchange."""

from __future__ import annotations

import gzip
from typing import Any

import simples
from simples.features import FEATURES


def app_with_features() -> simples.Server:
    app = simples.server()
    # a switch that is a function of the connection, and plain ones
    app.compression(lambda connection: "x-zip" in connection.headers, min_size=1)
    app.cors(origins=["https://a.example"])
    app.config(logger=lambda line: None)

    @app.get("/text")
    async def text(connection: simples.HTTPConnection) -> str:
        return "hello " * 20

    return app


def test_a_plan_pairs_each_feature_with_its_switch_and_state_in_registry_order() -> None:
    app = app_with_features()
    settings = app.settings
    assert settings.attach_plan is None  # made on first use
    plan = settings.plan("attach")
    assert [feature.name for feature, _, _ in plan] == ["cors", "compression"]
    assert [feature.name for feature in FEATURES if feature in settings.attaching] == [
        "cors",
        "compression",
    ]
    for feature, enabled, state in plan:
        assert state is settings.state(feature)
        assert enabled is settings.sections[feature.name]["enabled"]
    assert callable(plan[1][1])
    assert settings.attach_plan is plan
    assert [feature.name for feature, _, _ in settings.plan("finish")] == ["logger"]
    assert [feature.name for feature, _, _ in settings.plan("answer")] == ["cors"]


def test_exchanges_ask_a_function_switch_every_time_and_keep_the_plan() -> None:
    app = app_with_features()
    with simples.client(app).sync() as live:
        plain = live.get("/text", headers={"accept-encoding": "gzip"})
        plan = app.settings.attach_plan
        assert plan is not None
        zipped = live.get("/text", headers={"accept-encoding": "gzip", "x-zip": "1"})
        again = live.get("/text", headers={"accept-encoding": "gzip"})
        assert app.settings.attach_plan is plan
        body = ("hello " * 20).encode()
        assert plain.buffer() == gzip.decompress(zipped.buffer()) == again.buffer() == body
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in again.headers


def test_a_configuration_change_makes_new_plans() -> None:
    app = app_with_features()
    origin = {"origin": "https://a.example"}
    with simples.client(app).sync() as live:
        before = live.get("/text", headers=origin)
        first: Any = app.settings.attach_plan
        app.cors(False)
        after = live.get("/text", headers=origin)
        assert app.settings.attach_plan is not first
        assert [feature.name for feature, _, _ in app.settings.attach_plan or ()] == [
            "compression"
        ]
    assert before.headers["access-control-allow-origin"] == "https://a.example"
    assert "access-control-allow-origin" not in after.headers
