"""Encoding documents: exact round trips, HF's ids from the fast path, markers where the images are."""

import unicodedata

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from tokenizer.encode import Encoder, TokenizerMismatch


@pytest.fixture(scope="module")
def encoder(trained) -> Encoder:
    return Encoder(trained)


def held_back_texts(articles, sentences) -> list[str]:
    """Texts the tokenizer was not trained on: the other half of each (NFC, as the stage stores them)."""
    texts = [t for doc in articles[1::2] for t in doc if t]
    texts += [line for lines in sentences.values() for line in lines[len(lines) // 2 :]]
    return [unicodedata.normalize("NFC", t) for t in texts]


def test_loom_encodes_with_tiktoken(encoder):
    assert encoder.backend == "tiktoken"


def test_decoding_gives_back_every_article_and_sentence_exactly(encoder, articles, sentences):
    texts = held_back_texts(articles, sentences) + [t for doc in articles[::2] for t in doc if t]
    texts = [encoder.normalize(t) for t in texts]
    ids = encoder.encode_texts(texts)
    wrong = [t[:60] for t, i in zip(texts, ids, strict=True) if encoder.decode(i) != t]
    assert wrong == []
    scripts = {"zh": "的", "ja": "の", "ar": "ال", "ko": "이", "hi": "है", "ru": "не"}
    for lang, sign in scripts.items():  # CJK, Arabic, Devanagari, Cyrillic among them
        assert any(sign in t for t in sentences[lang])
        assert all(encoder.decode(i) == t for t, i in zip(texts, ids, strict=True) if sign in t)


def test_the_fast_path_gives_hf_ids_on_every_test_document(encoder, articles, sentences):
    texts = held_back_texts(articles, sentences)
    # whole documents too: many blocks in one text, newlines and runs of spaces between them
    texts += ["\n\n".join(t for t in doc if t) for doc in articles]
    texts += ["\n".join(lines) for lines in sentences.values()]
    texts += ["-" * n + " " * n + "=" * n + "\n" * n + "…" * n for n in range(1, 40)]
    fast, reference = encoder.encode_texts(texts), encoder.encode_hf(texts)
    assert sum(a == b for a, b in zip(fast, reference, strict=True)) == len(texts) > 9_000


def test_text_never_encodes_to_a_special_token(encoder):
    text = "A page that writes <image> and </image>, <s> and </s> and <pad> literally."
    ids = encoder.encode_texts([text])[0]
    assert not set(ids) & set(range(16))
    assert ids == encoder.encode_hf([text])[0]
    assert encoder.decode(ids) == text


def test_a_document_is_bos_text_image_markers_eos(encoder):
    texts = [
        ["Before the picture.", None, "After it.", None],
        [None, "A red kite over a beach"],
        ["Text only."],
    ]
    tokens = encoder.encode_documents(texts).to_pylist()
    interleaved, pair, text = tokens
    before, after = encoder.encode_texts(["Before the picture.", "After it."])
    assert interleaved == [0, *before, 3, 4, *after, 3, 4, 1]
    assert pair == [0, 3, 4, *encoder.encode_texts(["A red kite over a beach"])[0], 1]  # image first
    assert text[0] == 0 and text[-1] == 1
    assert encoder.decode(text[1:-1]) == "Text only."


def test_every_image_of_a_real_article_has_its_marker_pair_in_place(encoder, articles):
    with_images = [doc for doc in articles if None in doc][:20]
    assert len(with_images) >= 10
    for doc, ids in zip(with_images, encoder.encode_documents(with_images).to_pylist(), strict=True):
        assert ids.count(3) == ids.count(4) == doc.count(None)
        starts = [i for i, t in enumerate(ids) if t == 3]
        assert all(ids[i + 1] == 4 for i in starts)
        # the text between the markers decodes to the blocks between the images
        pieces, start = [], 1
        for i in [*starts, len(ids) - 1]:
            pieces.append(encoder.decode(ids[start:i]))
            start = i + 2
        blocks, run = [], []
        for t in doc:
            if t is None:
                blocks.append("".join(run))
                run = []
            else:
                run.append(t)
        blocks.append("".join(run))
        assert pieces == blocks


def test_a_tokenizer_tiktoken_cannot_reproduce_is_encoded_by_hf():
    vocab = {"<s>": 0, "</s>": 1, "<image>": 2, "</image>": 3, "[UNK]": 4, "hello": 5, "world": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(["<s>", "</s>", "<image>", "</image>"])
    enc = Encoder(tok)
    assert enc.backend == "tokenizers"
    assert enc.encode_documents([["hello world", None]]).to_pylist() == [[0, 5, 6, 2, 3, 1]]


def test_a_tokenizer_without_the_image_tokens_is_refused():
    tok = Tokenizer(models.WordLevel({"<s>": 0, "</s>": 1, "[UNK]": 2}, unk_token="[UNK]"))
    with pytest.raises(ValueError, match="no special token <image>, </image>"):
        Encoder(tok)


def test_verification_stops_at_ids_that_differ_from_hf(trained):
    enc = Encoder(trained)

    class Wrong:
        def encode_to_numpy(self, text, allowed_special, disallowed_special):
            return np.array([5], np.uint32)

    enc.fast = Wrong()
    with pytest.raises(TokenizerMismatch, match=r"doc-a: tiktoken and HF tokenizers disagree at token 0"):
        enc.encode_documents([["Hello there."]], verify=1, keys=["doc-a"])
    enc.encode_documents([["Hello there."]], verify=0)  # unverified: trusted
