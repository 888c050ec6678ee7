"""``loom demo``: the demo's inputs, its image server and its job spec, put together.

:func:`demo_job` writes the WARC (``jobs/demo/warc.py``), the pair table and its images
(``jobs/demo/pairs.py``), the filter files, the benchmark and the quality model
(``jobs/demo/filters.py``) and a tiny CLIP model under ``OUT/input``, serves the images on 127.0.0.1
and yields ``jobs/demo.toml`` pointed at them, with its output at ``OUT/result``.

The image server listens on the fixed port ``IMAGE_PORT`` (18765), so that every run writes the
same pair URLs and two runs give byte-identical shards and manifest. The port an output was built
with is kept in ``OUT/input/image-server.json``: a rerun of the same output listens there again,
since that output's pair table points there.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

from filters.config import FiltersConfig
from jobs.demo.filters import build_demo_benchmark, build_demo_filters, demo_quality_corpus
from jobs.demo.pairs import IMAGE_PORT, build_demo_pairs, demo_server
from jobs.demo.warc import build_demo_corpus
from jobs.spec import JobSpec, load_job
from pipeline.clip.config import ClipConfig
from pipeline.config import JobSpecError

log = logging.getLogger(__name__)

DEMO_SPEC = Path(__file__).resolve().parents[1] / "demo.toml"


def demo_filters(filters: FiltersConfig, inputs: Path) -> FiltersConfig:
    """Write the demo's blocklist, lexicon, benchmark and quality model under ``inputs`` (the model
    is trained once, like ``loom filters train-quality`` does) and point the demo's [filters] at them."""
    from filters.classifier import train_classifier

    blocklist, lexicon = build_demo_filters(inputs)
    benchmark = build_demo_benchmark(inputs)
    model = inputs / "quality.bin"
    if not model.exists():
        positive, negative = demo_quality_corpus(inputs / "quality")
        train_classifier([positive], [negative], model)
    return filters.model_copy(
        update={
            "url_blocklist": filters.url_blocklist.model_copy(update={"path": str(blocklist)}),
            "lexicon": filters.lexicon.model_copy(update={"paths": [str(lexicon), "loom:gambling"]}),
            "quality": filters.quality.model_copy(update={"model": str(model)}),
            "decontaminate": filters.decontaminate.model_copy(update={"paths": [str(benchmark)]}),
        }
    )


def demo_clip(clip: ClipConfig, inputs: Path) -> ClipConfig:
    """Write the demo's CLIP model, a tiny randomly initialised open_clip model (no weights can be
    downloaded here), and point [clip] at its config and checkpoint: the path real checkpoints take."""
    from pipeline.clip.model import write_tiny_model

    folder = inputs / "clip"
    config, checkpoint = folder / f"{clip.model}.json", folder / f"{clip.model}.pt"
    if not checkpoint.exists():
        config, checkpoint = write_tiny_model(folder, clip.model)
    return clip.model_copy(update={"pretrained": str(checkpoint), "model_config_path": str(config)})


def _image_port(port_file: Path, image_port: int | None) -> tuple[int, bool]:
    """The port to serve the images on, and whether this output recorded it."""
    if not port_file.exists():
        return (IMAGE_PORT if image_port is None else image_port), False
    recorded = json.loads(port_file.read_text())["port"]
    if image_port is not None and image_port != recorded:
        raise JobSpecError(
            f"this demo output's pair table points at 127.0.0.1:{recorded} (recorded in {port_file}), not "
            f"at port {image_port}: run it with port {recorded}, or choose a new --out"
        )
    return recorded, True


@contextlib.contextmanager
def demo_job(out: Path, pages: int = 120, seed: int = 0, image_port: int | None = None) -> Iterator[JobSpec]:
    """Build the demo inputs under ``out/input``, serve its images, and yield the demo job spec
    (output ``out/result``); the server stops when the block ends. The images are served on
    ``image_port`` (default ``IMAGE_PORT``), or on the port this output recorded."""
    out = Path(out).resolve()
    inputs = out / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    warc = build_demo_corpus(inputs, pages=pages, seed=seed)
    port_file = inputs / "image-server.json"
    port, recorded = _image_port(port_file, image_port)
    try:
        server = demo_server(inputs, port)
    except OSError as err:
        if recorded:
            raise JobSpecError(
                f"the demo's image server cannot listen on 127.0.0.1:{port} ({err.strerror}); this demo "
                "output's pair table points there: free the port or choose a new --out"
            ) from None
        raise JobSpecError(
            f"the demo's image server cannot listen on 127.0.0.1:{port} ({err.strerror}); the demo serves "
            "its images on this fixed port so that every run writes the same pair URLs: stop what holds "
            "it (another `loom demo`?) and run again"
        ) from None
    with server:
        port_file.write_text(json.dumps({"port": server.port}) + "\n")
        pairs = build_demo_pairs(inputs, server.url, seed=seed)
        spec = load_job(DEMO_SPEC, output=str(out / "result"))
        cc, pair_source = spec.sources
        spec = spec.model_copy(
            update={
                "sources": [
                    cc.model_copy(update={"paths": [str(warc)], "listing": None}),
                    pair_source.model_copy(update={"paths": [str(pairs.table)]}),
                ],
                "filters": demo_filters(spec.filters, inputs),
                "clip": demo_clip(spec.clip, inputs) if spec.clip.enabled else spec.clip,
            }
        )
        log.info("demo corpus: %s and %s (images served at %s)", warc, pairs.table, server.url)
        yield spec
