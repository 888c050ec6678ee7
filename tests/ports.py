"""Free TCP ports on 127.0.0.1 for the servers tests start (SeaweedFS, the demo's image server), so
that a test never collides with a `loom demo` or another test session running on the same machine."""

from __future__ import annotations

import socket
from contextlib import ExitStack

HOST = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on ``HOST`` right now (all held open together, so they differ)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]


def free_port() -> int:
    return free_ports(1)[0]
