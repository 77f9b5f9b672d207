"""Throwaway servers on loopback for the benchmark and the tests: PostgreSQL 15 with PostGIS, and the process helpers.

Debian's binaries, a temporary directory each, stopped and deleted on exit, error or not.
The PostgreSQL store's tests run on one of these, as the benchmark's PostGIS path does.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from deconfliction.bench.ours import free_port

# ---------------------------------------------------------------------------- processes

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


def run_logged(cmd: Sequence[str], log: Path, timeout_s: float) -> None:
    """Run a command with its output in ``log``, bounded in time; raise with the log's tail on failure.

    Output goes to a file, not a pipe: pg_ctl leaves a server running, and a server that
    inherited our pipe would keep us waiting for an end of file that never comes.
    """
    with log.open("ab") as out:
        try:
            done = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{cmd[0]} took more than {timeout_s:g} s:\n{tail(log)}") from exc
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed with {done.returncode}:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Ask a child to stop, then make it stop: no process outlives the benchmark."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout_s)


# ---------------------------------------------------------------------------- PostGIS server

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"

PG_SETTINGS = {
    # Fair to our store, which commits durably: every commit reaches the disk.
    "fsync": "on",
    "synchronous_commit": "on",
    "full_page_writes": "on",
    # PostgreSQL's own cache; the rest of the data stays in the OS page cache, which
    # effective_cache_size tells the planner about.
    "shared_buffers": "256MB",
    "effective_cache_size": "2GB",
    "work_mem": "32MB",
    "maintenance_work_mem": "512MB",
    "max_connections": "50",
    # A bulk load should not be throttled by checkpoints every 1 GB of WAL.
    "max_wal_size": "8GB",
    "checkpoint_timeout": "30min",
    # JIT compiles queries that look expensive to the planner; a check is short, and paying
    # tens of ms of compilation now and then would only add noise to the latencies.
    "jit": "off",
    "random_page_cost": "1.1",  # local SSD
    "logging_collector": "off",
    "log_min_messages": "warning",
}


class PostgisServer:
    """A throwaway PostgreSQL 15 + PostGIS server on a free loopback port.

    >>> with PostgisServer() as pg:
    ...     path = PostgisPath(pg)

    Debian's binaries, a temporary directory, ``listen_addresses=127.0.0.1`` and the Unix
    socket inside the directory, a random password. initdb refuses to run as root, so
    when we are root the server runs as the ``postgres`` OS user, which owns the directory.
    Everything is stopped and deleted on exit, error or not.
    """

    def __init__(self, *, settings: dict[str, str] | None = None, attempts: int = 3) -> None:
        self.settings = {**PG_SETTINGS, **(settings or {})}
        self.attempts = attempts
        self.port = 0
        self.dsn = ""
        self._password = secrets.token_urlsafe(24)
        self._dir: Path | None = None

    @property
    def _data(self) -> Path:
        assert self._dir is not None, "the server is not started"
        return self._dir / "data"

    def __enter__(self) -> Self:
        self._dir = Path(tempfile.mkdtemp(prefix="deconfliction-pg-"))
        try:
            self._init()
            self._start()
            self._create_database()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._cleanup()

    def _as_server_user(self, *cmd: str | Path) -> list[str]:
        """The command run as the server's OS user: ``postgres`` when we are root, else ourselves."""
        args = [str(c) for c in cmd]
        return ["runuser", "-u", PG_USER, "--", *args] if os.geteuid() == 0 else args

    def _init(self) -> None:
        assert self._dir is not None
        pwfile = self._dir / "pwfile"
        pwfile.write_text(self._password + "\n")
        pwfile.chmod(0o600)
        if os.geteuid() == 0:
            user = pwd.getpwnam(PG_USER)
            for p in (self._dir, pwfile):
                os.chown(p, user.pw_uid, user.pw_gid)
        run_logged(
            self._as_server_user(
                PG_BIN / "initdb",
                "-D", self._data,
                "-U", PG_USER,
                "--pwfile", pwfile,
                "--auth-host=scram-sha-256",  # TCP with the random password only
                "--auth-local=peer",
                "-E", "UTF8",
                "--locale=C",
            ),
            self._dir / "initdb.log",
            timeout_s=120,
        )  # fmt: skip
        pwfile.unlink()
        lines = [f"{k} = '{v}'" for k, v in self.settings.items()]
        lines += ["listen_addresses = '127.0.0.1'", f"unix_socket_directories = '{self._dir}'"]
        # Appending as root keeps the file's owner: the server can still read it.
        with (self._data / "postgresql.conf").open("a") as conf:
            conf.write("\n# deconfliction bench\n" + "\n".join(lines) + "\n")

    def stop(self) -> None:
        """Stop the server, keeping its data: a database that goes away under running nodes."""
        self._stop()

    def start(self) -> None:
        """Start the stopped server again, on the same port: the database comes back."""
        self._start(self.port)

    def _start(self, port: int | None = None) -> None:
        """Start on ``port``, or a free port; if another process takes a free port first, try another."""
        assert self._dir is not None
        log = self._dir / "server.log"
        if os.geteuid() == 0:
            log.touch()
            user = pwd.getpwnam(PG_USER)
            os.chown(log, user.pw_uid, user.pw_gid)
        for attempt in range(self.attempts):
            self.port = port or free_port()
            try:
                run_logged(
                    self._as_server_user(
                        PG_BIN / "pg_ctl", "-D", self._data, "-l", log, "-w", "-t", str(int(START_TIMEOUT_S)),
                        "-o", f"-p {self.port}", "start",
                    ),
                    self._dir / "pg_ctl.log",
                    timeout_s=START_TIMEOUT_S + 10,
                )  # fmt: skip
                break
            except RuntimeError:
                if attempt == self.attempts - 1:
                    raise RuntimeError(f"PostgreSQL did not start:\n{tail(log)}") from None
        self.dsn = self._conninfo("bench")

    def _conninfo(self, dbname: str) -> str:
        return str(
            make_conninfo(
                host="127.0.0.1", port=self.port, dbname=dbname, user=PG_USER, password=self._password, connect_timeout=10
            )
        )

    def _create_database(self) -> None:
        self.create_database("bench")

    def create_database(self, name: str) -> str:
        """A new database with PostGIS, and its ``postgresql://`` URL (as ``--db`` takes it)."""
        with psycopg.connect(self._conninfo("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        with psycopg.connect(self._conninfo(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        return f"postgresql://{PG_USER}:{self._password}@127.0.0.1:{self.port}/{name}"

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self._data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError, AssertionError):
            return None

    def _cleanup(self) -> None:
        """Stop the server (fast, then immediate, then SIGKILL to the postmaster) and delete its directory."""
        if self._dir is None:
            return
        try:
            if self._postmaster_pid() is not None:
                self._stop()
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def _stop(self) -> None:
        assert self._dir is not None
        for mode in ("fast", "immediate"):
            try:
                run_logged(
                    self._as_server_user(
                        PG_BIN / "pg_ctl", "-D", self._data, "-m", mode, "-w", "-t", str(int(STOP_TIMEOUT_S)), "stop"
                    ),
                    self._dir / "pg_ctl.log",
                    timeout_s=STOP_TIMEOUT_S + 10,
                )
                return
            except RuntimeError:
                continue
        pid = self._postmaster_pid()
        if pid is not None:  # the postmaster we started; its children exit with it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
