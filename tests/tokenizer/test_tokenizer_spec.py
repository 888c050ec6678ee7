"""The [tokenizer] table of a job spec."""

import pytest

from jobs.spec import load_job, parse_job
from pipeline.config import JobSpecError


def test_a_path_string_is_short_for_a_supplied_tokenizer_next_to_the_spec(tmp_path):
    (tmp_path / "job.toml").write_text(
        'output = "out"\ntokenizer = "tok/tokenizer.json"\n[[sources]]\npaths = ["x"]\n'
    )
    spec = load_job(tmp_path / "job.toml")
    assert spec.tokenizer.path == str(tmp_path / "tok/tokenizer.json")
    assert spec.tokenizer.enabled and spec.tokenizer.vocab_size == 64_000


def test_defaults_are_the_published_shape():
    spec = parse_job({"output": "o", "sources": [{"paths": ["x"]}]})
    cfg = spec.tokenizer
    assert (cfg.vocab_size, cfg.normalization, cfg.split_digits, cfg.encoder) == (
        64_000,
        "nfc",
        False,
        "tiktoken",
    )
    assert cfg.specials()[:5] == ["<s>", "</s>", "<pad>", "<image>", "</image>"]
    assert len(cfg.specials()) == 16


@pytest.mark.parametrize(
    ("tokenizer", "message"),
    [
        ({"vocab": 10}, "tokenizer.vocab: unknown key"),
        ({"vocab_size": 100}, "tokenizer.vocab_size: Input should be greater than or equal to 512"),
        ({"special_tokens": ["<s>"]}, "tokenizer.special_tokens"),
        ({"normalization": "nfkc"}, "tokenizer.normalization"),
    ],
)
def test_bad_settings_name_the_key(tokenizer, message):
    with pytest.raises(JobSpecError, match=message):
        parse_job({"output": "o", "sources": [{"paths": ["x"]}], "tokenizer": tokenizer})
