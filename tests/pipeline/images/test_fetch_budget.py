"""Concurrent image decodes share a pixel budget: 32 threads that each receive a huge picture do
not decode them all at once."""

from __future__ import annotations

import contextlib
import io
import threading

from PIL import Image

from pipeline.config import ImagesConfig
from pipeline.images.fetch import PixelBudget, _resizer


def waiting(budget: PixelBudget) -> int:
    return len(budget._room._waiters)  # threads blocked for room


def test_a_decode_waits_until_its_pixels_fit_in_the_budget():
    budget = PixelBudget(250)
    entered = threading.Event()

    def third() -> None:
        with budget.hold(100):
            entered.set()

    with contextlib.ExitStack() as held:
        held.enter_context(budget.hold(100))
        held.enter_context(budget.hold(100))
        thread = threading.Thread(target=third)
        thread.start()
        with budget._room:
            budget._room.wait_for(lambda: waiting(budget) == 1, timeout=10)
        assert waiting(budget) == 1 and not entered.is_set()  # blocked: 300 > 250
        held.pop_all().close()
    thread.join(10)
    assert entered.is_set() and budget.peak == 200 and budget.used == 0


def test_one_image_larger_than_the_budget_still_decodes_alone():
    budget = PixelBudget(10)
    with budget.hold(1000):
        assert budget.used == 1000
    assert budget.used == 0


def test_the_resizer_holds_the_pictures_pixels_while_it_decodes():
    picture = io.BytesIO()
    Image.new("RGB", (64, 48), "white").save(picture, "PNG")
    budget = PixelBudget(1_000_000)
    resized = _resizer(ImagesConfig(), budget)(io.BytesIO(picture.getvalue()))
    assert resized[0] is not None and budget.peak == 64 * 48 and budget.used == 0
