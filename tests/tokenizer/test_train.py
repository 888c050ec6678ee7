"""Training Loom's BPE: fixed special ids, loadable by tokenizers and transformers, reproducible."""

import json

import pytest
from tokenizers import Tokenizer

from tokenizer.config import FIXED_SPECIALS, TokenizerConfig
from tokenizer.sample import Sample
from tokenizer.train import CARD_FORMAT, new_tokenizer, save, train_from_sample, train_tokenizer


def batches_of(texts, size=64):
    """A DocumentBatches over the lines of texts (a line is a document: many small documents)."""
    lines = [line for t in texts for line in t.splitlines() if line.strip()]

    def batches():
        for i in range(0, len(lines), size):
            yield [[t] for t in lines[i : i + size]]

    return batches


def test_the_special_tokens_take_the_first_ids_in_a_fixed_order(trained):
    assert [trained.token_to_id(t) for t in FIXED_SPECIALS] == [0, 1, 2, 3, 4]
    assert trained.token_to_id("<reserved_5>") == 5
    assert trained.token_to_id("<reserved_15>") == 15
    assert trained.get_vocab_size() == 8000


def test_more_specials_follow_the_fixed_ones_and_fill_the_reserved_room(training_texts):
    cfg = TokenizerConfig(vocab_size=1000, special_tokens=["<unk>", "<|endofchunk|>"])
    tok = train_tokenizer(iter([training_texts[:20]]), cfg)
    assert tok.token_to_id("<unk>") == 5
    assert tok.token_to_id("<|endofchunk|>") == 6
    assert tok.token_to_id("<reserved_7>") == 7  # then the 11 reserved ones: 7 … 17
    assert tok.token_to_id("<reserved_17>") == 17
    assert tok.token_to_id("<reserved_18>") is None


def test_it_loads_with_tokenizers_and_transformers(trained, tmp_path):
    from transformers import PreTrainedTokenizerFast

    path = tmp_path / "tokenizer.json"
    trained.save(str(path))
    text = "Loom writes <s> text <image></image> text … </s>, 北京 and القاهرة."
    again = Tokenizer.from_file(str(path))
    fast = PreTrainedTokenizerFast(
        tokenizer_file=str(path), bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    ids = again.encode(text).ids
    assert ids[0] == 0 and ids[-1] == 1  # the post-processor adds <s> … </s>
    assert fast(text)["input_ids"] == ids
    plain = again.encode(text, add_special_tokens=False).ids
    assert again.decode(plain, skip_special_tokens=False) == text
    assert fast.pad_token_id == 2 and fast.convert_tokens_to_ids("<image>") == 3


def test_the_same_sample_and_seed_give_a_byte_identical_tokenizer(training_texts, tmp_path):
    cfg = TokenizerConfig(vocab_size=2000, sample_bytes=300_000, seed=7)
    files = []
    for run in ("a", "b"):
        tok, card = train_from_sample(Sample(batches_of(training_texts), cfg.sample_bytes, cfg.seed), cfg)
        files.append(save(tok, card, tmp_path / run)[0].read_bytes())
    assert files[0] == files[1]
    other = TokenizerConfig(vocab_size=2000, sample_bytes=300_000, seed=8)
    tok, card_other = train_from_sample(
        Sample(batches_of(training_texts), other.sample_bytes, other.seed), other
    )
    assert tok.to_str(pretty=True).encode() != files[0]
    assert card_other["sample_sha256"] != card["sample_sha256"]


def test_the_card_says_what_the_tokenizer_was_trained_on(training_texts, tmp_path):
    cfg = TokenizerConfig(vocab_size=2000, sample_bytes=200_000, seed=3, split_digits=True)
    sample = Sample(batches_of(training_texts), cfg.sample_bytes, cfg.seed)
    tok, card = train_from_sample(sample, cfg)
    _, card_path = save(tok, card, tmp_path)
    written = json.loads(card_path.read_text())
    assert written == card
    assert card["format"] == CARD_FORMAT and card["source"] == "trained"
    assert card["vocab_size"] == 2000 and card["seed"] == 3 and card["split_digits"] is True
    assert card["special_tokens"]["<image>"] == 3
    assert card["sample_bytes"] == sample.bytes
    assert card["corpus_bytes"] == sum(len(d[0].encode()) for b in batches_of(training_texts)() for d in b)
    assert 0.6 * 200_000 < card["sample_bytes"] < 1.6 * 200_000  # a hash sample: about the size asked
    assert len(card["sample_sha256"]) == 64 and card["loom_version"]


def test_split_digits_makes_every_digit_its_own_token():
    def pieces(split: bool) -> list[str]:
        tok = new_tokenizer(TokenizerConfig(split_digits=split))
        return [p for p, _ in tok.pre_tokenizer.pre_tokenize_str("cost 1234567 $")]

    assert pieces(True) == ["cost", "Ġ1", "2", "3", "4", "5", "6", "7", "Ġ$"]
    assert pieces(False) == ["cost", "Ġ123", "456", "7", "Ġ$"]  # runs of up to three digits


def test_nfc_normalization_is_part_of_the_tokenizer(trained):
    decomposed = "Cafe\u0301 Ame\u0301lie"
    assert trained.decode(trained.encode(decomposed, add_special_tokens=False).ids) == "Café Amélie"


@pytest.mark.parametrize(
    "bad", [{"vocab_size": 200}, {"special_tokens": ["<image>"]}, {"special_tokens": ["a", "a"]}]
)
def test_impossible_settings_are_refused(bad):
    with pytest.raises(ValueError):
        TokenizerConfig(**bad)
