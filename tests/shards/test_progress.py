"""The loader's work list: what is left after any progress, re-dealt to any number of consumers."""

from __future__ import annotations

import numpy as np
import pytest

from shards.progress import WorkList, remaining


def sequences_of(block: int) -> int:
    return 1 + block % 4  # block b packs into 1..4 sequences


def run(work: WorkList, consumers: int, stop_after: dict[int, int] | None = None):
    """Each consumer's yielded (block, sequence) pairs and its progress, stopping consumer c after
    ``stop_after[c]`` sequences (the loader's own loop, without the packing)."""
    yielded, progress = [], {}
    for c in range(consumers):
        done, nxt, budget = 0, -1, (stop_after or {}).get(c, 10**9)
        while budget and (item := work.item(c + done * consumers)) is not None:
            block, start = item
            for s in range(start if nxt < 0 else nxt, sequences_of(block)):
                if not budget:
                    break
                yielded.append((block, s))
                budget -= 1
                done, nxt = (done + 1, -1) if s == sequences_of(block) - 1 else (done, s + 1)
            else:
                if nxt >= 0 or start >= sequences_of(block):
                    done, nxt = done + 1, -1
        progress[c] = (done, nxt)
    return yielded, progress


@pytest.mark.parametrize("before, after", [(1, 1), (2, 3), (3, 2), (6, 1), (1, 6)])
def test_what_is_left_is_exactly_what_was_not_yielded(before, after):
    rng = np.random.default_rng(before * 10 + after)
    full = WorkList(blocks=23)
    everything, _ = run(full, 1)
    for _ in range(20):
        stops = {c: int(rng.integers(0, 20)) for c in range(before)}
        first, progress = run(full, before, stops)
        left = remaining(full, progress, before)
        second, _ = run(left, after)
        assert len(first) + len(second) == len(everything)
        assert sorted(first + second) == sorted(everything)


def test_remaining_twice_in_a_row():
    full = WorkList(blocks=17)
    everything, _ = run(full, 1)
    first, progress = run(full, 3, {0: 2, 1: 5, 2: 0})
    left = remaining(full, progress, 3)
    second, progress = run(left, 2, {0: 3, 1: 1})
    third, _ = run(remaining(left, progress, 2), 4)
    assert sorted(first + second + third) == sorted(everything)


def test_an_endless_list_stays_compact():
    work = WorkList(blocks=None)
    _, progress = run(WorkList(blocks=40), 4, {0: 30, 1: 31, 2: 29, 3: 30})
    left = remaining(work, progress, 4)
    assert len(left.head) <= 8 and left.blocks is None
    assert left.item(10_000) is not None


def test_progress_of_every_consumer_is_needed():
    with pytest.raises(ValueError, match=r"consumers \[1\]"):
        remaining(WorkList(blocks=5), {0: (1, -1)}, 2)
