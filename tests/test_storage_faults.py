"""Storage faults: a full disk, a database locked by another process, a damaged file at start,
and readers (`vedette search`, `alerts list`) running while the daemon writes.

A failed write rolls the whole poll back and leaves as a readable StoreError; nothing is half
written, the next poll stores everything once the fault clears, and a damaged file is refused
with the documented recovery (README, Backups) instead of being recreated.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from daemon import store as store_module
from daemon.cli import main
from daemon.config import load_settings
from daemon.errors import StoreError
from daemon.models import Article
from daemon.service import Runtime, poll_once
from daemon.store import Store
from support import Item, rss, start_daemon, wait_until, write_config

FEED_HEADERS = {"Content-Type": "application/rss+xml"}


def items(count: int, *, start: int = 0, text: str = "") -> list[Item]:
    return [
        Item(f"Бахмут: report {n}", f"https://news.example/{n}", text or f"Body {n}", f"id-{n}")
        for n in range(start, start + count)
    ]


def serve(httpserver: HTTPServer, body: str) -> str:
    httpserver.expect_request("/feed").respond_with_data(body, headers=FEED_HEADERS)
    return httpserver.url_for("/feed")


def open_runtime(config: Path) -> Runtime:
    return Runtime.open(load_settings(config, environ={}), console=io.StringIO())


def count(runtime: Runtime, table: str) -> int:
    return int(runtime.store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def integrity(path: Path) -> str:
    import sqlite3

    with contextlib.closing(sqlite3.connect(path)) as db:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])


# --- disk full ----------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs: a real disk that fills up (needs root to mount)."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root; test_database_full_* covers the rest")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(folder: Path) -> Path:
    """Write a file until the filesystem is full; delete it to free the space again."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, bytes(65536))
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
    while True:  # the last few blocks
        try:
            os.write(fd, bytes(512))
        except OSError:
            break
    os.close(fd)
    return filler


async def test_disk_full_fails_the_poll_cleanly_and_it_recovers(
    httpserver: HTTPServer, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = serve(httpserver, rss(items(150, text="Оборона " * 40)))
    runtime = open_runtime(write_config(small_disk, feeds=[("wire", url)]))
    database = runtime.settings.database
    try:
        filler = fill(small_disk)
        with caplog.at_level(logging.ERROR):
            (outcome,), _ = await poll_once(runtime)
        assert outcome.outcome == "failed"
        assert "database or disk is full" in (outcome.error or "")
        assert "free disk space" in (outcome.error or "")
        assert any(r.getMessage().startswith("poll_error feed=wire") for r in caplog.records)
        assert count(runtime, "articles") == 0  # all or nothing: the poll was rolled back
        assert count(runtime, "alerts") == 0
        assert runtime.store.feed_state("wire").etag is None  # so the next poll refetches

        filler.unlink()  # space comes back: the next poll stores everything, once
        (outcome,), drained = await poll_once(runtime)
        assert (outcome.outcome, outcome.new, outcome.alerts) == ("changed", 150, 150)
        assert drained.sent == 150
        assert runtime.store.feed_state("wire").status == "ok"
        (outcome,), _ = await poll_once(runtime)
        assert outcome.new == 0 and count(runtime, "articles") == 150
    finally:
        runtime.close()
    assert integrity(database) == "ok"


async def test_database_full_rolls_back_and_recovers(
    httpserver: HTTPServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same without root: SQLite's own size cap gives the same SQLITE_FULL."""
    url = serve(httpserver, rss(items(200, text="Оборона " * 40)))
    runtime = open_runtime(write_config(tmp_path, feeds=[("wire", url)]))
    try:
        pages = runtime.store.db.execute("PRAGMA page_count").fetchone()[0]
        runtime.store.db.execute(f"PRAGMA max_page_count = {pages + 5}")
        (outcome,), _ = await poll_once(runtime)
        assert outcome.outcome == "failed"
        assert outcome.error is not None and outcome.error.startswith(
            f"{runtime.settings.database}: database error (database or disk is full); "
            "free disk space where the database lives"
        )
        assert count(runtime, "articles") == 0
        runtime.store.db.execute("PRAGMA max_page_count = 1073741823")
        (outcome,), _ = await poll_once(runtime)
        assert (outcome.outcome, outcome.new) == ("changed", 200)
    finally:
        runtime.close()
    assert integrity(tmp_path / "data" / "vedette.db") == "ok"


# --- another process holds the lock -------------------------------------------------------------


class LockHolder:
    """A second process holding SQLite's write lock (BEGIN EXCLUSIVE plus a write) until told."""

    def __init__(self, database: Path) -> None:
        code = (
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(database)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "db.execute(\"UPDATE feeds SET title = 'held by another process'\")\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "db.execute('COMMIT')\n"
            "print('released', flush=True)\n"
        )
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None and self.process.stdin is not None
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        if self.process.poll() is None:
            self.process.stdin.write("\n")
            self.process.stdin.flush()
            assert self.process.stdout.readline().strip() == "released"
        self.process.stdin.close()
        self.process.stdout.close()
        self.process.wait(timeout=10)


def hit_recorder(httpserver: HTTPServer, body: str) -> tuple[str, threading.Event]:
    hit = threading.Event()

    def handler(request: Request) -> Response:
        hit.set()
        return Response(body, headers=FEED_HEADERS)

    httpserver.expect_request("/feed").respond_with_handler(handler)
    return httpserver.url_for("/feed"), hit


async def test_poll_waits_for_a_lock_held_by_another_process(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The poll's transaction reads, then writes. In WAL mode a deferred transaction cannot
    wait for the write lock after reading, so it failed at once even though the other process
    let go long before the busy timeout. BEGIN IMMEDIATE waits."""
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 10.0)
    url, hit = hit_recorder(httpserver, rss(items(20)))
    runtime = open_runtime(write_config(tmp_path, feeds=[("wire", url)]))
    holder = LockHolder(runtime.settings.database)
    held_s = 0.5

    def release_later() -> None:  # the other process finishes its work while we wait
        hit.wait(timeout=10)
        threading.Event().wait(held_s)
        holder.release()

    releaser = threading.Thread(target=release_later)
    releaser.start()
    try:
        started = time.monotonic()
        (outcome,), drained = await poll_once(runtime)
        elapsed = time.monotonic() - started
    finally:
        releaser.join(timeout=15)
        runtime.close()
    assert (outcome.outcome, outcome.new, drained.sent) == ("changed", 20, 20), outcome.error
    assert elapsed >= held_s  # it waited for the lock rather than failing
    assert integrity(tmp_path / "data" / "vedette.db") == "ok"


async def test_lock_held_past_the_busy_timeout_is_a_clear_store_error(
    httpserver: HTTPServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.3)
    url = serve(httpserver, rss(items(20)))
    runtime = open_runtime(write_config(tmp_path, feeds=[("wire", url)]))
    holder = LockHolder(runtime.settings.database)
    try:
        with pytest.raises(StoreError) as caught:  # the outbox after the poll cannot write
            await poll_once(runtime)
        assert "database is locked" in str(caught.value)
        assert "another process held the database for over 0.3s" in str(caught.value)
        assert count(runtime, "articles") == 0
        holder.release()
        (outcome,), _ = await poll_once(runtime)
        assert (outcome.outcome, outcome.new) == ("changed", 20)
    finally:
        holder.release()
        runtime.close()
    assert integrity(tmp_path / "data" / "vedette.db") == "ok"


# --- a damaged database at start ----------------------------------------------------------------


@pytest.fixture(scope="module")
def good_database(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A checkpointed database of a few MB, as bytes to damage."""
    path = tmp_path_factory.mktemp("good") / "vedette.db"
    store = Store.open(path)
    now = datetime.now(UTC)
    articles = [
        Article(str(n), f"https://x.example/{n}", f"title {n}", "s" * 3000, "", "", now, f"h{n}")
        for n in range(1000)
    ]
    with store.transaction():
        store.upsert_articles("wire", articles, fetched=now)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path.read_bytes()


def damage(good: bytes, how: str) -> bytes:
    middle = len(good) // 2
    return {
        "garbage": b"this is not a database" * 100,
        "truncated": good[: len(good) // 3],
        "bad-header": b"SQLite format 3\x00" + bytes(84) + good[100:],
        "zeroed-page": good[:middle] + bytes(4096) + good[middle + 4096 :],
    }[how]


@pytest.mark.parametrize(
    ("how", "command", "subprocess_"),
    [
        ("garbage", "poll", False),
        ("truncated", "poll", False),
        ("bad-header", "poll", False),
        ("garbage", "run", True),
        ("truncated", "run", False),
        ("zeroed-page", "run", True),  # only the daemon reads every page at start
    ],
)
def test_damaged_database_is_refused_never_recreated(
    tmp_path: Path, good_database: bytes, how: str, command: str, subprocess_: bool
) -> None:
    config = write_config(tmp_path, feeds=[("wire", "http://127.0.0.1:9/feed")])
    database = tmp_path / "data" / "vedette.db"
    database.parent.mkdir()
    database.write_bytes(damage(good_database, how))
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    if subprocess_:
        result = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(config), command],
            capture_output=True,
            text=True,
            timeout=30,
        )
        code, stderr = result.returncode, result.stderr
    else:
        invoked = CliRunner().invoke(main, ["--config", str(config), command])
        code, stderr = invoked.exit_code, invoked.stderr
    assert code == 1, stderr
    assert stderr.startswith(f"error: {database}: "), stderr
    assert "restore a backup (see README, Backups)" in stderr
    assert "Traceback" not in stderr
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before  # not touched
    assert sorted(p.name for p in database.parent.iterdir()) in (
        ["vedette.db"],
        ["vedette.db", "vedette.db-shm", "vedette.db-wal"],
    )


def test_readme_documents_the_recovery() -> None:
    readme = Path("README.md").read_text(encoding="utf-8")
    assert "refuses to start with a clear message: move the file aside and restore" in readme
    assert '.backup data/backup.db"' in readme


# --- readers while the daemon writes ------------------------------------------------------------


def run_readers(
    config: Path, rounds: int, per_round: int
) -> list[subprocess.CompletedProcess[str]]:
    """`per_round` concurrent `search` and `alerts list` processes, `rounds` times."""
    done: list[subprocess.CompletedProcess[str]] = []
    base = [sys.executable, "-m", "daemon", "--config", str(config)]
    for _ in range(rounds):
        procs = []
        for n in range(per_round):
            args = ["search", "Бахмут", "--json"] if n % 2 == 0 else ["alerts", "list", "--json"]
            procs.append(
                (
                    args,
                    subprocess.Popen(
                        base + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
                    ),
                )
            )
        for args, proc in procs:
            out, err = proc.communicate(timeout=60)
            done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def readers_while_daemon_writes(
    httpserver: HTTPServer, tmp_path: Path, rounds: int, per_round: int
) -> None:
    polls = {"n": 0}

    def growing_feed(request: Request) -> Response:
        polls["n"] += 1  # every poll brings 25 new articles
        return Response(rss(items(25, start=25 * polls["n"])), headers=FEED_HEADERS)

    httpserver.expect_request("/feed").respond_with_handler(growing_feed)
    config = write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))])
    config.write_text(
        config.read_text().replace("feeds:", "defaults: {interval: 1s, jitter: 0s}\nfeeds:")
    )
    log = tmp_path / "daemon.log"
    with log.open("w") as sink:
        daemon = start_daemon(config, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        wait_until(lambda: polls["n"] >= 2, timeout_s=30, what="the daemon's first polls")
        first = polls["n"]
        results = run_readers(config, rounds, per_round)
        wait_until(lambda: polls["n"] >= first + 2, timeout_s=30, what="polls after the readers")
        assert daemon.poll() is None, log.read_text()
    finally:
        daemon.terminate()
        daemon.wait(timeout=15)
    failures = [(r.args, r.returncode, r.stderr[-500:]) for r in results if r.returncode != 0]
    assert failures == []
    for result in results:
        for line in result.stdout.splitlines():
            json.loads(line)
    assert any(r.stdout for r in results if r.args[0] == "search")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert not [e for e in events if e["level"] == "error" or "job_crashed" in e["message"]]
    assert daemon.returncode == 0
    assert integrity(tmp_path / "data" / "vedette.db") == "ok"


def test_readers_succeed_while_the_daemon_writes(httpserver: HTTPServer, tmp_path: Path) -> None:
    readers_while_daemon_writes(httpserver, tmp_path, rounds=2, per_round=4)


@pytest.mark.soak
def test_readers_succeed_while_the_daemon_writes_soak(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    readers_while_daemon_writes(httpserver, tmp_path, rounds=25, per_round=8)


async def test_nothing_is_lost_when_the_disk_fills_again_and_again(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Cycles of full / not full: every article ends up stored exactly once."""
    polls = {"n": 0}

    def growing_feed(request: Request) -> Response:
        polls["n"] += 1
        batch = items(10, start=10 * polls["n"], text="Оборона " * 500)
        return Response(rss(batch), headers=FEED_HEADERS)

    httpserver.expect_request("/feed").respond_with_handler(growing_feed)
    runtime = open_runtime(write_config(tmp_path, feeds=[("wire", httpserver.url_for("/feed"))]))
    stored = 0
    try:
        for cycle in range(6):
            pages = runtime.store.db.execute("PRAGMA page_count").fetchone()[0]
            cap = pages if cycle % 2 == 0 else 1073741823  # full: not one more page
            runtime.store.db.execute(f"PRAGMA max_page_count = {cap}")
            (outcome,), _ = await poll_once(runtime)
            if cycle % 2 == 0:
                assert outcome.outcome == "failed", outcome
            else:
                stored += outcome.new
        ids = [row[0] for row in runtime.store.db.execute("SELECT entry_id FROM articles")]
        assert len(ids) == len(set(ids)) == stored == 30
    finally:
        runtime.close()
