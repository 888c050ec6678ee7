"""The training loop of docs/TRAINING.md runs as written on the demo, and resumes from its checkpoint."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def training_loop(out: Path, steps: int) -> str:
    """The loop's code, reading ``out`` and stopping at ``steps``."""
    section = (REPO / "docs/TRAINING.md").read_text().split("## A training loop", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    line = 'OUT, STEPS, CHECKPOINT = "out/demo/result", 20, "checkpoint.pt"'
    assert line in code
    return code.replace(line, f'OUT, STEPS, CHECKPOINT = {str(out)!r}, {steps}, "checkpoint.pt"')


def run(script: Path, code: str) -> subprocess.CompletedProcess:
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, str(script)], cwd=script.parent, capture_output=True, text=True, env=env
    )


def test_the_documented_training_loop_trains_checkpoints_and_resumes(demo_result, tmp_path):
    first = run(tmp_path / "train.py", training_loop(demo_result, 20))
    assert first.returncode == 0, first.stderr[-3000:]
    assert [line.split(":")[0] for line in first.stdout.splitlines()] == [
        "step 5",
        "step 10",
        "step 15",
        "step 20",
    ]
    second = run(tmp_path / "train.py", training_loop(demo_result, 30))  # from the checkpoint of step 20
    assert second.returncode == 0, second.stderr[-3000:]
    assert [line.split(":")[0] for line in second.stdout.splitlines()] == ["step 25", "step 30"]
