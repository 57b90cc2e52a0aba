"""The flip back a failed gate runs: only after its guard (the schema check) passes."""

from pathlib import Path

from providers.health_gate import run_rollback


def flip(marker: Path) -> dict[str, object]:
    return {"argv": ["sh", "-c", f"touch {marker} && echo route=live previous=green current=blue"], "env": {}}


def test_a_failing_guard_keeps_traffic_where_it_is_and_says_why(tmp_path: Path) -> None:
    marker = tmp_path / "flipped"
    guard = {"argv": ["sh", "-c", "echo 'schema check: refusing to send traffic to blue' >&2; exit 1"], "env": {}}
    message = run_rollback({**flip(marker), "guard": guard})
    assert not marker.exists()
    assert message.startswith("NOT rolled back, traffic stays where it is: schema check: refusing"), message


def test_a_passing_guard_lets_the_flip_back_run(tmp_path: Path) -> None:
    marker = tmp_path / "flipped"
    guard = {"argv": ["sh", "-c", "test -n \"$CHECK_ENV\""], "env": {"CHECK_ENV": "set"}}
    message = run_rollback({**flip(marker), "guard": guard})
    assert marker.exists() and message.startswith("rolled back: route=live"), message
    assert run_rollback(flip(tmp_path / "plain")).startswith("rolled back")


def test_the_steps_before_the_flip_back_run_first_and_a_failing_one_keeps_traffic(tmp_path: Path) -> None:
    marker, log = tmp_path / "flipped", tmp_path / "order"
    handed = {"argv": ["sh", "-c", f"test ! -e {marker} && echo workers >> {log} && echo 'started blue again'"],
              "env": {}}
    message = run_rollback({**flip(marker), "before": [handed]})
    assert log.read_text() == "workers\n" and marker.exists()
    assert message.startswith("rolled back: started blue again; route=live"), message
    refused = {"argv": ["sh", "-c", "echo 'no medusa-blue-worker to hand the queues back to' >&2; exit 1"], "env": {}}
    kept = tmp_path / "kept"
    message = run_rollback({**flip(kept), "before": [refused]})
    assert not kept.exists()
    assert message == "NOT rolled back, traffic stays where it is: no medusa-blue-worker to hand the queues back to"
