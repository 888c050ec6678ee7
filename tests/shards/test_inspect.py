"""``loom inspect``: documents of a shard, texts and images in reading order."""

from pipeline.storage import Storage
from shards.inspect import describe, read_samples
from shards.writer import to_sample, write_tar


def test_a_shard_reads_back_and_describes_its_documents(tmp_path):
    doc = {
        "id": "0" * 32,
        "source": "cc",
        "kind": "interleaved",
        "url": "https://site.example/a",
        "texts": ["Intro paragraph.", None, "x" * 300],
        "images": [
            None,
            {
                "url": "https://site.example/cat.jpg",
                "sha256": None,
                "width": 640,
                "height": None,
                "alt": "a cat",
            },
            None,
        ],
        "meta": {"title": "A page"},
    }
    write_tar([to_sample(doc)], str(tmp_path / "s.tar"))
    (back,) = read_samples(Storage(str(tmp_path)), "s.tar")
    lines = describe(back).splitlines()
    assert lines[0] == f"{'0' * 32}  interleaved  https://site.example/a"
    assert lines[1:4] == [
        "  title: A page",
        "  Intro paragraph.  (16 chars)",
        "  [image 640x?] https://site.example/cat.jpg  alt='a cat'",
    ]
    assert lines[4].endswith("…  (300 chars)")
