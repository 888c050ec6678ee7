"""The step contract: one kind of step for per-part and global work, and the per-document template.

A **step** reads named inputs and writes named outputs (:class:`Data`), declares the resources one
worker needs and the settings that change what it makes (:meth:`Step.settings`, hashed into its
fingerprint by :mod:`pipeline.graph`). It never computes another step's path: what it reads comes in
as a :class:`Data` handed over by whoever assembles the graph (``jobs/graph.py``).

Most steps are made of **parts** (``parts()`` / ``run_part()``): the runner runs the pending ones on
Ray and writes each part's ``.done`` marker (its stats) last. A global step (connected-components
rounds, the CLIP actor pool) overrides :meth:`Step.run` and organises its own work, returning the
same :class:`~pipeline.runner.StepResult`; the job runs every step through ``run`` alike.

:class:`DocumentStep` is the template of the steps with one part per documents part: read the part's
documents, :meth:`DocumentStep.process` them, write the kept documents and the ledger of dropped
rows, return the part's stats. A step only says what happens to the documents in between.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from pipeline.runner import Part, PartStats, RayContext, StepResult, run_step
from pipeline.schema import DOC_SCHEMA, DROP_REASON
from pipeline.stage import DROP_DETAIL, Resources, split_dropped
from pipeline.storage import Storage

#: Documents with the two drop columns: what :func:`marked_documents` builds.
MARKED_SCHEMA = pa.schema(
    [*DOC_SCHEMA, pa.field(DROP_REASON, pa.string()), pa.field(DROP_DETAIL, pa.string())]
)


@dataclass(frozen=True)
class Data:
    """A named output of a step, which later steps receive as an input and read through.

    ``pattern`` is its path relative to the output root; ``{part}`` stands for the part's name in
    data written part by part (``work/filters/{part}.parquet``).
    """

    step: str
    name: str
    pattern: str

    def path(self, part: str = "") -> str:
        return self.pattern.format(part=part)

    @property
    def folder(self) -> str:
        return posixpath.dirname(self.pattern)

    def __str__(self) -> str:
        return f"{self.step}.{self.name}"


class Step:
    """A step of the job graph: named inputs and outputs, resources, settings, parts (or ``run``)."""

    name: str = ""
    resources: Resources = Resources(cpus=1)
    stall_seconds: float | None = None  # set on the reading steps: a part with no progress this long fails
    worker_restarts: int = 8  # restarts of a Ray worker of this step that dies, then the step fails

    def __init__(self, storage: Storage, **inputs: Data | None):
        self.storage = storage
        self.inputs: dict[str, Data] = {k: v for k, v in inputs.items() if v is not None}
        self.outputs: dict[str, Data] = {}

    def output(self, name: str, pattern: str) -> Data:
        """Declare an output; ``{step}`` in ``pattern`` is this step's name, ``{part}`` stays."""
        data = Data(self.name, name, pattern.replace("{step}", self.name))
        self.outputs[name] = data
        return data

    def __getitem__(self, output: str) -> Data:
        """``step["documents"]``: one of its outputs, to hand to the steps that read it."""
        return self.outputs[output]

    def settings(self) -> dict[str, Any]:
        """The step's own settings that change what it makes (JSON); its fingerprint hashes them."""
        return {}

    def folders(self) -> list[str]:
        """Where the step writes: ``work/<name>/`` and the folders of its outputs (not the root)."""
        return sorted({f"work/{self.name}", *(d.folder for d in self.outputs.values() if d.folder)})

    def parts(self) -> list[Part]:
        raise NotImplementedError

    def run_part(self, part: Part) -> PartStats:
        raise NotImplementedError

    def run(self, ray: RayContext | None) -> StepResult:
        """Run the pending parts (on Ray, or here when ``ray`` is None) and merge every part's stats."""
        return run_step(self, self.storage, ray=ray)

    def reopen(self) -> None:
        """Forget which parts are done, keeping their outputs (``--retry-images``: they run again)."""
        for name in self.storage.list(f"work/{self.name}", ".done"):
            self.storage.delete(f"work/{self.name}/{name}")

    def clear(self) -> None:
        """Remove everything the step wrote (its settings or inputs changed: it runs from scratch)."""
        for folder in self.folders():
            self.storage.delete_dir(folder)
        for data in self.outputs.values():
            if not data.folder:  # a file at the root of the output (manifest.parquet)
                self.storage.delete(data.path())


def document_parts(doc_parts: list[Part]) -> list[Part]:
    """One part per documents part, of the same name; ``args["index"]`` is its position in the job."""
    return [Part(p.name, {"index": i}) for i, p in enumerate(doc_parts)]


def marked_documents(rows: list[dict[str, Any]]) -> pa.Table:
    """Document dicts as a table; a row whose ``_drop_reason`` is set (``_drop_detail``: more about
    it) is a dropped document, which :class:`DocumentStep` moves to the ledger."""
    return pa.Table.from_pylist(rows, schema=MARKED_SCHEMA)


@dataclass
class Processed:
    """What :meth:`DocumentStep.process` made of one part's documents.

    A document it drops is marked (a ``_drop_reason`` column, as stages do): the template moves it
    to the ledger, stage :attr:`DocumentStep.drop_stage`, and counts it by reason. ``ledger`` holds
    other rows the step records (an image taken out of a kept document); they are not drops."""

    documents: pa.Table  # kept documents, and dropped ones marked with ``_drop_reason``
    dropped: pa.Table | None = None  # LEDGER_SCHEMA rows of documents its stages already dropped
    ledger: pa.Table | None = None  # LEDGER_SCHEMA rows that are not drops (images removed)
    drops: Counter | None = None  # the dropped documents by reason (default: marked + dropped)
    extra: dict[str, Any] = field(default_factory=dict)


class DocumentStep(Step):
    """The per-document template: one part per documents part; reads ``documents``, writes
    ``documents`` (``work/<name>/<part>.parquet``) and ``ledger`` (``<part>.ledger.parquet``)."""

    #: The ``stage`` of the ledger rows of the documents this step drops (default: its name).
    drop_stage: str = ""

    def __init__(self, storage: Storage, doc_parts: list[Part], documents: Data, **inputs: Data | None):
        super().__init__(storage, documents=documents, **inputs)
        self._parts = document_parts(doc_parts)
        self.output("documents", "work/{step}/{part}.parquet")
        self.output("ledger", "work/{step}/{part}.ledger.parquet")

    def parts(self) -> list[Part]:
        return self._parts

    def process(self, docs: pa.Table, part: Part) -> Processed:
        raise NotImplementedError

    def run_part(self, part: Part) -> PartStats:
        docs = self.storage.read_parquet(self.inputs["documents"].path(part.name))
        out = self.process(docs, part)
        split = split_dropped(out.documents, self.name, self.drop_stage or self.name)
        dropped = pa.concat_tables([t for t in (out.dropped, split.dropped) if t is not None])
        others = [out.ledger] if out.ledger is not None and out.ledger.num_rows else []
        ledger = pa.concat_tables([dropped, *others]) if others else dropped
        self.storage.write_parquet(self.outputs["documents"].path(part.name), split.kept)
        self.storage.write_parquet(self.outputs["ledger"].path(part.name), ledger)
        drops = out.drops if out.drops is not None else Counter(dropped["reason"].to_pylist())
        return PartStats(rows_in=docs.num_rows, rows_out=split.kept.num_rows, drops=drops, extra=out.extra)
