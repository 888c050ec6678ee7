"""Word segmentation for the scripts written without spaces between words: Han and kana (Chinese,
Japanese), Thai, Lao, Khmer and Myanmar.

One engine for all of them: ICU's word break iterator (ICU4C 78, bundled in the ``icu4py`` wheel),
which segments Han and kana with ICU's CJK dictionary (Chinese and Japanese words alike: no language
decision is needed), and Thai, Lao, Khmer and Burmese with a dictionary per script. Everything it
needs ships inside the wheel; nothing is downloaded at run time.

:func:`segment_runs` takes *runs*: maximal stretches of characters of :data:`UNSPACED` (no
whitespace, no Latin, no punctuation outside these blocks), as :mod:`filters.text` cuts them out of
a text. All runs of a text are segmented in one call to ICU (joined by newlines, which are a word
boundary on both sides), so the cost is one break iterator per text, not per run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from icu4py.breakers import WordBreaker

log = logging.getLogger(__name__)

#: The characters segmented into words (a regular-expression character class body). Han: CJK
#: unified ideographs with extension A and the compatibility block, plus 々 〆 〇 〻 (they
#: belong to Japanese/Chinese words: 人々, 〆切); kana: hiragana, katakana (with ・ and ー), the
#: phonetic extensions and halfwidth katakana; then the Thai, Lao, Khmer (with Khmer symbols) and
#: Myanmar blocks (with extensions A and B). Basic Multilingual Plane only: the rare ideographs of
#: extensions B–H (U+20000 up) are split as any other character, as before segmentation, because
#: a class reaching past U+FFFF makes the check every text goes through 50% slower.
HAN_KANA = (
    "\u3005-\u3007\u303b"  # 々 〆 〇 〻
    "\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f"  # kana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # Han
)
SOUTHEAST_ASIAN = (
    "\u0e00-\u0e7f"  # Thai
    "\u0e80-\u0eff"  # Lao
    "\u1780-\u17ff\u19e0-\u19ff"  # Khmer
    "\u1000-\u109f\ua9e0-\ua9ff\uaa60-\uaa7f"  # Myanmar
)
UNSPACED = HAN_KANA + SOUTHEAST_ASIAN

_SEPARATOR = "\n"  # between runs: ICU breaks before and after a newline (UAX #29, WB3a/WB3b)
_LOCALE = ""  # the root locale: ICU picks the dictionary by script, whatever the locale


def segment(run: str) -> list[str]:
    """The words of one run (a string of :data:`UNSPACED` characters only)."""
    return list(WordBreaker(run, _LOCALE))


def segment_runs(runs: Sequence[str]) -> list[list[str]]:
    """The words of each run, in one pass of ICU's break iterator over all of them."""
    if len(runs) <= 1:
        return [segment(run) for run in runs]
    # runs hold no space: the words joined by spaces, cut at the separators, cut at the spaces
    # (a third faster than appending each word to its run's list in Python)
    joined = " ".join(WordBreaker(_SEPARATOR.join(runs), _LOCALE))
    out = [group.split(" ") for group in joined.split(f" {_SEPARATOR} ")]
    if len(out) != len(runs):  # cannot happen (a run holds no newline); keep the words right if it does
        log.warning("segment: %d runs came back as %d; segmenting them one by one", len(runs), len(out))
        return [segment(run) for run in runs]
    return out
