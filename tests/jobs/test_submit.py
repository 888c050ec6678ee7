"""``loom submit`` against a real, token-authenticated Ray head started for this module.

The head runs in its own ``--temp-dir`` (so a local ``ray.init()`` of other tests neither finds nor
collides with it), on free ports, bound to 127.0.0.1, with ``RAY_AUTH_MODE=token`` and a fresh
token file. Teardown stops only this head (SIGTERM to its ``ray start --block``, then a sweep of
processes whose command line or cwd lies under its temp dir) — never ``ray stop``, which would kill
every Ray on the machine.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobs import submit as sub
from jobs.cli import main
from jobs.spec import load_job, parse_job
from jobs.submit import SubmitError, find_token, spec_json, stage_working_dir, submit, wait_job
from tests.raycluster import RayHead, free_ports, start_head, stop_head

SAMPLE_WARC = Path("warc") / "resiliparse" / "warcfile.warc.gz"  # under the shared data folder
HEAD_START_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 600.0

pytestmark = pytest.mark.filterwarnings("ignore:ssl=None is deprecated:DeprecationWarning")  # Ray's SDK


@pytest.fixture(scope="module")
def ray_head() -> Iterator[RayHead]:
    head = start_head()
    try:
        yield head
    finally:
        stop_head(head)


@pytest.fixture
def with_token(ray_head: RayHead, monkeypatch: pytest.MonkeyPatch) -> RayHead:
    """This process finds the head's token the standard way: ``RAY_AUTH_TOKEN_PATH``."""
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(ray_head.token_path))
    return ray_head


# --- helpers -------------------------------------------------------------------------------------


def write_spec(path: Path, name: str, paths: list[str], output: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f'name = "{name}"\noutput = "{output}"\n\n[[sources]]\ntype = "commoncrawl"\n'
        f"paths = {json.dumps(paths)}\nfetch_images = false\n"
    )
    return path


FAKE_CLI = '''\
"""A stand-in for ``loom run``: reads the shipped spec, writes the two outputs, or fails."""
import json, pathlib, sys, time

cmd, spec_path = sys.argv[1:3]
spec = json.loads(pathlib.Path(spec_path).read_text())
print("fake-run", cmd, spec["name"], flush=True)
src = pathlib.Path(spec["sources"][0]["paths"][0])
if spec["name"] == "slow":
    time.sleep(600)
if spec["name"] == "fails" or not (src.is_absolute() and src.is_file()):
    print("fake-run: failing on purpose", file=sys.stderr)
    sys.exit(3)
out = pathlib.Path(spec["output"])
out.mkdir(parents=True)
(out / "manifest.parquet").write_bytes(b"PAR1")
(out / "stats.json").write_text("{}")
'''


@pytest.fixture
def fake_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo root whose ``jobs.cli`` is ``FAKE_CLI``, so the Ray side is tested on its own."""
    root = tmp_path / "repo"
    for name in sub.CODE_PACKAGES:
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
    (root / "jobs" / "cli.py").write_text(FAKE_CLI)
    monkeypatch.setattr(sub, "REPO_ROOT", root)
    return root


# --- no cluster needed ---------------------------------------------------------------------------


def test_find_token_precedence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home\n")
    path = tmp_path / "tok"
    path.write_text("  from-path \n")
    cases = [
        ({"HOME": str(home)}, "from-home"),
        ({"HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(path)}, "from-path"),
        ({"HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(path), "RAY_AUTH_TOKEN": "from-env"}, "from-env"),
        ({"HOME": str(home), "RAY_AUTH_TOKEN": ""}, "from-home"),
        ({"HOME": str(tmp_path)}, None),
        ({"HOME": str(home), "RAY_AUTH_TOKEN": "x", "RAY_AUTH_MODE": "disabled"}, None),
    ]
    for env, want in cases:
        token = find_token(env)
        assert (token.value if token else None) == want, env
    with pytest.raises(SubmitError, match="RAY_AUTH_TOKEN_PATH"):
        find_token({"HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(tmp_path / "missing")})


RAY_LOADER = """
import json, os, sys
from ray._raylet import AuthenticationTokenLoader
out = []
for env in json.loads(sys.argv[1]):
    for k in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        os.environ.pop(k, None)
    os.environ.update(env)
    loader = AuthenticationTokenLoader.instance()
    loader.reset_cache()
    found = loader.has_token(ignore_auth_mode=True)
    out.append(loader.get_raw_token(ignore_auth_mode=True) if found else None)
print(json.dumps(out))
"""


def test_find_token_agrees_with_ray(tmp_path: Path) -> None:
    """Our lookup gives the token Ray's own loader gives (run apart: Ray caches it per process)."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("from-home\n")
    (tmp_path / "tok").write_text("from-path\n")
    envs = [
        {"HOME": str(home)},
        {"HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok")},
        {"HOME": str(home), "RAY_AUTH_TOKEN_PATH": str(tmp_path / "tok"), "RAY_AUTH_TOKEN": "from-env"},
        {"HOME": str(tmp_path)},
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    res = subprocess.run(
        [sys.executable, "-c", RAY_LOADER, json.dumps(envs)],
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    ray_says = json.loads(res.stdout.strip().splitlines()[-1])
    ours = [t.value if t else None for t in map(find_token, envs)]
    assert ours == ray_says


def test_the_shipped_spec_round_trips(tmp_path: Path) -> None:
    odd = 'a "quoted" \\ back\tslash\nnew line, ünï, \x7f, 🙂'
    spec = parse_job(
        {
            "name": odd,
            "output": "s3://bucket/out",
            "sources": [
                {"paths": ["/data/a.warc.gz", "s3://b/c.warc"], "limit": 3},
                {"listing": "/x/warc.paths", "name": "cc-listing"},
            ],
            "ray": {"parallelism": 4},
        }
    )
    assert parse_job(json.loads(spec_json(spec))) == spec


def test_staged_working_dir_has_code_and_absolute_spec(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path / "specs" / "job.toml", "t", ["../in/*.warc.gz"], "../out")
    spec = sub.resolved_spec(spec_path)
    dest = tmp_path / "wd"
    shipped = stage_working_dir(spec, dest)
    assert sorted(p.name for p in dest.iterdir()) == sorted([*sub.CODE_PACKAGES, sub.SHIPPED_SPEC])
    assert (dest / "jobs" / "cli.py").is_file() and (dest / "pipeline" / "config.py").is_file()
    assert not list(dest.rglob("__pycache__")) and not list(dest.rglob("*.pyc"))
    back = load_job(shipped)
    assert back == spec
    assert back.sources[0].paths == [str(tmp_path / "in" / "*.warc.gz")]
    assert back.output == str(tmp_path / "out")


def test_output_override_is_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec_path = write_spec(tmp_path / "specs" / "job.toml", "t", ["/in/a.warc"], "out")
    monkeypatch.chdir(tmp_path)
    assert sub.resolved_spec(spec_path, "elsewhere").output == str(tmp_path / "elsewhere")
    assert sub.resolved_spec(spec_path, "s3://b/o").output == "s3://b/o"


def test_normalize_address() -> None:
    assert sub.normalize_address("127.0.0.1:8265/") == "http://127.0.0.1:8265"
    assert sub.normalize_address("https://h:1") == "https://h:1"
    with pytest.raises(SubmitError, match="ray://"):
        sub.normalize_address("ray://h:10001")


def test_unreachable_address_is_one_line_error(tmp_path: Path) -> None:
    (port,) = free_ports(1)  # nothing listens there
    spec_path = write_spec(tmp_path / "job.toml", "t", ["/in/a.warc"], "out")
    with pytest.raises(SubmitError) as err:
        submit(spec_path, f"http://127.0.0.1:{port}")
    msg = str(err.value)
    assert "cannot reach the Ray dashboard" in msg and f"127.0.0.1:{port}" in msg and "\n" not in msg


def test_loom_submit_prints_the_error_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (port,) = free_ports(1)
    spec_path = write_spec(tmp_path / "job.toml", "t", ["/in/a.warc"], "out")
    assert main(["submit", str(spec_path), "--address", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("loom: error: cannot reach the Ray dashboard")


# --- against the head ----------------------------------------------------------------------------


def test_missing_token_is_one_line_error(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    spec_path = write_spec(tmp_path / "job.toml", "t", ["/in/a.warc"], "out")
    with pytest.raises(SubmitError) as err:
        submit(spec_path, ray_head.address)
    msg = str(err.value)
    assert "requires an auth token" in msg and "RAY_AUTH_TOKEN" in msg and "\n" not in msg


def test_wrong_token_is_one_line_error(
    ray_head: RayHead, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    spec_path = write_spec(tmp_path / "job.toml", "t", ["/in/a.warc"], "out")
    with pytest.raises(SubmitError) as err:
        submit(spec_path, ray_head.address)
    msg = str(err.value)
    assert "rejected the token from RAY_AUTH_TOKEN" in msg and "RAY_AUTH_TOKEN_PATH" in msg
    assert "\n" not in msg


def test_submit_ships_code_and_spec(
    with_token: RayHead, fake_repo: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The Ray side alone, with a stand-in ``jobs.cli``: success, logs, failure, --no-wait, timeout."""
    caplog.set_level(logging.INFO, logger="loom.submit")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.warc").write_text("x")
    ok = write_spec(tmp_path / "specs" / "ok.toml", "ok", ["../in/a.warc"], "../out")
    assert submit(ok, with_token.address, timeout=JOB_TIMEOUT_S) == 0
    assert (tmp_path / "out" / "manifest.parquet").is_file() and (tmp_path / "out" / "stats.json").is_file()
    assert "| fake-run run ok" in caplog.messages

    caplog.clear()
    fails = write_spec(tmp_path / "specs" / "fails.toml", "fails", ["../in/a.warc"], "../out2")
    assert submit(fails, with_token.address, wait=False) == 0
    submitted = [r for r in caplog.records if r.msg.startswith("submitted Ray job")]
    client, submission_id = sub.connect(with_token.address, find_token()), submitted[0].args[0]
    assert wait_job(client, submission_id, timeout=JOB_TIMEOUT_S) == 1
    assert any("failing on purpose" in m for m in caplog.messages)

    slow = write_spec(tmp_path / "specs" / "slow.toml", "slow", ["../in/a.warc"], "../out3")
    client, submission_id = sub.start_job(slow, with_token.address)
    try:
        with pytest.raises(SubmitError, match="still running after 2s"):
            wait_job(client, submission_id, timeout=2)
    finally:
        client.stop_job(submission_id)


def test_submit_real_loom_job(
    with_token: RayHead, shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real Loom job spec over a small WARC, run by ``python -m jobs.cli run`` on the cluster."""
    warc = shared_data / SAMPLE_WARC
    if not warc.is_file():
        pytest.skip(f"sample WARC not found at {warc}")
    caplog.set_level(logging.INFO, logger="loom.submit")
    (tmp_path / "in").mkdir()
    shutil.copy(warc, tmp_path / "in" / warc.name)
    spec_path = write_spec(tmp_path / "job.toml", "submit-test", [f"in/{warc.name}"], "result")
    code = submit(spec_path, with_token.address, timeout=JOB_TIMEOUT_S)
    assert code == 0, "\n".join(caplog.messages[-40:])
    assert (tmp_path / "result" / "manifest.parquet").is_file()
    assert (tmp_path / "result" / "stats.json").is_file()
    assert json.loads((tmp_path / "result" / "stats.json").read_text())["job"] == "submit-test"
