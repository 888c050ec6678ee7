"""The ``language`` stage: lid.176 on real labelled sentences, then what it writes and drops."""

from __future__ import annotations

import json
import shutil
import sys
from collections import Counter

import pyarrow as pa
import pytest

from filters import classifier
from filters.config import LanguageConfig
from filters.langid import LanguageId, default_model_path
from pipeline.schema import DOC_SCHEMA, empty_meta

#: lingua's file names → lid.176's codes. All 20 are ISO 639-1 codes in both (lid.176 names Chinese
#: `zh`, Ukrainian `uk`, Vietnamese `vi` like lingua does); the map stays explicit so that a new
#: file whose code lid.176 spells differently (e.g. Norwegian `nb` vs `no`) fails here, not silently.
LINGUA_TO_LID = {
    code: code
    for code in (
        "ar cs de en es fr hi id it ja ko nl pl pt ru sv tr uk vi zh".split()  # noqa: SIM905
    )
}

ENGLISH = (
    "The river rose overnight after three days of heavy rain, and by morning the low fields "
    "along the valley were under water. Farmers moved their animals to higher ground."
)
GERMAN = (
    "Der Gemeinderat hat am Dienstag beschlossen, die alte Brücke über den Fluss im nächsten "
    "Frühjahr abzureißen und durch einen Neubau zu ersetzen."
)
IMAGE = {"url": "https://example.org/a.jpg", "sha256": None, "width": None, "height": None, "alt": None}


def doc(texts: list[str | None], kind: str = "text", doc_id: str = "d") -> dict:
    images = [None if t is not None else IMAGE for t in texts]
    return {
        "id": doc_id,
        "source": "test",
        "kind": kind,
        "url": f"https://example.org/{doc_id}",
        "texts": texts,
        "images": images,
        "meta": empty_meta(),
    }


def table(*docs: dict) -> pa.Table:
    return pa.Table.from_pylist(list(docs), schema=DOC_SCHEMA)


def languages(out: pa.Table) -> list[str | None]:
    return [m["language"] for m in out["meta"].to_pylist()]


def language_scores(out: pa.Table) -> list[float | None]:
    return [m["scores"]["language_score"] for m in out["meta"].to_pylist()]


def drops(out: pa.Table) -> list[str | None]:
    if "_drop_reason" not in out.column_names:
        return [None] * out.num_rows
    return out["_drop_reason"].to_pylist()


def test_lingua_sentences_are_identified(shared_data):
    """lid.176 on lingua's labelled sentences (20 languages, up to 1,000 each): ≥ 0.95 overall."""
    folder = shared_data / "langid" / "lingua" / "sentences"
    assert sorted(p.stem for p in folder.glob("*.txt")) == sorted(LINGUA_TO_LID)
    docs, truth = [], []
    for path in sorted(folder.glob("*.txt")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                docs.append(doc([line.strip()], doc_id=f"{path.stem}-{n}"))
                truth.append(LINGUA_TO_LID[path.stem])
    out = LanguageId(LanguageConfig())(table(*docs))

    right, total = Counter(), Counter()
    for expected, got in zip(truth, languages(out), strict=True):
        total[expected] += 1
        right[expected] += got == expected
    for code in sorted(total):
        sys.stdout.write(f"{code}: {right[code] / total[code]:.3f} of {total[code]}\n")
    overall = sum(right.values()) / sum(total.values())
    sys.stdout.write(f"overall: {overall:.4f} of {sum(total.values())} sentences\n")
    assert overall >= 0.95
    assert min(right[c] / total[c] for c in total) >= 0.85  # no language left behind (worst: cs 0.90)
    assert not any(drops(out))  # the default config scores, it drops nothing


def test_wikipedia_paragraphs_are_all_identified(shared_data):
    samples = json.loads((shared_data / "langid/resiliparse-wikipedia/samples.json").read_text("utf-8"))
    out = LanguageId(LanguageConfig())(table(*(doc([text], doc_id=code) for code, text in samples.items())))
    assert dict(zip(samples, languages(out), strict=True)) == {code: code for code in samples}
    assert all(s > 0.8 for s in language_scores(out))


def test_allowed_languages_and_min_score_drop_with_their_reason():
    batch = table(
        doc([ENGLISH], doc_id="en"),
        doc([GERMAN], doc_id="de"),
        doc(["12345 67890"], doc_id="digits"),  # no language: lid.176 guesses with a low score
        doc([GERMAN, None], kind="pair", doc_id="caption"),  # pairs are not in the default kinds
    )
    out = LanguageId(LanguageConfig(allowed=["en"], min_score=0.5))(batch)

    assert languages(out) == ["en", "de", "en", "de"]
    assert drops(out) == [None, "language_not_allowed", "language_score", None]
    de, digits = (json.loads(d) for d in out["_drop_detail"].to_pylist()[1:3])
    assert de["language"] == "de" and de["threshold"] is None and de["score"] > 0.9
    assert digits == {"language": "en", "score": pytest.approx(digits["score"]), "threshold": 0.5}
    assert digits["score"] < 0.5
    assert language_scores(out)[3] > 0.9  # the pair is scored all the same


def test_kinds_decide_what_is_dropped_not_what_is_scored():
    batch = table(doc([GERMAN], doc_id="text"), doc([None, GERMAN], kind="interleaved", doc_id="il"))
    out = LanguageId(LanguageConfig(allowed=["en"], kinds=["text"]))(batch)
    assert languages(out) == ["de", "de"]
    assert drops(out) == ["language_not_allowed", None]


def test_a_document_without_text_has_no_language_and_stays():
    batch = table(doc([""], doc_id="empty"), doc([None], kind="pair", doc_id="image-only"))
    out = LanguageId(LanguageConfig(allowed=["en"], min_score=0.9))(batch)
    assert languages(out) == [None, None]
    assert language_scores(out) == [None, None]
    assert drops(out) == [None, None]


def interleaved_with_a_german_block(n: int = 1) -> pa.Table:
    """English text and images, and a German block in the middle."""
    # "Guten Tag!" is German too, but shorter than block_min_chars (40): too short to judge alone
    blocks = [ENGLISH, None, GERMAN, None, ENGLISH + " It fell by Sunday.", "Guten Tag!"]
    return table(*(doc(blocks, "interleaved", doc_id=str(i)) for i in range(n)))


def test_other_language_blocks_are_removed_with_drop():
    out = LanguageId(LanguageConfig(blocks="drop"))(interleaved_with_a_german_block())

    texts = out["texts"].to_pylist()[0]
    images = out["images"].to_pylist()[0]
    assert texts == [ENGLISH, None, None, ENGLISH + " It fell by Sunday.", "Guten Tag!"]
    assert [im is not None for im in images] == [False, True, True, False, False]  # positions kept
    (report,) = out["_blocks_dropped"].to_pylist()[0]
    assert report["reason"] == "block_language"
    detail = json.loads(report["detail"])
    assert (detail["block"], detail["language"], detail["threshold"]) == (2, "de", 0.8)
    assert detail["text"] == GERMAN[:60]
    assert languages(out) == ["en"]
    assert drops(out) == [None]


def test_other_language_blocks_are_only_counted_with_keep():
    stage = LanguageId(LanguageConfig(blocks="keep"))
    batch = interleaved_with_a_german_block()
    out = stage(batch)
    assert out["texts"].to_pylist() == batch["texts"].to_pylist()
    assert "_blocks_dropped" not in out.column_names
    assert stage.counters["blocks_other_language"] == 1


def test_blocks_of_a_dropped_document_are_left_alone():
    out = LanguageId(LanguageConfig(blocks="drop", allowed=["de"]))(interleaved_with_a_german_block())
    assert drops(out) == ["language_not_allowed"]
    assert "_blocks_dropped" not in out.column_names


def test_the_configured_model_file_is_used(tmp_path):
    copy = tmp_path / "my-lid.ftz"
    shutil.copy(default_model_path(), copy)
    out = LanguageId(LanguageConfig(model=str(copy)))(table(doc([ENGLISH])))
    assert languages(out) == ["en"]

    missing = LanguageId(LanguageConfig(model=str(tmp_path / "absent.ftz")))  # building is cheap…
    with pytest.raises(FileNotFoundError, match="absent.ftz"):  # …the model is read on first use
        missing(table(doc([ENGLISH])))


def test_documents_and_blocks_of_a_batch_go_to_fasttext_in_one_call(monkeypatch):
    calls = []

    def counting_predict(model, lines, k):
        calls.append(len(lines))
        return classifier.predict(model, lines, k)

    monkeypatch.setattr("filters.langid.predict", counting_predict)
    out = LanguageId(LanguageConfig(blocks="drop"))(interleaved_with_a_german_block(50))
    assert calls == [50 * 4]  # 50 documents, 3 blocks each of at least 40 characters
    reasons = Counter(r["reason"] for reports in out["_blocks_dropped"].to_pylist() for r in reports)
    assert reasons == {"block_language": 50}
    assert all(GERMAN not in texts for texts in out["texts"].to_pylist())
