"""A client of ``nucleus-run serve``: run commands in nucleus sandboxes from Python.

Pure standard library. One :class:`Client` per server socket; each
:meth:`Client.run` is one sandbox, its result the same object as
``nucleus-run --json`` prints::

    import nucleus
    client = nucleus.Client("/run/user/1000/nucleus.sock")
    r = client.run(["python3", "-c", "print(6 * 7)"], timeout=10, capture=True)
    assert r.exit_code == 0 and r.stdout == "42\\n"

A :class:`Session` keeps one sandbox for several commands: its files and
processes stay between them, its limits cover them all::

    with nucleus.Session(path, {"trust_level": "trusted"}) as s:
        s.run(["sh", "-c", "echo 42 > /tmp/answer"])
        r = s.run(["cat", "/tmp/answer"], timeout=10, capture=True)
        assert r.stdout == "42\\n"

The protocol (``docs/PROTOCOL.md`` in the repository): one request frame (a
4-byte big-endian length, then JSON) whose first byte carries the stdin,
stdout and stderr file descriptors (``SCM_RIGHTS``); one reply frame.
Closing the connection before the reply kills the sandbox.
"""

from __future__ import annotations

import json
import os
import socket
import struct
from dataclasses import dataclass, field
from typing import IO, Any, Mapping, Optional, Sequence, Union

__all__ = ["Client", "Result", "ServerError", "Session", "PROTOCOL_VERSION"]

PROTOCOL_VERSION = 1
MAX_REPLY = 256 << 20

FileLike = Union[int, IO[Any], None]


class ServerError(Exception):
    """The server gave no result: ``kind`` is ``bad-request``, ``refused``,
    ``busy``, ``setup``, ``not-found`` (no such session), ``exists`` (a
    session of that name exists) or ``no-reply`` (the server stopped or its
    worker died)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message


@dataclass
class Result:
    """One run's result (the fields of ``nucleus-run --json``; all in ``raw``)."""

    exit_code: int
    signal: Optional[int]
    killed_by: Optional[str]
    error: Optional[str]
    wall_time_ms: float
    stdout: Optional[str] = None
    stderr: Optional[str] = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, raw: dict) -> "Result":
        captured = raw.get("captured") or {}
        return cls(
            exit_code=raw["exit_code"],
            signal=raw.get("signal"),
            killed_by=raw.get("killed_by"),
            error=raw.get("error"),
            wall_time_ms=raw.get("wall_time_ms", 0.0),
            stdout=captured.get("stdout"),
            stderr=captured.get("stderr"),
            raw=raw,
        )

    @property
    def ok(self) -> bool:
        """The workload exited 0."""
        return self.exit_code == 0


class Client:
    """Runs sandboxes through the ``nucleus-run serve`` listening on ``path``.

    ``envelope`` holds defaults for every run (the keys of ``nucleus-run
    --config FILE.json``, e.g. ``{"trust_level": "trusted"}``); a run's own
    keys override them.
    """

    def __init__(self, path: Union[str, os.PathLike], envelope: Optional[Mapping[str, Any]] = None) -> None:
        self.path = os.fspath(path)
        self.envelope = dict(envelope or {})

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: Optional[float] = None,
        capture: bool = False,
        stdin: FileLike = None,
        stdout: FileLike = None,
        stderr: FileLike = None,
        cwd: Optional[str] = None,
        env: Optional[Mapping[str, str]] = None,
        envelope: Optional[Mapping[str, Any]] = None,
    ) -> Result:
        """Runs ``argv`` in a new sandbox and waits for its result.

        ``timeout`` (seconds) is the sandbox's wall-clock limit. With
        ``capture`` the output comes back in ``Result.stdout``/``stderr``;
        else it goes to ``stdout``/``stderr`` (a file object or fd; ``None``:
        discarded). ``stdin`` is ``/dev/null`` unless given. ``env`` sets
        variables inside the sandbox.
        """
        body: dict = {**self.envelope, **dict(envelope or {})}
        body["command"] = list(argv)
        if timeout is not None:
            body["timeout"] = _duration(timeout)
        if capture:
            body.setdefault("capture", 1 << 20)
        if env:
            body["env"] = {**body.get("env", {}), **dict(env)}
        request = {
            "version": PROTOCOL_VERSION,
            "op": "run",
            "envelope": body,
            "cwd": os.path.abspath(cwd or os.getcwd()),
        }
        return Result.from_json(self._exchange(request, [stdin, stdout, stderr]))

    def session(
        self,
        name: Optional[str] = None,
        envelope: Optional[Mapping[str, Any]] = None,
        idle_timeout: Optional[float] = None,
    ) -> "Session":
        """A :class:`Session` of this server with this client's envelope
        defaults; it is made when entered (or by :meth:`Session.create`)."""
        return Session(self, {**self.envelope, **dict(envelope or {})}, name=name,
                       idle_timeout=idle_timeout)

    def sessions(self) -> list:
        """The server's sessions: dicts with ``name``, ``age_s`` and
        ``idle_timeout``."""
        request = {"version": PROTOCOL_VERSION, "op": "session-ls"}
        return self._exchange(request, [])["sessions"]

    def _exchange(self, request: dict, stdio: Sequence[FileLike]) -> dict:
        payload = json.dumps(request).encode()
        frame = struct.pack(">I", len(payload)) + payload
        opened = []
        try:
            fds = []
            for f in stdio:
                if f is None:
                    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
                    opened.append(null)
                    fds.append(null)
                elif isinstance(f, int):
                    fds.append(f)
                else:
                    fds.append(f.fileno())
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.connect(self.path)
                try:
                    sent = socket.send_fds(sock, [frame], fds) if fds else sock.send(frame)
                    if sent < len(frame):
                        sock.sendall(frame[sent:])
                except BrokenPipeError:
                    # A server that refuses answers at once and closes: its
                    # reply is still there to read.
                    pass
                for fd in opened:
                    os.close(fd)
                opened = []
                reply = _read_frame(sock)
        finally:
            for fd in opened:
                os.close(fd)
        if reply.get("version") != PROTOCOL_VERSION:
            raise ServerError("bad-request", f"reply of protocol version {reply.get('version')}")
        if "error" in reply:
            raise ServerError(reply["error"]["kind"], reply["error"]["message"])
        return reply["result"]


class Session:
    """One sandbox kept for several commands, in the server of ``client``
    (a :class:`Client` or a socket path).

    ``envelope`` is the sandbox (``--config`` keys): under gVisor by
    default, natively with ``{"trust_level": "trusted"}``. ``name``
    defaults to a fresh one;
    ``idle_timeout`` (seconds; the server's default is 10 minutes) removes
    the session when no command ran for that long. As a context manager it
    is made on entry and removed on exit.
    """

    def __init__(
        self,
        client: Union["Client", str, os.PathLike],
        envelope: Optional[Mapping[str, Any]] = None,
        *,
        name: Optional[str] = None,
        idle_timeout: Optional[float] = None,
    ) -> None:
        self.client = client if isinstance(client, Client) else Client(client)
        self.envelope = dict(envelope or {})
        self.name = name or f"py-{os.getpid()}-{os.urandom(4).hex()}"
        self.idle_timeout = idle_timeout

    def create(self) -> "Session":
        """Makes the session's sandbox; raises :class:`ServerError` when it cannot."""
        request: dict = {
            "version": PROTOCOL_VERSION,
            "op": "session-create",
            "session": self.name,
            "envelope": self.envelope,
            "cwd": os.getcwd(),
        }
        if self.idle_timeout is not None:
            request["idle_timeout"] = _duration(self.idle_timeout)
        self.client._exchange(request, [])
        return self

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: Optional[float] = None,
        capture: bool = False,
        stdin: FileLike = None,
        stdout: FileLike = None,
        stderr: FileLike = None,
        env: Optional[Mapping[str, str]] = None,
        workdir: Optional[str] = None,
    ) -> Result:
        """Runs ``argv`` in the session and waits for its result; the
        arguments are those of :meth:`Client.run` (``workdir`` is a
        directory inside the sandbox). A timeout kills the command and its
        process group, not the session."""
        exec_: dict = {"command": list(argv)}
        if timeout is not None:
            exec_["timeout"] = _duration(timeout)
        if capture:
            exec_["capture"] = 1 << 20
        if env:
            exec_["env"] = dict(env)
        if workdir:
            exec_["workdir"] = workdir
        request = {
            "version": PROTOCOL_VERSION,
            "op": "session-exec",
            "session": self.name,
            "exec": exec_,
        }
        return Result.from_json(self.client._exchange(request, [stdin, stdout, stderr]))

    def remove(self) -> None:
        """Ends the session: its processes are killed and what it made is
        removed before this returns. Removing a session that is gone
        already is not an error."""
        request = {"version": PROTOCOL_VERSION, "op": "session-rm", "session": self.name}
        try:
            self.client._exchange(request, [])
        except ServerError as e:
            if e.kind != "not-found":
                raise

    def __enter__(self) -> "Session":
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _duration(seconds: float) -> str:
    """Seconds as the protocol's duration text (whole milliseconds)."""
    return f"{int(seconds * 1000)}ms"


def _read_frame(sock: socket.socket) -> dict:
    header = _read_exact(sock, 4)
    (length,) = struct.unpack(">I", header)
    if length > MAX_REPLY:
        raise ServerError("bad-request", f"a reply of {length} bytes")
    return json.loads(_read_exact(sock, length))


def _read_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise ServerError("no-reply", "the server closed the connection without a reply")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)
