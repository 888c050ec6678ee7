"""``loom plan JOB``: the step graph of a job in run order and where its output root stands.

For each step: what it reads (``<step>.<output>``), what it writes, its parts and how many are done,
and its state — ``done``, ``partial`` (a rerun resumes it), ``to run``, or ``stale`` with the reason
(a setting of its own changed, or it reads a step that reruns). Nothing runs and Ray is not started.
"""

from __future__ import annotations

from typing import Any

from jobs.graph import build_graph, inputs_record
from jobs.run import plan_job, refusal
from jobs.spec import JobSpec, JobSpecError
from pipeline.graph import Graph, StepState
from pipeline.storage import Storage


class MissingInputs(JobSpecError):
    """The spec is valid but its inputs are not there: ``lines`` is the graph without them."""

    def __init__(self, why: str, lines: list[str]):
        super().__init__(why)
        self.lines = lines


def _graph_without_inputs(spec: JobSpec) -> list[str]:
    """The graph of a job whose inputs are missing: its steps with no parts, no summary line."""
    storage = Storage(spec.output)
    graph = build_graph(spec, storage, [], inputs_record([], []))
    return plan_lines(spec, storage, graph, None, None)[:-1]


def plan_data(spec: JobSpec) -> dict[str, Any]:
    """The plan as data (``loom plan --json``)."""
    storage, parts, graph = plan_job(spec)
    states = {s.name: s for s in graph.states(storage)}
    steps = []
    for entry in graph.describe():
        st = states[entry["step"]]
        steps.append({**entry, "parts": st.parts, "done": st.done, "state": st.status, "reason": st.reason})
    return {
        "job": spec.name,
        "output": storage.uri(),
        "inputs": len(parts),
        "refused": refusal(spec, storage, parts, graph),
        "steps": steps,
        "rerun": [s.name for s in states.values() if s.status == "stale"],
    }


def _parts(st: StepState) -> str:
    if st.parts is None:
        return "?" if st.status != "done" else "done"
    return f"{st.done}/{st.parts}"


def render_plan(spec: JobSpec) -> list[str]:
    """The plan as lines of text, one step per line (never cut to the terminal's width). Inputs that
    are not there raise :class:`MissingInputs`, which holds the graph without them."""
    try:
        storage, parts, graph = plan_job(spec)
    except JobSpecError as err:
        raise MissingInputs(str(err), _graph_without_inputs(spec)) from None
    return plan_lines(spec, storage, graph, len(parts), refusal(spec, storage, parts, graph))


def plan_lines(
    spec: JobSpec, storage: Storage, graph: Graph, inputs: int | None, refused: str | None
) -> list[str]:
    """``inputs``: how many input files (None: they are missing, so no step's parts are known)."""
    states = graph.states(storage)
    rows = [("#", "step", "reads", "writes", "parts", "state")]
    for i, (step, st) in enumerate(zip(graph.steps, states, strict=True), 1):
        files = "the input files" if inputs is None else f"{inputs} input files"
        reads = ", ".join(str(d) for d in step.inputs.values()) or files
        writes = ", ".join(step.outputs)
        state = f"{st.status}: {st.reason}" if st.reason else st.status
        rows.append((str(i), step.name, reads, writes, _parts(st) if inputs is not None else "?", state))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    files = "inputs missing" if inputs is None else f"{inputs} input files"
    lines = [f"job {spec.name!r}: {files} -> {storage.uri()}"]
    for r in rows:
        lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=False)) + "  " + r[-1])
    stale = [s.name for s in states if s.status == "stale"]
    if refused:
        lines.append(f"refused: {refused}")
    elif stale:
        lines.append(f"a run reruns {len(stale)} of {len(states)} steps: {', '.join(stale)}")
    elif all(s.status == "done" for s in states):
        lines.append("every step is done: a run changes nothing")
    else:
        todo = [s.name for s in states if s.status != "done"]
        lines.append(f"a run resumes at {todo[0]} ({len(todo)} steps not done)")
    return lines
