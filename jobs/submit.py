"""``loom submit``: run a job spec as a Ray job on a cluster, through the Ray Jobs API.

The job is shipped as a ``working_dir`` runtime env holding this repository's code packages and a
copy of the job spec whose relative paths are resolved to absolute ones (so the cluster runs the
same code on the same inputs: local inputs must sit on a disk the cluster shares, or be s3://).
On the cluster the entrypoint is ``python -m jobs.cli run loom_job.json``.

Authentication follows Ray's token auth: the token is found the way Ray finds it —
``RAY_AUTH_TOKEN``, else the file named by ``RAY_AUTH_TOKEN_PATH``, else ``~/.ray/auth_token`` — and
sent as ``Authorization: Bearer <token>``. Unlike Ray's own clients (``ray job ...``), which send it
only when ``RAY_AUTH_MODE=token`` is set, a token that is found is always sent;
``RAY_AUTH_MODE=disabled`` sends none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import requests

from jobs.spec import JobSpec, load_job
from pipeline.config import is_remote

if TYPE_CHECKING:
    from ray.job_submission import JobStatus, JobSubmissionClient

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_PACKAGES = ("pipeline", "filters", "tokenizer", "shards", "jobs")
SHIPPED_SPEC = "loom_job.json"
IGNORED = ("__pycache__", "*.py[co]", ".venv", ".git", "out", ".pytest_cache", ".ruff_cache", "*.egg-info")
TOKEN_HELP = (
    "set RAY_AUTH_TOKEN to the cluster's token, or RAY_AUTH_TOKEN_PATH to a file holding it "
    "(default ~/.ray/auth_token; `ray get-auth-token` on the head node prints it)"
)
PREFLIGHT_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 1.0

_log = logging.getLogger("loom.submit")


class SubmitError(Exception):
    """A job that cannot be submitted or followed; the message is one line, fit for the CLI."""


# --- the token ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    """A Ray auth token and where it came from (named in errors)."""

    value: str
    source: str


def find_token(env: Mapping[str, str] | None = None) -> Token | None:
    """The Ray auth token, looked up as Ray does; None when there is none or auth is disabled.

    Precedence: ``RAY_AUTH_TOKEN`` (non-empty), then the file at ``RAY_AUTH_TOKEN_PATH`` (which must
    be readable and non-empty, as in Ray), then ``~/.ray/auth_token``. Whitespace is stripped.
    """
    env = os.environ if env is None else env
    if _auth_disabled(env):
        return None
    if env.get("RAY_AUTH_TOKEN", "").strip():
        return Token(env["RAY_AUTH_TOKEN"].strip(), "RAY_AUTH_TOKEN")
    if env.get("RAY_AUTH_TOKEN_PATH"):
        path = Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser()
        value = _read_token_file(path)
        if not value:
            raise SubmitError(f"RAY_AUTH_TOKEN_PATH={path}: file missing, unreadable or empty")
        return Token(value, f"RAY_AUTH_TOKEN_PATH={path}")
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    default = home / ".ray" / "auth_token"
    value = _read_token_file(default)
    return Token(value, str(default)) if value else None


def _auth_disabled(env: Mapping[str, str]) -> bool:
    return env.get("RAY_AUTH_MODE", "").strip().lower() == "disabled"


def _read_token_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def auth_headers(token: Token | None) -> dict[str, str]:
    """HTTP headers carrying the token (Ray's dashboard reads ``Authorization: Bearer <token>``)."""
    return {"Authorization": f"Bearer {token.value}"} if token else {}


# --- the cluster ---------------------------------------------------------------------------------


def normalize_address(address: str) -> str:
    """``HOST:PORT`` or ``http(s)://HOST:PORT[/]`` → ``http(s)://HOST:PORT``."""
    address = address.strip().rstrip("/")
    if not address:
        raise SubmitError("no Ray dashboard address given (e.g. --address http://HOST:8265)")
    if address.startswith("ray://"):
        raise SubmitError(f"{address}: give the dashboard's http://HOST:8265 address, not a ray:// one")
    return address if re.match(r"^https?://", address) else f"http://{address}"


def auth_error(address: str, token: Token | None) -> SubmitError:
    """The one-line error for a request the cluster refused for authentication."""
    if token is None:
        why = "RAY_AUTH_MODE=disabled sends none" if _auth_disabled(os.environ) else "none found"
        return SubmitError(f"the Ray cluster at {address} requires an auth token, {why}: {TOKEN_HELP}")
    return SubmitError(f"the Ray cluster at {address} rejected the token from {token.source}: {TOKEN_HELP}")


def client_error(err: Exception, address: str, token: Token | None, doing: str) -> SubmitError:
    """A one-line ``SubmitError`` for an exception raised by the Ray Jobs SDK."""
    from ray.exceptions import AuthenticationError

    if isinstance(err, AuthenticationError):
        return auth_error(address, token)
    return SubmitError(f"{doing} at {address} failed: {_first_line(err)}")


def check_cluster(address: str, token: Token | None, timeout: float = PREFLIGHT_TIMEOUT_S) -> str:
    """Fail fast, with one line, when the dashboard is unreachable, not Ray, or refuses the token.

    Returns the cluster's Ray version.
    """
    try:
        r = requests.get(f"{address}/api/version", headers=auth_headers(token), timeout=timeout)
    except requests.RequestException as err:
        raise SubmitError(
            f"cannot reach the Ray dashboard at {address} ({type(err).__name__}): is the cluster up, "
            "and is this its dashboard address (usually port 8265)?"
        ) from None
    if r.status_code in (401, 403):
        raise auth_error(address, token)
    if r.status_code != 200:
        raise SubmitError(f"{address} answered HTTP {r.status_code} to /api/version: is it a Ray dashboard?")
    try:
        return str(r.json()["ray_version"])
    except (ValueError, KeyError, TypeError):
        raise SubmitError(f"{address}/api/version did not answer like a Ray dashboard") from None


def connect(address: str, token: Token | None) -> JobSubmissionClient:
    """A ``JobSubmissionClient`` for the dashboard at ``address``, token attached, checked first."""
    from ray.job_submission import JobSubmissionClient

    address = normalize_address(address)
    version = check_cluster(address, token)
    _log.debug("Ray %s at %s", version, address)
    try:
        return JobSubmissionClient(address, headers=auth_headers(token))
    except Exception as err:  # AuthenticationError, ConnectionError, RuntimeError, ...
        raise client_error(err, address, token, "connecting to the Ray dashboard") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


# --- the shipped spec and working dir ------------------------------------------------------------


def resolved_spec(job_path: Path, output: str | None = None) -> JobSpec:
    """The job spec with every local path absolute; a relative ``output`` override is taken from the cwd."""
    if output is not None and not is_remote(output):
        output = str(Path(output).expanduser().resolve())
    return load_job(job_path, output=output)


def spec_json(spec: JobSpec) -> str:
    """The resolved spec as JSON (``loom run`` reads ``.json`` specs as it reads TOML ones)."""
    return json.dumps(spec.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n"


def stage_working_dir(spec: JobSpec, dest: Path, repo_root: Path | None = None) -> Path:
    """Fill ``dest`` with the code packages and the resolved spec; returns the spec's path in it."""
    root = REPO_ROOT if repo_root is None else repo_root
    for name in CODE_PACKAGES:
        src = root / name
        if not src.is_dir():
            raise SubmitError(f"{src}: code package missing, cannot ship the code to the cluster")
        shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(*IGNORED))
    spec_path = dest / SHIPPED_SPEC
    spec_path.write_text(spec_json(spec), encoding="utf-8")
    return spec_path


def entrypoint() -> str:
    """The command the cluster runs, in the working dir."""
    return f"python -m jobs.cli run {SHIPPED_SPEC}"


def _log_local_inputs(spec: JobSpec, log: logging.Logger) -> None:
    local = [p for src in spec.sources for p in [*src.paths, src.listing or ""] if p and not is_remote(p)]
    if local:
        log.info("local inputs (%s, ...) must be readable at the same paths on the cluster", local[0])
    if not is_remote(spec.output):
        log.info("output %s is written by the cluster: it must be a shared disk to see it here", spec.output)


# --- submit and follow ---------------------------------------------------------------------------


def start_job(
    job_path: Path,
    address: str,
    *,
    output: str | None = None,
    log: logging.Logger = _log,
    repo_root: Path | None = None,
) -> tuple[JobSubmissionClient, str]:
    """Submit the job and return ``(client, submission_id)`` without waiting."""
    spec = resolved_spec(Path(job_path), output)
    token = find_token()
    client = connect(address, token)
    _log_local_inputs(spec, log)
    with tempfile.TemporaryDirectory(prefix="loom-submit-") as tmp:
        stage_working_dir(spec, Path(tmp), repo_root)
        try:
            submission_id = client.submit_job(
                entrypoint=entrypoint(),
                runtime_env={"working_dir": tmp},
                metadata={"loom_job": spec.name, "loom_fingerprint": spec.fingerprint()},
            )
        except Exception as err:  # AuthenticationError, RuntimeError (HTTP errors), requests errors
            raise client_error(err, client.get_address(), token, "submitting the job") from None
    log.info("submitted Ray job %s (%s → %s)", submission_id, spec.name, spec.output)
    return client, submission_id


def wait_job(
    client: JobSubmissionClient,
    submission_id: str,
    *,
    log: logging.Logger = _log,
    timeout: float | None = None,
) -> int:
    """Stream the job's logs until it ends; 0 when it SUCCEEDED, 1 when it FAILED or was STOPPED.

    ``timeout`` (seconds, None: no limit) bounds the wait: past it ``SubmitError`` is raised and
    the job keeps running.
    """
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobStatus

    deadline = _Deadline(submission_id, timeout)
    try:
        status = _follow(client, submission_id, _LineLogger(log), deadline, log)
    except KeyboardInterrupt:
        log.warning(
            "stopped following; the job keeps running (%s)",
            _ray_cli_hint("stop", submission_id, client.get_address()),
        )
        raise
    except (AuthenticationError, RuntimeError, requests.RequestException) as err:
        raise SubmitError(
            f"following Ray job {submission_id} failed, it may still run: {_first_line(err)}"
        ) from None
    if status == JobStatus.SUCCEEDED:
        log.info("Ray job %s succeeded", submission_id)
        return 0
    message = (client.get_job_info(submission_id).message or "").strip()
    log.error("Ray job %s %s: %s", submission_id, status.value.lower(), message.split("\n")[0])
    return 1


def _follow(
    client: JobSubmissionClient,
    submission_id: str,
    lines: _LineLogger,
    deadline: _Deadline,
    log: logging.Logger,
) -> JobStatus:
    """Log the job's output as it comes (websocket tail, else polling) and return its final status."""
    try:
        asyncio.run(asyncio.wait_for(_tail_logs(client, submission_id, lines), deadline.timeout))
    except TimeoutError:
        raise deadline.error() from None
    except Exception as err:  # the log websocket refused (a proxy, ...): poll instead
        log.debug("log tailing failed (%s); polling", err)
        _poll_logs(client, submission_id, lines, deadline)
    lines.close()
    while not (status := client.get_job_status(submission_id)).is_terminal():
        deadline.check()
        time.sleep(POLL_INTERVAL_S)
    return status


@dataclass
class _Deadline:
    """An optional time limit on following a job."""

    submission_id: str
    timeout: float | None

    def __post_init__(self) -> None:
        self.at = None if self.timeout is None else time.monotonic() + self.timeout

    def error(self) -> SubmitError:
        return SubmitError(
            f"Ray job {self.submission_id} still running after {self.timeout:.0f}s; it keeps running"
        )

    def check(self) -> None:
        if self.at is not None and time.monotonic() > self.at:
            raise self.error()


class _LineLogger:
    """Turns log chunks into whole lines, each logged once; counts the characters fed."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self.rest = ""
        self.fed = 0

    def feed(self, chunk: str) -> None:
        self.fed += len(chunk)
        *lines, self.rest = (self.rest + chunk).split("\n")
        for line in lines:
            self.log.info("| %s", line.rstrip("\r"))

    def close(self) -> None:
        if self.rest:
            self.log.info("| %s", self.rest)
        self.rest = ""


async def _tail_logs(client: JobSubmissionClient, submission_id: str, lines: _LineLogger) -> None:
    async for chunk in client.tail_job_logs(submission_id):
        lines.feed(chunk)


def _poll_logs(
    client: JobSubmissionClient, submission_id: str, lines: _LineLogger, deadline: _Deadline
) -> None:
    """Follow the logs by polling ``get_job_logs`` (all the text so far) from what was already fed."""
    while True:
        done = client.get_job_status(submission_id).is_terminal()
        text = client.get_job_logs(submission_id)
        lines.feed(text[lines.fed :])
        if done:
            return
        deadline.check()
        time.sleep(POLL_INTERVAL_S)


def _ray_cli_hint(verb: str, submission_id: str, address: str) -> str:
    """The ``ray job`` command for this job; Ray's CLI sends a token only with RAY_AUTH_MODE=token."""
    try:
        token = find_token()
    except SubmitError:
        token = None
    needs_mode = token is not None and os.environ.get("RAY_AUTH_MODE", "").lower() != "token"
    prefix = "RAY_AUTH_MODE=token " if needs_mode else ""
    follow = " -f" if verb == "logs" else ""
    return f"{prefix}ray job {verb}{follow} {submission_id} --address {address}"


def submit(
    job_path: Path,
    address: str,
    *,
    output: str | None = None,
    wait: bool = True,
    log: logging.Logger = _log,
    timeout: float | None = None,
    announce: Callable[[str], object] | None = None,
) -> int:
    """Run ``job_path`` as a Ray job on the cluster whose dashboard is ``address``.

    ``announce(submission_id)`` is called once the cluster has accepted the job (the CLI prints it).

    With ``wait`` the job's logs are streamed (as ``log`` records) until it ends, and the exit code
    is 0 when the job SUCCEEDED, 1 when it FAILED or was STOPPED; without, it returns 0 once the
    job is accepted (the submission id is logged). Raises ``SubmitError`` (one line) when the
    cluster cannot be reached or refuses the request, or when ``timeout`` seconds pass first.
    """
    client, submission_id = start_job(job_path, address, output=output, log=log)
    if announce is not None:
        announce(submission_id)
    if not wait:
        log.info(
            "not waiting; follow it with: %s", _ray_cli_hint("logs", submission_id, client.get_address())
        )
        return 0
    return wait_job(client, submission_id, log=log, timeout=timeout)
