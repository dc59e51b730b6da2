"""Copies the database's write-ahead log into the database file from a thread of its own.

In WAL mode SQLite appends every commit to a log and, once the log passes 1,000 pages, copies it
back into the database file ("checkpoints") on the connection that committed, between two
fsyncs. The daemon commits on its event loop, so the loop waited on that disk work: about a
quarter of the time storing a cold poll's articles took (bench/RESULTS.md).

Here a thread with its own connection runs PASSIVE checkpoints, which never wait for or block
the writer, a moment after commits. The writer keeps SQLite's automatic checkpoint as a backstop
at a higher mark (`BACKSTOP_PAGES`): it finds the log already copied, so its own checkpoint is
short, and it lets the writer restart the log from the beginning. SQLite restarts a log only when
a writer begins while every frame is copied, which a busy writer rarely sees, so without the
backstop the log file would grow through a long run of commits. If the thread fails, the backstop
does all the work, as SQLite does by default.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

BACKSTOP_PAGES = 2000  # the writer's own checkpoint mark: 8 MB of log with 4 KB pages
GAP_S = 0.05  # after a checkpoint, commits landing within this join the next one


class WalCheckpointer:
    """Checkpoints `path` in the background after `nudge()`. `close()` stops and joins it."""

    def __init__(self, path: Path, *, gap_s: float = GAP_S) -> None:
        self.gap_s = gap_s
        self.checkpoints = 0  # completed, for tests and curiosity
        self._connection = sqlite3.connect(str(path), check_same_thread=False)
        self._connection.execute("PRAGMA synchronous=NORMAL")  # as the writer: same fsyncs
        self._nudged = threading.Event()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Something was committed: checkpoint soon."""
        self._nudged.set()

    def close(self) -> None:
        self._closing.set()
        self._nudged.set()
        self._thread.join()
        self._connection.close()

    def _run(self) -> None:
        while True:
            self._nudged.wait()
            if self._closing.is_set():
                return
            self._nudged.clear()
            try:
                busy, _, _ = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                logger.warning("wal_checkpoint_failed error=%r; the writer checkpoints", str(exc))
                return
            self.checkpoints += not busy
            if self._closing.wait(self.gap_s):
                return
