"""A throwaway real PostgreSQL server for the test suite.

One server is started per pytest session (`postgres_server`) and every test that asks for
`postgres_url` gets its own freshly created database, dropped afterwards, so tests never share
state. PostgreSQL refuses to run as root, so when the suite runs as root (CI does) the cluster
is owned by and run as an unprivileged system user.

Environment:
- LINLI_TEST_POSTGRES_DSN: use this already running server instead of starting one
  (e.g. ``postgresql://user@host:5432/postgres``; the user must be allowed to create databases).
- LINLI_REQUIRE_POSTGRES=1: a missing PostgreSQL installation fails the run instead of skipping
  the PostgreSQL tests, so they can never silently vanish from CI.
- LINLI_PG_BINDIR: the directory holding initdb and pg_ctl, when it cannot be found otherwise.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import glob
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NoReturn

import asyncpg
import pytest
from sqlalchemy.engine import make_url

REQUIRE_ENV = "LINLI_REQUIRE_POSTGRES"
EXTERNAL_DSN_ENV = "LINLI_TEST_POSTGRES_DSN"
BINDIR_ENV = "LINLI_PG_BINDIR"

# Debian/Ubuntu keep the server binaries off PATH, one directory per major version.
DEFAULT_BINDIR_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")

# Database names are interpolated into SQL (DDL cannot take bind parameters), so only
# plain lower-case identifiers are accepted.
_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=200"
)


def _is_bindir(path: Path) -> bool:
    return all(os.access(path / tool, os.X_OK) for tool in ("initdb", "pg_ctl"))


def _version_key(path: Path) -> tuple[int, ...]:
    # Prefer the newest major version when several are installed side by side.
    return tuple(int(part) for part in re.findall(r"\d+", str(path)))


def find_pg_bindir(candidates: Iterable[str] | None = None) -> Path | None:
    """Return the directory holding initdb and pg_ctl, or None if PostgreSQL is not installed.

    With ``candidates`` (directories or glob patterns) only those are searched; otherwise
    LINLI_PG_BINDIR, ``pg_config --bindir``, the usual install locations and PATH are tried.
    """
    if candidates is not None:
        patterns = list(candidates)
    else:
        patterns = []
        if os.environ.get(BINDIR_ENV):
            patterns.append(os.environ[BINDIR_ENV])
        pg_config = shutil.which("pg_config")
        if pg_config:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                out = subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=30
                )
                patterns.append(out.stdout.strip())
        patterns.extend(DEFAULT_BINDIR_GLOBS)
        initdb = shutil.which("initdb")
        if initdb:
            patterns.append(str(Path(initdb).resolve().parent))
    for pattern in patterns:
        if not pattern:
            continue
        matches = sorted((Path(p) for p in glob.glob(pattern)), key=_version_key, reverse=True)
        for path in matches:
            if _is_bindir(path):
                return path
    return None


def postgres_unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when LINLI_REQUIRE_POSTGRES=1 (CI must not lose these tests)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} (and {REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def locate_pg_bindir_or_skip(candidates: Iterable[str] | None = None) -> Path:
    bindir = find_pg_bindir(candidates)
    if bindir is None:
        postgres_unavailable("PostgreSQL not installed")
    return bindir


def _free_port() -> int:
    # The kernel hands out an unused port; another process could grab it before the server
    # binds it, which start() handles by retrying with a new port.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _check_db_name(name: str) -> str:
    if not _DB_NAME.match(name):
        raise ValueError(f"unsafe database name: {name!r}")
    return name


def _run_admin_sql(dsn: str, sql: str) -> None:
    """Run one statement on the server, synchronously.

    Fixtures may be set up while pytest-asyncio's loop is running, where asyncio.run is not
    allowed, so the statement runs on its own event loop in a helper thread.
    """

    async def execute() -> None:
        conn = await asyncpg.connect(dsn, timeout=30)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(lambda: asyncio.run(execute())).result()


class PostgresAdmin:
    """Creates and drops databases on a server reachable at ``admin_dsn``."""

    _drops: ThreadPoolExecutor | None = None

    @property
    def admin_dsn(self) -> str:
        """A libpq-style DSN for the maintenance database, e.g. postgresql://postgres@h:p/postgres."""
        raise NotImplementedError

    def url_for(self, name: str) -> str:
        """The SQLAlchemy async URL of database ``name`` on this server."""
        url = make_url(self.admin_dsn).set(drivername="postgresql+asyncpg", database=_check_db_name(name))
        return url.render_as_string(hide_password=False)

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create database ``name`` (a copy of ``template`` if given) and return its async URL."""
        sql = f'CREATE DATABASE "{_check_db_name(name)}"'
        if template is not None:
            sql += f' TEMPLATE "{_check_db_name(template)}"'
        _run_admin_sql(self.admin_dsn, sql)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        # FORCE ends connections a test left open, so one leak does not break the next test.
        _run_admin_sql(self.admin_dsn, f'DROP DATABASE IF EXISTS "{_check_db_name(name)}" WITH (FORCE)')

    @contextlib.contextmanager
    def temporary_database(self, *, template: str | None = None) -> Iterator[str]:
        """A fresh uniquely named database for the duration of the block; yields its async URL.

        With ``template``, the database starts as a copy of that one (PostgreSQL copies
        it file by file: much faster than building a schema again for every test).
        """
        # pid + random part: unique across tests and across pytest processes sharing a server.
        name = f"linli_test_{os.getpid()}_{uuid.uuid4().hex[:12]}"
        url = self.create_database(name, template=template)
        try:
            yield url
        finally:
            # Dropped in the background: the next test need not wait for it.
            self._dropper().submit(self.drop_database, name)

    def _dropper(self) -> ThreadPoolExecutor:
        if self._drops is None:
            self._drops = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pg-drop")
        return self._drops

    def finish_drops(self) -> None:
        """Wait for the background drops (before the server stops)."""
        if self._drops is not None:
            self._drops.shutdown(wait=True)
            self._drops = None


class ExternalPostgres(PostgresAdmin):
    """A server someone else runs (LINLI_TEST_POSTGRES_DSN); never started or stopped here."""

    def __init__(self, dsn: str) -> None:
        url = make_url(dsn)
        # asyncpg wants a libpq DSN, so drop any "+driver" the caller may have written.
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)

    @property
    def admin_dsn(self) -> str:
        return self._dsn


class PostgresServer(PostgresAdmin):
    """A private PostgreSQL cluster in a temporary directory, on a free loopback port."""

    def __init__(self, bindir: Path, *, run_as: str | None = None) -> None:
        self.bindir = bindir
        # PostgreSQL refuses to run as root: as root, run it as the postgres system user
        # (present wherever the Debian packages are) or else nobody.
        if run_as is None and os.geteuid() == 0:
            run_as = _unprivileged_user()
        self.run_as = run_as
        self.port: int | None = None
        self.base_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("server not started")
        return self.base_dir / "data"

    @property
    def admin_dsn(self) -> str:
        if self.port is None:
            raise RuntimeError("server not started")
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, *args: str) -> list[str]:
        if self.run_as is None:
            return list(args)
        if shutil.which("runuser"):
            return ["runuser", "-u", self.run_as, "--", *args]
        # setpriv wants the primary group too; "nobody"'s group is not called "nobody".
        user = pwd.getpwnam(self.run_as)
        return [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--init-groups",
            "--",
            *args,
        ]

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        assert self.base_dir is not None
        # cwd inside our own directory: the unprivileged user may not be able to read the
        # caller's cwd (e.g. /root), which initdb and pg_ctl complain about.
        return subprocess.run(
            self._command(*args),
            cwd=self.base_dir,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
            check=False,
        )

    def start(self) -> None:
        if self.port is not None:
            return
        self.base_dir = Path(tempfile.mkdtemp(prefix="linli-pg-", dir=_shared_tmp_dir()))
        atexit.register(self.stop)  # a crash between start and the fixture's teardown
        try:
            self._init_cluster()
            self._start_cluster()
        except BaseException:
            self.stop()
            raise

    def _init_cluster(self) -> None:
        assert self.base_dir is not None
        (self.base_dir / "sock").mkdir()
        if self.run_as is not None:
            user = pwd.getpwnam(self.run_as)
            for path in (self.base_dir, self.base_dir / "sock"):
                os.chown(path, user.pw_uid, user.pw_gid)
        result = self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data_dir),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale=C",
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def _start_cluster(self) -> None:
        assert self.base_dir is not None
        log = self.base_dir / "postgres.log"
        last_error = ""
        # A free port can be taken by someone else before the server binds it: retry a few.
        for _ in range(5):
            port = _free_port()
            options = f"-p {port} -k {shlex.quote(str(self.base_dir / 'sock'))} {_SERVER_OPTIONS}"
            # -w waits until the server accepts connections, so no polling loop is needed.
            result = self._run(
                str(self.bindir / "pg_ctl"),
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(log),
                "-o",
                options,
                "start",
            )
            if result.returncode == 0:
                self.port = port
                return
            last_error = f"{result.stdout}\n{result.stderr}\n{_tail(log)}"
            if "could not bind" not in last_error and "already in use" not in last_error:
                break
        raise RuntimeError(f"PostgreSQL did not start:\n{last_error}")

    def stop(self) -> None:
        """Stop the server (immediately: its data is thrown away) and remove its directory."""
        base_dir = self.base_dir
        if base_dir is None:
            return
        atexit.unregister(self.stop)
        try:
            if (base_dir / "data" / "postmaster.pid").exists():
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(base_dir / "data"),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                )
        finally:
            self.base_dir = None
            self.port = None
            shutil.rmtree(base_dir, ignore_errors=True)


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _unprivileged_user() -> str:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and neither a postgres nor a nobody user exists")


def _shared_tmp_dir() -> str:
    # The unprivileged server user must be able to reach its data directory, so every parent
    # of the temp dir must be searchable by others; fall back to /tmp when TMPDIR is private.
    tmp = Path(tempfile.gettempdir()).resolve()
    if os.geteuid() != 0:
        return str(tmp)
    for path in (tmp, *tmp.parents):
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return "/tmp"
    return str(tmp)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresAdmin]:
    """One PostgreSQL server for the whole run (or the one named by LINLI_TEST_POSTGRES_DSN)."""
    external = os.environ.get(EXTERNAL_DSN_ENV)
    if external:
        admin = ExternalPostgres(external)
        yield admin
        admin.finish_drops()
        return
    server = PostgresServer(locate_pg_bindir_or_skip())
    server.start()
    try:
        yield server
    finally:
        server.finish_drops()
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresAdmin) -> Iterator[str]:
    """A fresh empty database for this test only; yields its postgresql+asyncpg URL."""
    with postgres_server.temporary_database() as url:
        yield url
