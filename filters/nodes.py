"""OBELICS-style node rules: the paragraphs of interleaved documents are cleaned before documents are judged.

A web page turned into an interleaved document still carries navigation crumbs, captions reduced to
"Photo: AP", share-button residue and link lists between its real paragraphs. Dropping the whole
page for them wastes its good text and images; keeping them teaches a model boilerplate. OBELICS
(Laurençon et al. 2023, "OBELICS: An Open Web-Scale Filtered Dataset of Interleaved Image-Text
Documents"; huggingface/OBELICS, ``web_document_filtering.py``) therefore filters at node level first: every
paragraph of every text node is measured and removed when it fails a rule, and only then do the
document rules (here Gopher, C4, FineWeb, the lexicon and the classifiers) decide on what is left.

The rules, in the order they are checked (the first failing one names the removal ``node_<rule>``):

* ``min_words`` / ``max_words``: words are whitespace-separated (runs of Chinese, Japanese, Thai,
  Lao, Khmer and Myanmar segmented into words, :func:`filters.text.words`), lowercased, with
  leading/trailing punctuation and digits stripped; a token that is nothing but punctuation or
  digits is not a word (OBELICS' ``get_words_from_text``);
* ``char_repetition``: BigScience/ROOTS' character repetition ratio: of the paragraph's character
  n-grams, the share of occurrences taken by the ``floor(sqrt(distinct))`` most frequent ones
  (only n-grams that repeat count);
* ``word_repetition``: ROOTS' word repetition ratio: the share of word n-grams that occur more
  than once;
* ``special_char_ratio``: the share of characters that are not letters (whitespace, digits,
  punctuation, symbols, emoji), ROOTS' ``special_characters`` written as "not ``str.isalpha``";
* ``stop_word_ratio``: the share of words on :data:`ENGLISH_STOP_WORDS`, only for documents whose
  ``meta.language`` is ``stop_words_language`` or unknown;
* ``flagged_word_ratio``: flagged words / words by the safety lexicon (``filters.lexicon``), only
  when ``[filters.lexicon] paths`` are set;
* ``punctuation_ratio``: among word tokens and the marks ``, ; : ? ! .``, the share of marks, only
  for paragraphs of at least ``punctuation_min_words`` tokens (OBELICS' node-level rule against
  link lists and menus: with its 0.001 threshold, a long paragraph with no mark at all goes). The
  same marks of other scripts count too: the CJK ones (``，、；：？！。``, full- and halfwidth),
  Khmer ``។ ៕`` and Myanmar ``၊ ။``, so that a Chinese or Japanese paragraph is not taken for a
  menu. Not judged: paragraphs mostly in Thai or Lao script, which end a sentence with a space,
  not a mark (the rule would remove every long one).

Left out: OBELICS' common-word ratio (it needs their word-frequency dictionary, which is not
published), and node-level language id and perplexity (off in OBELICS' node-level config; Loom's
language stage judges blocks on its own).

A block whose every paragraph goes becomes ``""`` and is removed with its position
(:func:`filters.base.edit_blocks`): the images around it stay, in order. A document whose text is all
removed but that still holds images stays (the document rules decide); one left with nothing is
dropped as ``no_text_left``. Only ``interleaved`` documents are touched: a text document is judged
as a whole by the document rules, a pair's caption by the pair filters.
"""

from __future__ import annotations

import logging
import math
import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from filters.base import block_texts, drop_detail, edit_blocks, kind_mask, meta_values
from filters.config import LexiconConfig, NodeRulesConfig
from filters.text import paragraphs, words
from pipeline.stage import Resources

if TYPE_CHECKING:
    from filters.lexicon import WordLists

log = logging.getLogger(__name__)

#: English function words (articles, determiners, pronouns, prepositions, conjunctions, auxiliary
#: and modal verbs, the commonest adverbs and light verbs, contractions), written for Loom. It matches
#: the spirit of OBELICS' list (``obelics/utils`` ``STOPWORDS``: about 300 closed-class words plus web
#: spellings such as "b/c", "get", "made", "thanks"): the 0.3 minimum assumes a broad list like this
#: one, not Gopher's eight words. Words are compared lowercased, with ’ read as '.
ENGLISH_STOP_WORDS = frozenset(
    """
    a an the this that these those some any no every each either neither both all half few many much
    more most other another such what which whose whatever whichever

    i me my mine myself we us our ours ourselves you your yours yourself yourselves he him his himself
    she her hers herself it its itself they them their theirs themselves one ones oneself
    who whom whoever whomever somebody someone something anybody anyone anything everybody everyone
    everything nobody none nothing

    about above across after against along alongside amid amidst among amongst around as at before
    behind below beneath beside besides between beyond by despite down during except for from in
    inside into like near nearby of off on onto opposite out outside over past per since than through
    throughout till to toward towards under underneath unlike until unto up upon versus via with
    within without

    and or but nor so yet if because although though while whereas whether unless once when whenever
    where wherever why how however then there here

    be am is are was were been being have has had having do does did doing will would shall should
    can could may might must ought

    not also very too only just even ever still again already rather quite now well back instead

    get gets got getting give given made make use used including based according regarding due
    else thanks sure

    i'm i'd i'll i've you're you'd you'll you've he's he'd she's she'd it's we're we'd we'll we've
    they're they'd they'll they've that's there's here's what's who's let's
    isn't aren't wasn't weren't don't doesn't didn't haven't hasn't hadn't won't wouldn't can't
    couldn't shouldn't mustn't
    """.split()
)

#: Stripped from both ends of a word before it is counted (OBELICS strips its special characters):
#: ASCII punctuation and digits, typographic quotes and dashes, CJK punctuation, invisible spaces.
_STRIP_CHARS = (
    string.punctuation
    + string.digits
    + "‘’‚‛“”„‟«»‹›–—―‐‑…•·°©®™§¶†‡¡¿×"
    + "。、，！？：；「」『』（）【】《》〈〉・～"
    + "\u0e2f\u0e4f\u0e5a\u0e5b\u0eaf\u17d4\u17d5\u17d6\u104a\u104b"  # Thai, Lao, Khmer, Myanmar marks
    + "\u00a0\u200b\u200c\u200d\u2060\ufeff"
)

#: OBELICS' punctuation tokens: words (letters, digits, apostrophes) and these marks, with their
#: CJK (fullwidth, ideographic, halfwidth), Khmer and Myanmar forms.
_PUNCTUATION = ",;:?!." + "，、；：？！。．\uff61\uff64" + "\u17d4\u17d5" + "\u104a\u104b"
_PUNCT_TOKENS = re.compile(rf"[\w']+|[{_PUNCTUATION}]")
_THAI_LAO = re.compile("[\u0e00-\u0eff]")


def paragraph_words(text: str) -> list[str]:
    """The words a rule counts: :func:`filters.text.words`, lowercased, punctuation and digits
    stripped from both ends; a token with nothing left is not a word."""
    out = []
    for token in words(text):
        word = token.strip(_STRIP_CHARS)
        if word:
            out.append(word.lower().replace("’", "'"))
    return out


def char_repetition_ratio(text: str, n: int) -> float:
    """ROOTS' character repetition ratio: the share of all character ``n``-gram occurrences taken by
    the ``floor(sqrt(distinct n-grams))`` most frequent ones, counting only n-grams that repeat."""
    if len(text) < n:
        return 0.0
    counts = Counter(text[i : i + n] for i in range(len(text) - n + 1))
    freqs = sorted(counts.values(), reverse=True)
    repeated = sum(1 for f in freqs if f > 1)
    top = min(math.isqrt(len(freqs)), repeated)
    return sum(freqs[:top]) / sum(freqs)


def word_repetition_ratio(word_list: Sequence[str], n: int) -> float:
    """ROOTS' word repetition ratio: the share of word ``n``-grams that occur more than once."""
    if len(word_list) < n:
        return 0.0
    counts = Counter(zip(*(word_list[i:] for i in range(n)), strict=False))
    total = sum(counts.values())
    return sum(c for c in counts.values() if c > 1) / total


def special_char_ratio(text: str) -> float:
    """The share of characters that are not letters (whitespace, digits, punctuation, symbols)."""
    if not text:
        return 0.0
    return 1.0 - sum(map(str.isalpha, text)) / len(text)


def stop_word_ratio(word_list: Sequence[str], stop_words: frozenset[str] = ENGLISH_STOP_WORDS) -> float:
    """The share of ``word_list`` (lowercased words) that are stop words."""
    if not word_list:
        return 0.0
    return sum(1 for w in word_list if w in stop_words) / len(word_list)


def unpunctuated_script(text: str) -> bool:
    """Whether most of ``text`` (spaces aside) is Thai or Lao, scripts without sentence marks."""
    if _THAI_LAO.search(text) is None:
        return False
    return len(_THAI_LAO.findall(text)) * 2 > len(text) - text.count(" ")


def punctuation_ratio(text: str, min_tokens: int) -> float:
    """OBELICS' punctuation ratio: marks ``, ; : ? ! .`` among word tokens and marks. A text of
    fewer than ``min_tokens`` tokens is too short to judge: 1.0."""
    tokens = _PUNCT_TOKENS.findall(text)
    if not tokens:
        return 0.0
    if len(tokens) < min_tokens:
        return 1.0
    return sum(1 for t in tokens if t in _PUNCTUATION) / len(tokens)


class NodeRules:
    """Stage ``node_rules``: removes the paragraphs of interleaved documents that fail a node rule
    (see the module docstring), reporting each in ``_blocks_dropped`` as ``node_<rule>`` with
    ``{"score", "threshold", "block", "text"}``. Counter ``node_rules_paragraphs``: paragraphs
    examined (the block ledger holds the removed ones)."""

    name = "node_rules"
    resources = Resources(cpus=1)

    def __init__(self, cfg: NodeRulesConfig, lexicon: LexiconConfig):
        self.cfg = cfg
        self.lexicon_paths = tuple(lexicon.paths)
        self.counters: Counter = Counter()

    def _lexicon(self) -> WordLists | None:
        """The safety lexicon (read on the first batch, once per process: ``WordLists.load``
        caches it, the lexicon stage shares it); None when the flagged-word rule is off."""
        if not self.lexicon_paths or self.cfg.max_flagged_word_ratio is None:
            return None
        from filters.lexicon import WordLists

        return WordLists.load(list(self.lexicon_paths))

    def failure(
        self, paragraph: str, language: str | None, lexicon: WordLists | None = None
    ) -> tuple[str, float, float] | None:
        """The first rule ``paragraph`` fails, as (reason, score, threshold); None when it passes."""
        cfg = self.cfg
        word_list = paragraph_words(paragraph)
        n_words = len(word_list)
        if cfg.min_words is not None and n_words < cfg.min_words:
            return "node_min_words", n_words, cfg.min_words
        if cfg.max_words is not None and n_words > cfg.max_words:
            return "node_max_words", n_words, cfg.max_words
        if cfg.max_char_repetition is not None:
            score = char_repetition_ratio(paragraph, cfg.char_repetition_n)
            if score > cfg.max_char_repetition:
                return "node_char_repetition", score, cfg.max_char_repetition
        if cfg.max_word_repetition is not None:
            score = word_repetition_ratio(word_list, cfg.word_repetition_n)
            if score > cfg.max_word_repetition:
                return "node_word_repetition", score, cfg.max_word_repetition
        if cfg.max_special_char_ratio is not None:
            score = special_char_ratio(paragraph)
            if score > cfg.max_special_char_ratio:
                return "node_special_char_ratio", score, cfg.max_special_char_ratio
        if cfg.min_stop_word_ratio is not None and language in (None, cfg.stop_words_language):
            score = stop_word_ratio(word_list)
            if score < cfg.min_stop_word_ratio:
                return "node_stop_word_ratio", score, cfg.min_stop_word_ratio
        if lexicon is not None and cfg.max_flagged_word_ratio is not None:
            flagged, total = lexicon.count(paragraph, language)
            score = flagged / total if total else 0.0
            if score > cfg.max_flagged_word_ratio:
                return "node_flagged_word_ratio", score, cfg.max_flagged_word_ratio
        if cfg.min_punctuation_ratio is not None and not unpunctuated_script(paragraph):
            score = punctuation_ratio(paragraph, cfg.punctuation_min_words)
            if score < cfg.min_punctuation_ratio:
                return "node_punctuation_ratio", score, cfg.min_punctuation_ratio
        return None

    def clean(
        self, blocks: Sequence[str | None], language: str | None, lexicon: WordLists | None = None
    ) -> tuple[list[str | None], list[tuple[str, str]]]:
        """One document's blocks with failing paragraphs removed ("" for a block left empty), and
        the (reason, detail) of each removed paragraph."""
        out: list[str | None] = []
        removed: list[tuple[str, str]] = []
        for i, block in enumerate(blocks):
            if block is None:
                out.append(None)
                continue
            kept = []
            paras = paragraphs(block)
            self.counters["node_rules_paragraphs"] += len(paras)
            for para in paras:
                fail = self.failure(para, language, lexicon)
                if fail is None:
                    kept.append(para)
                else:
                    reason, score, threshold = fail
                    removed.append((reason, drop_detail(score, threshold, block=i, text=para[:60])))
            out.append(block if len(kept) == len(paras) and kept else "\n\n".join(kept))
        return out, removed

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self.cfg.enabled or not batch.num_rows:
            return batch
        interleaved = kind_mask(batch, ["interleaved"])
        if not any(interleaved):
            return batch
        lexicon = self._lexicon()
        languages = meta_values(batch, "language")
        texts, removed = [], []
        changed = False
        for blocks, language, touch in zip(block_texts(batch), languages, interleaved, strict=True):
            if not touch:
                texts.append(blocks)
                removed.append([])
                continue
            new_blocks, gone = self.clean(blocks, language, lexicon)
            changed = changed or new_blocks != blocks
            texts.append(new_blocks)
            removed.append(gone)
        if not changed:
            return batch
        log.debug("node rules: %d paragraphs removed from %d documents", sum(map(len, removed)), len(texts))
        return edit_blocks(batch, texts, removed)
