"""The step graph: steps in run order, each reading the outputs of steps before it, by name.

The application assembles the graph once from the job spec (``jobs/graph.py``); the engine runs it.
A step that is off is not in the graph, and whoever reads its output is handed the output of the
step before it instead, so no step ever asks whether another one runs.

**Fingerprints.** A step's fingerprint hashes its own settings (:meth:`Step.settings`) and the
fingerprints of the steps whose outputs it reads (plus a ``base``: the job's inputs and format). It
is kept in ``work/<step>/step.json`` when the step starts. A rerun whose fingerprint for a step
differs clears that step and runs it again — and, since fingerprints chain, every step that reads
it, and nothing upstream.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pipeline.step import Data, Step
from pipeline.storage import Storage


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def state_path(step: str) -> str:
    return f"work/{step}/step.json"


@dataclass(frozen=True)
class StepState:
    """Where one step stands in an output root, against the graph's fingerprint for it."""

    name: str
    status: str  # "done", "partial", "to run", "stale", "unknown parts"
    parts: int | None  # None: known only once the steps before it have run
    done: int
    reason: str = ""  # why it is stale: "settings changed", "reads <step>, which reruns", ...


class Graph:
    """Steps in run order; each input must be an output of a step added before it."""

    def __init__(self, base: dict[str, Any] | None = None):
        self.steps: list[Step] = []
        self.base = base or {}
        self._fingerprints: dict[str, str] | None = None

    def add(self, step: Step) -> Step:
        names = {s.name for s in self.steps}
        if step.name in names:
            raise ValueError(f"the graph already has a step {step.name!r}")
        outputs = {d for s in self.steps for d in s.outputs.values()}
        for role, data in step.inputs.items():
            if data not in outputs:
                raise ValueError(f"step {step.name}: input {role} ({data}) is no output of an earlier step")
        self.steps.append(step)
        self._fingerprints = None
        return step

    def __getitem__(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def __contains__(self, name: str) -> bool:
        return any(s.name == name for s in self.steps)

    def reads(self, step: Step) -> list[str]:
        """The steps whose outputs ``step`` reads, in run order."""
        producers = {d.step for d in step.inputs.values()}
        return [s.name for s in self.steps if s.name in producers]

    def after(self, name: str) -> list[Step]:
        """The steps that read ``name``'s outputs, directly or through others, in run order."""
        tainted = {name}
        out = []
        for step in self.steps:
            if tainted.intersection(self.reads(step)):
                tainted.add(step.name)
                out.append(step)
        return out

    def settings_hash(self, step: Step) -> str:
        return _hash({"step": step.name, "settings": step.settings(), "base": self.base})

    def fingerprints(self) -> dict[str, str]:
        """Each step's fingerprint: its settings and the fingerprints of the steps it reads."""
        if self._fingerprints is None:
            fps: dict[str, str] = {}
            for step in self.steps:
                inputs = {role: [str(d), fps[d.step]] for role, d in sorted(step.inputs.items())}
                fps[step.name] = _hash({"settings": self.settings_hash(step), "inputs": inputs})
            self._fingerprints = fps
        return self._fingerprints

    def kept_states(self, storage: Storage) -> dict[str, dict[str, Any] | None]:
        """Each step's ``step.json`` in ``storage`` (None: the step never started there)."""
        return {step.name: read_state(storage, step.name) for step in self.steps}

    def stale(
        self, storage: Storage, kept_states: dict[str, dict[str, Any] | None] | None = None
    ) -> dict[str, str]:
        """The steps that started under another fingerprint, with why (a changed setting of their own,
        or a step they read that reruns)."""
        fps = self.fingerprints()
        states = kept_states if kept_states is not None else self.kept_states(storage)
        out: dict[str, str] = {}
        for step in self.steps:
            kept = states[step.name]
            if kept is None or kept.get("fingerprint") == fps[step.name]:
                continue
            if kept.get("settings") != self.settings_hash(step):
                out[step.name] = "settings changed"
            else:
                upstream = [n for n in self.reads(step) if n in out]
                out[step.name] = _rerun_reason(upstream) if upstream else "inputs changed"
        return out

    def states(self, storage: Storage) -> list[StepState]:
        """Every step: its parts, how many are done, and whether it is stale (``loom plan``)."""
        kept_states = self.kept_states(storage)
        stale = self.stale(storage, kept_states)
        states = []
        for step in self.steps:
            parts = _count_parts(step)
            if step.name in stale:
                states.append(StepState(step.name, "stale", parts, 0, stale[step.name]))
                continue
            kept = kept_states[step.name]
            done = len(storage.list(f"work/{step.name}", ".done")) if kept is not None else 0
            if kept is not None and (kept.get("finished") or (parts is not None and done >= parts)):
                status = "done"
            else:
                status = "partial" if done else "to run"
            if status == "done" and parts is not None:
                done = parts  # a global step keeps its markers elsewhere (its rounds')
            states.append(StepState(step.name, status, parts, done if parts is None else min(done, parts)))
        return states

    def start(self, storage: Storage, step: Step) -> None:
        """Before ``step`` runs: clear it when it started under another fingerprint (or never), and
        keep the current one."""
        fp = self.fingerprints()[step.name]
        kept = read_state(storage, step.name)
        if kept is not None and kept.get("fingerprint") == fp:
            return
        step.clear()
        storage.write_json(
            state_path(step.name),
            {
                "fingerprint": fp,
                "settings": self.settings_hash(step),
                "reads": {role: d.pattern for role, d in step.inputs.items()},
                "writes": {name: d.pattern for name, d in step.outputs.items()},
            },
        )

    def finish(self, storage: Storage, step: Step) -> None:
        """After ``step`` ran whole: say so in its state (for steps whose parts are not known ahead)."""
        kept = read_state(storage, step.name) or {}
        if not kept.get("finished"):
            storage.write_json(state_path(step.name), {**kept, "finished": True})

    def describe(self) -> list[dict[str, Any]]:
        """The graph as data: each step, what it reads (``step.output``) and what it writes."""
        return [
            {
                "step": s.name,
                "inputs": {role: str(d) for role, d in s.inputs.items()},
                "outputs": {name: d.pattern for name, d in s.outputs.items()},
                "resources": s.resources.ray_options(),
            }
            for s in self.steps
        ]


def _rerun_reason(upstream: list[str]) -> str:
    return (
        f"reads {upstream[0]}, which reruns"
        if len(upstream) == 1
        else f"reads {', '.join(upstream)}, which rerun"
    )


def read_state(storage: Storage, step: str) -> dict[str, Any] | None:
    return storage.read_json(state_path(step)) if storage.exists(state_path(step)) else None


def _count_parts(step: Step) -> int | None:
    """How many parts ``step`` has, or None when that is known only once the steps before it ran."""
    try:
        return len(step.parts())
    except (FileNotFoundError, OSError, KeyError):
        return None


__all__ = ["Data", "Graph", "StepState", "read_state", "state_path"]
