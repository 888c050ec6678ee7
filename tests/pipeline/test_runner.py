"""The runner: parts run once, failures leave no marker and are retried by the next run."""

import pytest

from pipeline.runner import Part, PartStats, StepFailed, marker_path, merge_additive, run_step
from pipeline.stage import Resources
from pipeline.storage import Storage


class CountingStep:
    name = "count"
    resources = Resources()

    def __init__(self, fail: set[str]):
        self.fail = fail
        self.ran: list[str] = []

    def parts(self) -> list[Part]:
        return [Part(f"p{i}", {"n": i}) for i in range(4)]

    def run_part(self, part: Part) -> PartStats:
        self.ran.append(part.name)
        if part.name in self.fail:
            raise OSError("disk on fire")
        return PartStats(rows_in=10, rows_out=part.args["n"], extra={"kinds": {"text": part.args["n"]}})


def test_a_failed_part_stops_the_step_and_is_retried_alone(tmp_path):
    storage = Storage(str(tmp_path))
    step = CountingStep(fail={"p2"})
    with pytest.raises(StepFailed, match=r"1 of 4 parts failed \(first: p2: OSError: disk on fire\)"):
        run_step(step, storage, ray=None)
    assert not storage.exists(marker_path("count", "p2")) and storage.exists(marker_path("count", "p3"))

    step = CountingStep(fail=set())
    result = run_step(step, storage, ray=None)
    assert step.ran == ["p2"]
    assert (result.parts, result.ran, result.stats.rows_in, result.stats.rows_out) == (4, 1, 40, 6)
    assert result.stats.extra == {"kinds": {"text": 6}}


def test_stats_merge_by_adding():
    merged = merge_additive({"a": 1, "k": {"x": 2}, "l": [1]}, {"a": 2, "k": {"x": 1, "y": 5}, "l": [2]})
    assert merged == {"a": 3, "k": {"x": 3, "y": 5}, "l": [1, 2]}
