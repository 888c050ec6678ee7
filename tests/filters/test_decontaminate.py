"""Decontamination: text that quotes an evaluation item goes, and the ledger says which item.

The examples use a small trivia benchmark: a page that quotes a question is dropped with a ledger row
naming the file and the item; a page that does not is kept; in ``blocks`` mode only the quoting
paragraph goes and the images stay in place; case and punctuation do not hide a quote; items shorter
than an n-gram are skipped; JSONL, parquet and text files give the same items; bad files are one-line
errors that name the key. The demo's planted pages are checked in tests/filters/test_step.py.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.config import DecontaminateConfig
from filters.decontaminate import Decontaminate, NgramIndex, check_eval_file, read_items
from filters.step import ORDER, FiltersStep, filter_stages, take_blocks
from jobs.spec import check_inputs, load_job, parse_job
from pipeline.config import JobSpecError
from pipeline.runner import Part
from pipeline.schema import DOC_SCHEMA, empty_meta
from pipeline.stage import split_dropped
from pipeline.step import Data
from pipeline.storage import Storage

QUESTION = (
    "Which river flows beneath the old stone bridge that the people of Millbrook rebuilt after the "
    "spring flood of 1911?"
)  # 20 words
ITEMS = [
    {"id": "q-river", "question": QUESTION, "answer": "The Wend."},
    {"id": "q-short", "question": "Who founded Lakeside?", "answer": "Two sisters."},  # 5 words
    {
        "id": "q-ferry",
        "question": "What was the name of the steam ferry that carried passengers across the lake to "
        "Fairhaven until 1952?",
        "answer": "The Morning Star.",
    },
]
PROSE = (
    "The council approved the new budget on Tuesday, after a long debate about schools, roads and the "
    "library, and the mayor said that the vote was a turning point for the town."
)


def image(name: str) -> dict[str, Any]:
    return {"url": f"https://img.example/{name}.jpg", "sha256": None, "width": 640, "height": 480, "alt": ""}


def document(doc_id: str, *nodes: str | dict, kind: str | None = None) -> dict:
    """A document from its nodes in reading order: a str is a text block, a dict an image."""
    return {
        "id": doc_id,
        "source": "test",
        "kind": kind or ("interleaved" if any(isinstance(n, dict) for n in nodes) else "text"),
        "url": f"https://news.example/{doc_id}",
        "texts": [n if isinstance(n, str) else None for n in nodes],
        "images": [n if isinstance(n, dict) else None for n in nodes],
        "meta": empty_meta(),
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def benchmark(tmp_path) -> Path:
    return write_jsonl(tmp_path / "trivia.jsonl", ITEMS)


def decontaminate(benchmark: Path, *docs: dict, **cfg: Any) -> tuple[list[dict], list[dict], list[dict]]:
    """Run the stage as the filters step does: (kept documents, document ledger, block ledger)."""
    stage = Decontaminate(DecontaminateConfig(paths=[str(benchmark)], id_field="id", **cfg))
    table, blocks = take_blocks(
        stage(pa.Table.from_pylist(list(docs), schema=DOC_SCHEMA)), "filters", stage.name
    )
    out = split_dropped(table, "filters", stage.name)
    return out.kept.to_pylist(), out.dropped.to_pylist(), blocks.to_pylist()


# --------------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------------


def test_a_page_that_quotes_a_question_is_dropped_and_the_ledger_names_the_item(benchmark):
    quiz = document("quiz", f"{PROSE}\n\nOur quiz asked: {QUESTION} Send your answers by Friday.")
    kept, dropped, _ = decontaminate(benchmark, quiz)
    assert kept == []
    [row] = dropped
    assert (row["id"], row["stage"], row["reason"]) == ("quiz", "decontaminate", "decontaminate")
    # the question's 20 words hold 8 13-grams; the page goes on with other words than the answer
    assert json.loads(row["detail"]) == {"file": "trivia.jsonl", "item": "q-river", "ngrams": 8, "items": 1}


def test_a_page_without_a_quote_is_kept_untouched(benchmark):
    near = document("near", f"{PROSE} Which river flows beneath the old stone bridge in Millbrook?")
    kept, dropped, blocks = decontaminate(benchmark, near, document("plain", PROSE))
    assert [d["id"] for d in kept] == ["near", "plain"] and dropped == [] and blocks == []
    assert kept[0]["texts"] == near["texts"]


def test_a_quote_across_an_image_is_found_in_document_mode(benchmark):
    words = QUESTION.split()
    split = document("split", " ".join(words[:8]), image("a"), " ".join(words[8:]))
    _, dropped, _ = decontaminate(benchmark, split)
    assert [r["id"] for r in dropped] == ["split"]


def test_blocks_mode_removes_the_quoting_paragraph_and_keeps_the_images_in_place(benchmark):
    page = document(
        "page",
        PROSE,
        image("a"),
        f"Our quiz asked: {QUESTION}",  # a block of one quoting paragraph: it goes with its position
        image("b"),
        f"{PROSE}\n\nAnd last week: {ITEMS[2]['question']}\n\nThanks for reading.",  # a paragraph of three
    )
    kept, dropped, blocks = decontaminate(benchmark, page, mode="blocks")
    assert dropped == []
    [doc] = kept
    assert doc["texts"] == [PROSE, None, None, f"{PROSE}\n\nThanks for reading."]
    assert [im["url"] if im else None for im in doc["images"]] == [
        None,
        "https://img.example/a.jpg",
        "https://img.example/b.jpg",
        None,
    ]
    assert doc["meta"]["scores"]["blocks_dropped"] == 2
    details = [json.loads(r["detail"]) for r in blocks]
    assert [(r["stage"], r["reason"]) for r in blocks] == [("decontaminate", "decontaminate")] * 2
    assert [(d["block"], d["item"], d["file"]) for d in details] == [
        (2, "q-river", "trivia.jsonl"),
        (4, "q-ferry", "trivia.jsonl"),
    ]
    assert details[0]["text"] == f"Our quiz asked: {QUESTION}"[:60]


def test_blocks_mode_drops_a_document_left_with_nothing(benchmark):
    _, dropped, blocks = decontaminate(benchmark, document("only", QUESTION), mode="blocks")
    assert [(r["id"], r["reason"]) for r in dropped] == [("only", "no_text_left")]
    assert [r["reason"] for r in blocks] == ["decontaminate"]


# --------------------------------------------------------------------------------------------------
# Normalisation and short texts
# --------------------------------------------------------------------------------------------------


def test_case_punctuation_and_spacing_do_not_hide_a_quote(benchmark):
    shouted = QUESTION.replace("stone", "stone,").upper().replace(" ", "  ")
    dashed = QUESTION.replace("old stone bridge", "old—stone-bridge").replace("?", "…")
    kept, dropped, _ = decontaminate(benchmark, document("shouted", shouted), document("dashed", dashed))
    assert kept == [] and {r["id"] for r in dropped} == {"shouted", "dashed"}


def test_chinese_characters_are_words(tmp_path):
    item = "长江是中国最长的河流，全长约六千三百公里。"  # 19 characters, 19 words
    bench = write_jsonl(tmp_path / "zh.jsonl", [{"text": item}])
    _, dropped, _ = decontaminate(
        bench, document("zh", f"课本上说：{item}"), document("other", "黄河是中国第二长的河流。")
    )
    assert [json.loads(r["detail"])["item"] for r in dropped] == ["1"]  # no id field: the line number


def test_short_items_are_skipped_and_counted(benchmark):
    index = NgramIndex.read([str(benchmark)], ["question", "answer"], "id", ngram=13)
    assert [name for _, name in index.names] == ["q-river", "q-ferry"]
    assert [(f.items, f.skipped) for f in index.files] == [(2, 1)]
    # the short item's text alone matches nothing: it has no 13-gram
    kept, dropped, _ = decontaminate(benchmark, document("short", "Who founded Lakeside? Two sisters."))
    assert dropped == [] and len(kept) == 1


def test_a_text_shorter_than_an_ngram_never_matches(tmp_path):
    # an item of exactly 13 words has one 13-gram; dedup's shingler gives a 12-word text one shingle
    # of its 12 words, which must not stand for an n-gram
    bench = write_jsonl(
        tmp_path / "b.jsonl", [{"text": "one two three four five six seven eight nine ten a b c"}]
    )
    twelve = document("twelve", "one two three four five six seven eight nine ten a b")
    thirteen = document("thirteen", "One two three four five six seven eight nine ten a b c.")
    kept, dropped, _ = decontaminate(bench, twelve, thirteen)
    assert [d["id"] for d in kept] == ["twelve"] and [r["id"] for r in dropped] == ["thirteen"]


def test_min_words_raises_the_bar_and_may_not_be_below_ngram(benchmark):
    index = NgramIndex.read([str(benchmark)], ["question"], "id", ngram=13, min_words=20)
    assert [name for _, name in index.names] == ["q-river"]  # 20 words; the ferry question has 18
    with pytest.raises(JobSpecError, match=r"filters\.decontaminate\.min_words: 5 is less than ngram \(13\)"):
        parse_job(
            {"output": "o", "sources": [{"paths": ["x"]}], "filters": {"decontaminate": {"min_words": 5}}}
        )


def test_the_index_is_two_sorted_arrays_and_a_batch_is_one_lookup(benchmark):
    index = NgramIndex.read([str(benchmark)], ["question", "answer"], "id", ngram=13)
    assert index.hashes.dtype == np.uint64 and index.items.dtype == np.int32
    assert np.all(index.hashes[1:] >= index.hashes[:-1]) and index.nbytes == 12 * len(index.hashes)
    texts = [PROSE] * 1000 + [f"Quiz: {QUESTION}"] + [PROSE] * 1000
    matches, looked_up = index.lookup(texts)
    assert list(matches) == [1000] and index.names[matches[1000].item] == ("trivia.jsonl", "q-river")
    assert looked_up == 2000 * (len(PROSE.split()) - 12) + len(QUESTION.split()) + 1 - 12


# --------------------------------------------------------------------------------------------------
# The evaluation files
# --------------------------------------------------------------------------------------------------


def test_jsonl_parquet_and_text_files_give_the_same_items(tmp_path, benchmark):
    pq.write_table(pa.Table.from_pylist(ITEMS), tmp_path / "trivia.parquet")
    lines = [f"{r['question']} {r['answer']}" for r in ITEMS]
    (tmp_path / "trivia.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    fields = ["question", "answer"]
    assert list(read_items(benchmark, fields, "id")) == [
        (r["id"], f"{r['question']}\n{r['answer']}") for r in ITEMS
    ]
    assert list(read_items(tmp_path / "trivia.parquet", fields, "id")) == list(
        read_items(benchmark, fields, "id")
    )
    assert list(read_items(tmp_path / "trivia.txt", fields)) == [
        ("1", lines[0]),
        ("2", lines[1]),
        ("3", lines[2]),
    ]
    for name in ("trivia.jsonl", "trivia.parquet", "trivia.txt"):
        cfg = DecontaminateConfig(paths=[str(tmp_path / name)])
        assert (check_eval_file(str(tmp_path / name), cfg).items, name) == (2, name)
        _, dropped, _ = decontaminate(tmp_path / name, document("quiz", QUESTION))
        assert len(dropped) == 1, name


def test_gzipped_files_and_a_byte_order_mark_read_like_plain_ones(tmp_path, benchmark):
    with gzip.open(tmp_path / "trivia.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write(benchmark.read_text(encoding="utf-8"))
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbf" + QUESTION.encode() + b"\n")
    fields = ["question", "answer"]
    assert list(read_items(tmp_path / "trivia.jsonl.gz", fields, "id")) == list(
        read_items(benchmark, fields, "id")
    )
    assert list(read_items(tmp_path / "bom.txt", fields)) == [("1", QUESTION)]


def test_row_numbers_name_items_without_an_id_and_lists_are_text(tmp_path):
    rows = [
        {"question": QUESTION},
        {},
        {"passage": "x"},
        {"text": ["A long list item", ITEMS[2]["question"]]},
    ]
    bench = write_jsonl(tmp_path / "rows.jsonl", rows)
    assert [i for i, _ in read_items(bench, ["question", "text"])] == ["1", "2", "3", "4"]
    index = NgramIndex.read([str(bench)], ["question", "text"], None, ngram=13)
    assert index.names == [("rows.jsonl", "1"), ("rows.jsonl", "4")]


def test_two_files_of_one_name_are_named_by_their_paths(tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        write_jsonl(tmp_path / sub / "test.jsonl", ITEMS)
    paths = [str(tmp_path / "a/test.jsonl"), str(tmp_path / "b/test.jsonl")]
    index = NgramIndex.read(paths, ["question"], "id", ngram=13)
    assert {file for file, _ in index.names} == set(paths)


def spec_with(tmp_path: Path, decontaminate: dict) -> Any:
    (tmp_path / "in.warc.gz").write_bytes(b"")
    data = {
        "output": "o",
        "sources": [{"paths": ["in.warc.gz"]}],
        "filters": {"decontaminate": decontaminate},
    }
    return parse_job(data, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("missing.jsonl", None, r"filters\.decontaminate\.paths\.1: not found: .*missing\.jsonl$"),
        ("eval.csv", "question,answer\n", r"filters\.decontaminate\.paths\.1: .*eval\.csv: unknown format"),
        ("bad.jsonl", '{"question": "x"}\n{nope\n', r"paths\.1: .*bad\.jsonl: line 2: not JSON"),
        ("list.jsonl", "[1, 2]\n", r"paths\.1: .*list\.jsonl: line 1: not a JSON object"),
        (
            "short.jsonl",
            '{"question": "Who founded Lakeside?"}\n',
            r"paths\.1: .*short\.jsonl: no item with text",
        ),
        (
            "other.jsonl",
            json.dumps({"prompt": QUESTION}) + "\n",
            r"no item with text in question, answer, passage",
        ),
        ("empty.txt", "\n\n", r"paths\.1: .*empty\.txt: no line of at least 13 words"),
        ("latin1.txt", QUESTION.encode("cp1252") + b"\xe9\n", r"paths\.1: .*latin1\.txt: not UTF-8 text"),
        ("broken.parquet", "not parquet", r"paths\.1: .*broken\.parquet: not a parquet file"),
        ("broken.jsonl.gz", "not gzip", r"paths\.1: .*broken\.jsonl\.gz: cannot be read: Not a gzipped file"),
        ("folder.jsonl", {}, r"paths\.1: .*folder\.jsonl: not a file"),
    ],
)
def test_a_bad_evaluation_file_is_a_one_line_error_naming_the_key(tmp_path, benchmark, name, content, error):
    if isinstance(content, str):
        (tmp_path / name).write_text(content, encoding="utf-8")
    elif isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    elif content is not None:
        (tmp_path / name).mkdir()
    spec = spec_with(tmp_path, {"paths": [benchmark.name, name]})
    with pytest.raises(JobSpecError, match=error) as err:
        check_inputs(spec)
    assert "\n" not in str(err.value)


def test_a_parquet_file_without_the_fields_is_named(tmp_path):
    pq.write_table(pa.table({"prompt": [QUESTION]}), tmp_path / "eval.parquet")
    spec = spec_with(tmp_path, {"paths": ["eval.parquet"]})
    with pytest.raises(
        JobSpecError, match=r"paths\.0: .*none of the fields question, answer, passage, text is a column"
    ):
        check_inputs(spec)
    check_inputs(spec_with(tmp_path, {"paths": ["eval.parquet"], "fields": ["prompt"]}))


def test_paths_resolve_against_the_spec_and_the_stage_runs_after_language(tmp_path, benchmark):
    (tmp_path / "in.warc.gz").write_bytes(b"")
    job = tmp_path / "job.toml"
    job.write_text(
        'output = "o"\n[[sources]]\npaths = ["in.warc.gz"]\n'
        '[filters.decontaminate]\npaths = ["trivia.jsonl"]\nmode = "blocks"\n'
    )
    spec = load_job(job)
    assert spec.filters.decontaminate.paths == [str(benchmark)]
    check_inputs(spec)
    names = [st.name for st in filter_stages(spec.filters)]
    assert names[names.index("language") + 1] == "decontaminate" == ORDER[ORDER.index("language") + 1]
    off = parse_job({"output": "o", "sources": [{"paths": ["x"]}]})
    assert "decontaminate" not in [st.name for st in filter_stages(off.filters)]  # no paths: off


def test_the_filters_step_counts_it_and_ledgers_its_drops(tmp_path, benchmark):
    storage = Storage(str(tmp_path / "out"))
    docs = Data("documents", "documents", "work/documents/{part}.parquet")
    rows = [document("quiz", f"{PROSE} {QUESTION}"), document("plain", PROSE)]
    storage.write_parquet(docs.path("cc-00000"), pa.Table.from_pylist(rows, schema=DOC_SCHEMA))
    cfg = parse_job(
        {
            "output": "o",
            "sources": [{"paths": ["x"]}],
            "filters": {"decontaminate": {"paths": [str(benchmark)]}},
        }
    ).filters
    step = FiltersStep(storage, [Part("cc-00000")], docs, cfg)
    stats = step.run_part(step.parts()[0])
    assert stats.extra["filters"]["decontaminate"] == {"in": 2, "out": 1}
    assert stats.drops["decontaminate"] == 1
    assert (
        stats.extra["counters"]["decontaminate_ngrams"]
        == len(f"{PROSE} {QUESTION}".split()) - 12 + len(PROSE.split()) - 12
    )
