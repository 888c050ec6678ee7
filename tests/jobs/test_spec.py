"""The job spec: typed, validated, one-line errors that name the key."""

from pathlib import Path

import pytest

from jobs.spec import check_inputs, load_job, parse_job
from pipeline.config import JobSpecError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(text)
    return path


def test_a_minimal_spec_gets_defaults_and_resolves_paths(tmp_path):
    (tmp_path / "in.warc.gz").write_bytes(b"")
    spec = load_job(write(tmp_path, 'output = "out"\n[[sources]]\npaths = ["*.warc.gz"]\n'))
    assert spec.output == str(tmp_path / "out")
    assert spec.sources[0].paths == [str(tmp_path / "*.warc.gz")]
    assert spec.sources[0].name == "cc"
    assert spec.shards.max_samples == 1000
    check_inputs(spec)


def test_an_unknown_key_is_named(tmp_path):
    path = write(tmp_path, 'output = "o"\n[[sources]]\npaths = ["x"]\n[shards]\nmax_sample = 3\n')
    with pytest.raises(JobSpecError, match=r"shards\.max_sample: unknown key"):
        load_job(path)


def test_a_wrong_type_is_named(tmp_path):
    path = write(tmp_path, 'output = "o"\n[[sources]]\npaths = ["x"]\n[extract]\nmax_images = "many"\n')
    with pytest.raises(JobSpecError, match=r"extract\.max_images: Input should be a valid integer"):
        load_job(path)


def test_missing_inputs_fail_before_anything_runs(tmp_path):
    spec = load_job(write(tmp_path, 'output = "o"\n[[sources]]\npaths = ["nothing-*.warc.gz"]\n'))
    with pytest.raises(JobSpecError, match=r"sources\.0\.paths: no file matches"):
        check_inputs(spec)


def test_bad_toml_and_missing_file_are_one_line_errors(tmp_path):
    with pytest.raises(JobSpecError, match="not valid TOML"):
        load_job(write(tmp_path, "output = \n"))
    with pytest.raises(JobSpecError, match="job spec not found"):
        load_job(tmp_path / "nope.toml")


def test_s3_outputs_are_accepted_and_left_alone():
    spec = parse_job(
        {"output": "s3://bucket/run", "sources": [{"paths": ["s3://cc/x.warc.gz"]}]}, base_dir=Path("/a")
    )
    assert spec.output == "s3://bucket/run"
    assert spec.sources[0].paths == ["s3://cc/x.warc.gz"]


def test_the_fingerprint_ignores_where_and_how_a_job_runs():
    base = {"output": "a", "sources": [{"paths": ["x"]}]}
    one = parse_job(base)
    assert one.fingerprint() == parse_job({**base, "output": "b", "ray": {"num_cpus": 2}}).fingerprint()
    assert one.fingerprint() != parse_job({**base, "shards": {"max_samples": 5}}).fingerprint()
    # how images are fetched is not what the job makes; which images and how they are stored is
    assert one.fingerprint() == parse_job({**base, "images": {"timeout": 60, "threads": 4}}).fingerprint()
    assert one.fingerprint() != parse_job({**base, "images": {"max_size": 256}}).fingerprint()


def test_two_sources_need_two_names():
    with pytest.raises(JobSpecError, match=r"sources: two sources are named 'cc'; give each its own `name`"):
        parse_job({"output": "o", "sources": [{"paths": ["a"]}, {"paths": ["b"]}]})
    spec = parse_job({"output": "o", "sources": [{"paths": ["a"]}, {"paths": ["b"], "name": "cc2"}]})
    assert [s.name for s in spec.sources] == ["cc", "cc2"]


def test_pair_sources_and_images_are_checked_with_one_line_errors():
    base = {"output": "o", "sources": [{"type": "pairs", "paths": ["p.parquet"], "preset": "laion"}]}
    spec = parse_job(base)
    assert spec.sources[0].setting("url_column") == "URL" and spec.images.allow_networks == []
    with pytest.raises(JobSpecError, match=r"^job spec: sources\.0\.preset: Input should be 'laion'"):
        parse_job({**base, "sources": [{"type": "pairs", "paths": ["p"], "preset": "laion5b"}]})
    with pytest.raises(JobSpecError, match=r"^job spec: sources\.0\.caption: unknown key"):
        parse_job({**base, "sources": [{"type": "pairs", "paths": ["p"], "caption": "TEXT"}]})
    with pytest.raises(
        JobSpecError, match=r"images\.allow_networks: 'intranet' is not an IP address or network"
    ):
        parse_job({**base, "images": {"allow_networks": ["intranet"]}})
    with pytest.raises(JobSpecError, match=r"images: for png, `quality` is the compression level, 0-9"):
        parse_job({**base, "images": {"format": "png"}})


def test_filter_files_resolve_against_the_spec_and_must_exist(tmp_path):
    (tmp_path / "in.warc.gz").write_bytes(b"")
    text = (
        'output = "o"\n[[sources]]\npaths = ["in.warc.gz"]\n'
        '[filters.quality]\nmodel = "models/quality.bin"\nmin_score = 0.5\n'
        '[filters.lexicon]\npaths = ["lists/ldnoobw", "loom:gambling"]\n'
        '[dedup]\nkeep = "meta.scores.quality"\n'
    )
    spec = load_job(write(tmp_path, text))
    assert spec.filters.quality.model == str(tmp_path / "models/quality.bin")
    assert spec.filters.lexicon.paths[0] == str(tmp_path / "lists/ldnoobw")
    assert spec.filters.lexicon.paths[1] == "loom:gambling"  # a list Loom ships, read where Loom is
    with pytest.raises(JobSpecError, match=r"filters\.quality\.model: not found: .*quality\.bin"):
        check_inputs(spec)


def test_an_unknown_score_or_shipped_list_is_named(tmp_path):
    with pytest.raises(JobSpecError, match=r"dedup\.keep: 'meta\.scores\.qualty'"):
        parse_job({"output": "o", "sources": [{"paths": ["x"]}], "dedup": {"keep": "meta.scores.qualty"}})
    lexicon = {"lexicon": {"paths": ["loom:nope"]}}
    with pytest.raises(JobSpecError, match=r"loom:nope: no such list \(Loom ships: gambling\)"):
        parse_job({"output": "o", "sources": [{"paths": ["x"]}], "filters": lexicon}, base_dir=tmp_path)


@pytest.mark.parametrize(
    ("mix", "error"),
    [
        (
            {"weights": {"text": 1}},
            r"^job spec: mix\.weights\.text: no source of this job makes it \(they make pair\)",
        ),
        (
            {"weights": {"wiki": 1}},
            r"mix\.weights\.wiki: neither a kind \(text, pair, interleaved\) nor a source \(laion\)",
        ),
        ({"weights": {"pair": -1}}, r"mix\.weights: pair = -1\.0: a weight is a share of tokens, 0 or more"),
        ({"weights": {"pair": 0}}, r"mix\.weights: every weight is 0"),
        (
            {"weights": {"pair": 1}, "max_epochs": {"text": 2}},
            r"max_epochs\.text: not a component of the weights",
        ),
        ({"weights": {"pair": 1}, "max_epochs": 0.5}, r"mix\.max_epochs.*at least 1"),
        ({"weights": {"pair": 1}, "subsets": [0.1, 1.0]}, r"mix\.subsets: 1\.0: a subset is a fraction"),
    ],
)
def test_a_mixture_that_cannot_be_made_is_named(mix, error):
    base = {"output": "o", "sources": [{"type": "pairs", "name": "laion", "paths": ["p.parquet"]}]}
    with pytest.raises(JobSpecError, match=error):
        parse_job({**base, "mix": mix})


def test_a_mixture_by_source_and_its_defaults():
    base = {"output": "o", "sources": [{"type": "pairs", "name": "laion", "paths": ["p"]}, {"paths": ["w"]}]}
    spec = parse_job({**base, "mix": {"weights": {"laion": 1, "cc": 3}}})
    assert spec.mix.enabled and not spec.mix.by_kind()
    assert spec.mix.components() == {"cc": 0.75, "laion": 0.25} and spec.mix.epochs("cc") == 1.0
    assert not parse_job(base).mix.enabled  # no weights, no training dataset
    with pytest.raises(JobSpecError, match=r"mix: the mixture is measured in tokens; it needs \[tokenizer\]"):
        parse_job({**base, "mix": {"weights": {"cc": 1}}, "tokenizer": {"enabled": False}})


def test_weights_name_kinds_or_sources_not_both():
    base = {"output": "o", "sources": [{"type": "pairs", "name": "laion", "paths": ["p"]}, {"paths": ["w"]}]}
    with pytest.raises(JobSpecError, match=r"mix\.weights: name kinds \(text\) or sources \(cc\), not both"):
        parse_job({**base, "mix": {"weights": {"text": 1, "cc": 1}}})
