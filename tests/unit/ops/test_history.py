"""ops/history.py: `pulumi stack history --json` of the real engine, as deployments."""

from __future__ import annotations

from ops import history
from ops.pulumi_cli import PulumiCli, StackConfig
from tests.unit.ops.fakes import FakePulumi, P, fixture, pulumi_config


def test_history_json_shape_from_the_real_engine() -> None:
    raw = fixture("stack_history.json")
    newest = raw[0]
    assert set(newest) == {"version", "kind", "startTime", "message", "environment", "config", "result",
                           "endTime", "resourceChanges"}
    assert {e["version"] for e in raw} == {0}, "the file backend numbers no update"
    assert newest["config"][P + "jwtSecret"] == {"secret": True}
    assert newest["config"][P + "medusa"]["objectValue"] == {"storeCors": ["https://shop.example.com"]}
    built = raw[5]["config"][P + "blueBuild"]
    assert built == {"value": '{"context":"app"}', "objectValue": {"context": "app"}, "secret": False}


def test_history_parsing() -> None:
    current = StackConfig.from_pulumi(fixture("stack_config.json"))
    entries = history.parse_history(fixture("stack_history.json"), current)
    assert [e.number for e in entries] == [9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert [(e.kind, e.result) for e in entries if not e.succeeded_update] == [("refresh", "succeeded"),
                                                                               ("update", "failed")]
    by_number = {e.number: e for e in entries}
    assert by_number[1].deployment == history.Deployment("blue", "reg/shop:1.0.0", None)
    assert by_number[2].deployment == history.Deployment("green", "reg/shop:1.0.0", "reg/shop:1.1.0")
    assert by_number[3].deployment == history.Deployment("blue", "reg/shop:1.2.0-broken", "reg/shop:1.1.0")
    # Update 4 built blue from app/; its tag comes from the pin recorded by update 5.
    assert by_number[4].deployment == history.Deployment("blue", "shop/app:src-74621e3645e90f325e1f", "reg/shop:1.1.0")
    assert by_number[5].deployment == history.Deployment("green", "shop/app:src-74621e3645e90f325e1f",
                                                         "reg/shop:1.3.0")
    assert "rollback.py: back to update 4" in by_number[9].message
    assert by_number[9].end_time == "2026-11-22T07:00:49.000Z"


def test_a_build_without_a_recorded_pin_has_no_deployment() -> None:
    raw = fixture("stack_history.json")[5:]  # newest is update 4, the build; no newer entry
    entries = history.parse_history(raw)
    assert entries[0].deployment is None
    assert "blue was built from 'app'" in str(entries[0].problem)
    # A pin that is not a built tag is not taken for one.
    manual = StackConfig.from_pulumi(pulumi_config(activeColor="blue", blueImage="reg/shop:9"))
    assert history.parse_history(raw, manual)[0].deployment is None


def test_pulumi_cloud_version_numbers_are_used_when_present() -> None:
    raw = [dict(e, version=100 - i) for i, e in enumerate(fixture("stack_history.json"))]
    assert [e.number for e in history.parse_history(raw)][:3] == [100, 99, 98]


def test_history_is_read_page_by_page() -> None:
    one = fixture("stack_history.json")[0]
    raw = [dict(one, startTime=f"t{i}") for i in range(250)]
    fake = FakePulumi(fixture("stack_config.json"), history=raw)
    entries = history.read_history(fake, PulumiCli("production"), StackConfig({}))
    assert len(entries) == 250 and entries[0].number == 250 and entries[-1].number == 1
    assert fake.subcommands() == ["stack history"] * 3


def test_last_update() -> None:
    entries = history.parse_history(fixture("stack_history.json"))
    assert history.last_update(entries) is entries[0]
    failed_newest = history.parse_history(fixture("stack_history.json")[6:])  # newest: update 3, failed
    assert history.last_update(failed_newest).result == "failed"  # type: ignore[union-attr]
    assert history.last_update(failed_newest, succeeded=True).number == 2  # type: ignore[union-attr]
    assert history.last_update([]) is None
