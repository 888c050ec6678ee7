"""docs/JOBSPEC.md names every [tokenizer] key with its default; docs/TOKENIZER.md every card key."""

from pathlib import Path

from tokenizer.config import TokenizerConfig

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_tokenizer_key_is_in_the_job_spec_doc():
    section = (
        (DOCS / "JOBSPEC.md").read_text(encoding="utf-8").split("### `[tokenizer]`")[1].split("\n### ")[0]
    )
    for key in TokenizerConfig.model_fields:
        assert f"| `{key}` |" in section, f"[tokenizer] {key} is not in docs/JOBSPEC.md"


def test_every_card_key_is_in_the_tokenizer_doc(trained):
    from tokenizer.sample import Sample
    from tokenizer.train import train_from_sample

    def batches():
        yield [["a small sample of text"] for _ in range(3)]

    _, card = train_from_sample(Sample(batches, 100, 0), TokenizerConfig(vocab_size=600))
    doc = (DOCS / "TOKENIZER.md").read_text(encoding="utf-8")
    for key in card:
        assert f"`{key}`" in doc, f"card key {key} is not in docs/TOKENIZER.md"
