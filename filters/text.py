"""Words, tokens, lines, paragraphs and sentences as the text filters count them, language-aware
where it matters.

Spaced scripts split on whitespace. Chinese, Japanese, Thai, Lao, Khmer and Myanmar are written
without spaces between words: each run of those scripts (:data:`filters.segment.UNSPACED`) is
segmented into words by a dictionary (ICU's word break iterator, :mod:`filters.segment`), so
"東京都は今日" is 東京 / 都 / は / 今日 and a Thai sentence is its words, not one "word". Whatever
lies outside those runs (Latin, digits, punctuation) is split as in any other text. A text without
any of those scripts never reaches the segmenter: its words and tokens are what they always were.

Two granularities:

* :func:`words` — whitespace words, unspaced runs segmented. What "a word" means to a person; the
  node rules, the C4 line rules and the lexicon ratio count these.
* :func:`tokens` — words with their punctuation split off, the way a word tokenizer does it. The
  Gopher and FineWeb rules were published with one (datatrove runs spaCy's English tokenizer):
  "end." is two tokens, "don't" two, "well-known" three, while "3.5", "10,000", "e.g", URLs and
  "example.com" stay whole. One regular expression over the whole text reproduces spaCy's
  decisions on ordinary text at a fraction of its cost; the rare differences (an e-mail address or
  "COVID-19" become three tokens, an abbreviation loses its final period to a token of its own)
  move a ratio by a token or two.

:func:`count_sentences` is the sentence counter of the C4 rule: a boundary after a sentence
terminal that a word follows, except after an ellipsis and after common abbreviations (spaCy's
sentencizer over its tokens, which datatrove uses for English, decides the same way on ordinary
text; no model, no per-sentence objects).
"""

from __future__ import annotations

import re
import string
import unicodedata

from filters.segment import HAN_KANA, UNSPACED, segment_runs

_HAS_CJK = re.compile(f"[{HAN_KANA}]")
_HAS_UNSPACED = re.compile(f"[{UNSPACED}]")
# a run of an unspaced script (group 1) or any other non-space stretch (group 2)
_UNSPACED_WORDS = re.compile(f"([{UNSPACED}]+)|([^\\s{UNSPACED}]+)")

#: Characters that end a sentence (Unicode's Sentence_Terminal, for the scripts web text mostly
#: uses). The ellipsis "…" is not one. FineWeb counts lines ending in one of these.
SENTENCE_END = frozenset(
    ".!?"  # Latin, Cyrillic, Greek, …
    "\u0589"  # Armenian full stop
    "\u061f\u06d4\u061e"  # Arabic question mark, Urdu full stop, Arabic triple dot
    "\u0700\u0701\u0702"  # Syriac
    "\u07f9"  # NKo
    "\u0964\u0965"  # Devanagari danda, double danda (Hindi, Bengali, …)
    "\u104a\u104b"  # Myanmar
    "\u1362\u1367\u1368"  # Ethiopic
    "\u166e"  # Canadian syllabics
    "\u17d4\u17d5"  # Khmer
    "\u1803\u1809"  # Mongolian
    "\u203c\u203d\u2047\u2048\u2049"  # ‼ ‽ ⁇ ⁈ ⁉
    "\u2e2e\u2e3c"  # reversed question mark, stenographic full stop
    "\u3002"  # ideographic full stop 。
    "\ufe52\ufe56\ufe57"  # small forms
    "\uff01\uff0e\uff1f\uff61"  # fullwidth ！ ． ？ halfwidth ｡
)
#: Terminals written without a following space (CJK): a boundary even when text follows directly.
_UNSPACED_END = "\u3002\uff01\uff1f\uff61"

_CONTRACTION = r"(?i:s|re|ve|ll|d|m|t)\b"
# Words keep inner periods ("example.com", "node.js"; not "end.Start"), apostrophes ("o'clock",
# "d'un"; not an English contraction, which is a token of its own), and ":<>=/" before a digit
# ("HTTP/1.1", "level=6"; "km/h" splits); a sign, slash or "@" at a word's start stays with it.
_JOINER = rf"(?:(?<![a-z])\.|\.(?![A-Z])|['’](?!{_CONTRACTION})|[:<>=/](?=\d))"
_TOKEN_PATTERN = rf"""
    (?:https?://|www\.)\S+?(?=[)\]}}>"'”’»,.;:!?]*(?:\s|$))   # a URL; trailing punctuation split off
    | [{UNSPACED}]+                                           # a run of an unspaced script (segmented)
    | \d+(?:[.,:/]\d+)+                                       # 3.5  10,000  5:30  1/2
    | (?<=\w)['’]{_CONTRACTION}                     # it 's, they 're, do n't ("don" "'t")
    | (?:[^\W\d_]\.)+(?![^\W\d_])                              # U.S.  e.g.  p.m.  J.
    | (?:(?<!\S)[-+/@]+)?[^\W{UNSPACED}]+(?:{_JOINER}[^\W{UNSPACED}]+)*  # words, -81, /usr, @user
    | \.{{2,}} | -{{2,}}                                      # an ellipsis, a dash
    | [^\w\s]                                                 # any other mark: a token of its own
    """
_TOKEN = re.compile(_TOKEN_PATTERN, re.VERBOSE)
# the same, a run of an unspaced script in group 1 and any other token in group 2
_TOKEN_OR_RUN = re.compile(f"([{UNSPACED}]+)|({_TOKEN_PATTERN})", re.VERBOSE)

#: Abbreviations whose period does not end a sentence (besides single letters and "e.g"-like forms).
ABBREVIATIONS = frozenset(
    """Mr Mrs Ms Messrs Dr Prof Rev Gen Gov Sen Rep Adm St Mt Jr Sr Bros Inc Corp Co Ltd co vs
    Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec""".split()
)
# A run of marks, the closing quotes/brackets after it, the whitespace after those.
_MARK_RUN = re.compile(r"""([^\w\s"'”’»)\]]+)["'”’»)\]]*(\s*)""")
_WORD_CHAR = re.compile(r"\w")
_LETTERS_DOTTED = re.compile(r"[^\W\d_]|(?:[^\W\d_]{1,2}\.)+[^\W\d_]{1,2}")  # J, e.g, U.S, Ph.D

_TRAILING = frozenset(',.;:!?)]"”»')  # a mark that is its own token after a plain word
_PUNCT_CACHE: dict[str, bool] = {}


def words(text: str) -> list[str]:
    """The words of ``text``: whitespace-separated; runs of an unspaced script (Han, kana, Thai,
    Lao, Khmer, Myanmar) segmented into words, apart from what surrounds them ("Wi-Fiを" is
    "Wi-Fi" and "を")."""
    if _HAS_UNSPACED.search(text) is None:
        return text.split()
    return _segmented(_UNSPACED_WORDS.findall(text))


def _segmented(parts: list[tuple[str, str]]) -> list[str]:
    """(run, other) matches → words: each run replaced by its words (one ICU pass for all)."""
    runs = [run for run, _ in parts if run]
    if not runs:
        return [other for _, other in parts]
    segmented = iter(segment_runs(runs))
    out: list[str] = []
    append, extend = out.append, out.extend
    for run, other in parts:
        if run:
            extend(next(segmented))
        else:
            append(other)
    return out


_TOKENS_KEPT = 2_000_000  # tokens of the last texts kept (~100 MB): a batch's worth, so that every
_tokens_cache: dict[str, list[str]] = {}  # stage of a batch finds the tokens the first one made
_tokens_held = 0


def tokens(text: str) -> list[str]:
    """Word-tokenizer tokens: words with punctuation split off, unspaced runs segmented into words.

    Several filter families read the tokens of the same text (Gopher repetition, Gopher quality,
    FineWeb): the last texts' tokens are kept, so each text is tokenized once. The list is shared:
    callers must not change it."""
    global _tokens_held
    found = _tokens_cache.get(text)
    if found is None:
        found = _tokenize(text)
        while _tokens_cache and _tokens_held + len(found) > _TOKENS_KEPT:
            _tokens_held -= len(_tokens_cache.pop(next(iter(_tokens_cache))))  # the oldest
        if len(found) <= _TOKENS_KEPT:
            _tokens_cache[text] = found
            _tokens_held += len(found)
    return found


def _tokenize(text: str) -> list[str]:
    """:func:`tokens`, computed.

    The same tokens as the regular expression over the whole text (:func:`tokens_slow`), about
    four times faster: most whitespace words are plain letters, or letters and one trailing mark,
    and need no regular expression. A text holding an unspaced script takes the definition."""
    if _HAS_UNSPACED.search(text) is not None:
        return tokens_slow(text)
    out: list[str] = []
    append, extend, findall = out.append, out.extend, _TOKEN.findall
    for word in text.split():
        if word.isalpha():
            append(word)
        elif word[-1] in _TRAILING and word[:-1].isalpha() and (len(word) > 2 or word[-1] != "."):
            append(word[:-1])
            append(word[-1])
        else:
            extend(findall(word))
    return out


def tokens_slow(text: str) -> list[str]:
    """:func:`tokens` as one regular expression over the whole text, its runs of an unspaced
    script segmented (the definition)."""
    return _segmented(_TOKEN_OR_RUN.findall(text))


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Han character or kana."""
    return _HAS_CJK.search(text) is not None


def has_unspaced(text: str) -> bool:
    """Whether ``text`` holds a character of a script written without spaces between words."""
    return _HAS_UNSPACED.search(text) is not None


def is_unspaced_word(token: str) -> bool:
    """Whether ``token`` (of :func:`words` or :func:`tokens`) is a word the segmenter made."""
    return _HAS_UNSPACED.match(token) is not None


def is_punct_char(char: str) -> bool:
    """A punctuation mark (Unicode category P*), an ASCII symbol (``$+<=>^`|~``) or a control."""
    known = _PUNCT_CACHE.get(char)
    if known is None:
        cat = unicodedata.category(char)
        known = cat[0] == "P" or cat[0] == "C" or char in string.punctuation
        _PUNCT_CACHE[char] = known
    return known


def is_symbol(token: str) -> bool:
    """A token made of punctuation only ("," "..." "--" "»"): Gopher does not count it as a word."""
    return all(is_punct_char(c) for c in token)


def paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs: text separated by blank lines."""
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def lines(text: str) -> list[str]:
    """Non-empty lines, stripped."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def count_sentences(line: str) -> int:
    """Sentences in one line of text: 1 + the sentence boundaries inside it (0 for a blank line).

    A sentence ends at a run of marks holding a sentence terminal (:data:`SENTENCE_END`) that
    stands apart (whitespace after it, a CJK terminal, or "end.Start"); the next word starts the
    next sentence. Not an end: an ellipsis ("..", "...", "…"), and a lone period after a single
    letter, dotted letters ("e.g", "U.S") or one of :data:`ABBREVIATIONS`.
    """
    if not line.strip():
        return 0
    count, pending, prev_end = 1, False, 0
    for match in _MARK_RUN.finditer(line):
        start = match.start()
        if pending and _WORD_CHAR.search(line, prev_end, start):
            count += 1
            pending = False
        prev_end = match.end()
        if _ends_sentence(line, match.group(1), start, bool(match.group(2)), prev_end):
            pending = True
    if pending and _WORD_CHAR.search(line, prev_end):
        count += 1
    return count


def _ends_sentence(line: str, run: str, start: int, spaced: bool, end: int) -> bool:
    if not any(c in SENTENCE_END for c in run):
        return False
    if set(run) <= {".", "…"} and run != ".":
        return False  # an ellipsis
    if not spaced and not any(c in _UNSPACED_END for c in run):
        # "end.Start" splits; "3.5", "example.com", "a?b" do not
        glued = run == "." and line[start - 1 : start].islower() and line[end : end + 1].isupper()
        if not glued:
            return False
    if run[0] == ".":
        word_start = max(line.rfind(" ", 0, start), line.rfind("\t", 0, start)) + 1
        before = line[word_start:start].lstrip("\"'“‘«([")
        if before in ABBREVIATIONS or _LETTERS_DOTTED.fullmatch(before):
            # the period belongs to the abbreviation: what follows it decides ("e.g.," is no end)
            return len(run) > 1 and run[1] != "." and any(c in SENTENCE_END for c in run[1:])
    return True
