"""``loom plan JOB``: the step graph of a job in run order and where its output root stands.

For each step: what it reads (``<step>.<output>``), what it writes, its parts and how many are done,
and its state — ``done``, ``partial`` (a rerun resumes it), ``to run``, or ``stale`` with the reason
(a setting of its own changed, or it reads a step that reruns). Nothing runs and Ray is not started.
"""

from __future__ import annotations

from typing import Any

from jobs.run import plan_job, refusal
from jobs.spec import JobSpec
from pipeline.graph import Graph, StepState
from pipeline.storage import Storage


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
    """The plan as lines of text, one step per line (never cut to the terminal's width)."""
    storage, parts, graph = plan_job(spec)
    return plan_lines(spec, storage, graph, len(parts), refusal(spec, storage, parts, graph))


def plan_lines(spec: JobSpec, storage: Storage, graph: Graph, inputs: int, refused: str | None) -> list[str]:
    states = graph.states(storage)
    rows = [("#", "step", "reads", "writes", "parts", "state")]
    for i, (step, st) in enumerate(zip(graph.steps, states, strict=True), 1):
        reads = ", ".join(str(d) for d in step.inputs.values()) or f"{inputs} input files"
        writes = ", ".join(step.outputs)
        state = f"{st.status}: {st.reason}" if st.reason else st.status
        rows.append((str(i), step.name, reads, writes, _parts(st), state))
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]) - 1)]
    lines = [f"job {spec.name!r}: {inputs} input files -> {storage.uri()}"]
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
