"""The SQLite database: schema and migrations, feeds and their state, articles with full-text
search, matches, the alert outbox and the delivery log. The only module importing sqlite-utils.

The database runs in WAL mode so `vedette search` can read while the daemon writes. Writers group
their work with `transaction()`: one per feed poll, so articles, matches and the alerts they raise
land together or not at all. SQLite failures (disk full, locked, corrupt) leave as StoreError
naming the fix.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from daemon.errors import StoreError
from daemon.models import Alert, Article, Clock, Feed, FeedState, Match, StoredArticle, utc_now
from daemon.storeschema import MIGRATIONS
from daemon.walcheckpoint import BACKSTOP_PAGES, WalCheckpointer

BUSY_TIMEOUT_S = 30.0


def to_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


@dataclass(frozen=True, slots=True)
class FeedRow:
    """A feed with its state and article count, for `feeds list`."""

    feed: Feed
    state: FeedState
    source: str
    article_count: int


@dataclass(frozen=True, slots=True)
class SearchHit:
    article: StoredArticle
    snippet: str


class Store:
    """One SQLite file. Methods say what they do to which table."""

    def __init__(self, db: Database, clock: Clock = utc_now, *, path: Path | None = None) -> None:
        self.db = db
        self.clock = clock
        self.path = path
        self._checkpointer: WalCheckpointer | None = None

    @classmethod
    def open(
        cls, path: Path, clock: Clock = utc_now, *, background_checkpoints: bool = False
    ) -> Store:
        """Open (creating if needed) and migrate the database. Raises StoreError.

        `background_checkpoints` moves SQLite's copying of the write-ahead log into the file off
        the committing thread (walcheckpoint.py): for the process that writes articles."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            db = Database(conn)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            store = cls(db, clock, path=path)
            store.migrate()
            if background_checkpoints:
                db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
                store._checkpointer = WalCheckpointer(path)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path}: cannot open database ({exc}); {_fix_for(exc)}") from exc
        except OSError as exc:
            raise StoreError(f"{path}: cannot create database folder ({exc.strerror})") from exc
        return store

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.close()
        self.db.close()

    def check_integrity(self) -> None:
        """Raise StoreError when `PRAGMA quick_check` finds damage. It reads every page (about
        a second per GB), so the daemon runs it once at start, before it writes anything."""
        try:
            problems = [row[0] for row in self.db.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise StoreError(
                f"{self.path}: the database is damaged ({'; '.join(problems)}); stop Vedette, "
                "move the file aside and restore a backup (see README, Backups)"
            )

    def check_writable(self) -> None:
        """Raise StoreError unless a write transaction can start now (for /healthz)."""
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StoreError(str(exc)) from exc

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """All or nothing (nested calls are savepoints). Raises StoreError.

        The write lock is taken up front (BEGIN IMMEDIATE), waiting up to BUSY_TIMEOUT_S for
        another process to finish: in WAL mode a deferred BEGIN that reads first cannot wait
        for the lock later and fails at once with "database is locked" (issue #8).
        """
        with self._errors():
            if self.db.conn.in_transaction:
                with self.db.atomic():
                    yield self.db
                return
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
                if self._checkpointer is not None:
                    self._checkpointer.nudge()
            except BaseException:
                self.db.conn.rollback()  # a no-op when SQLite already rolled back
                raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn SQLite failures into StoreError with the file and the fix."""
        try:
            yield
        except sqlite3.Error as exc:
            where = f"{self.path}: " if self.path else ""
            raise StoreError(f"{where}database error ({exc}); {_fix_for(exc)}") from exc

    def migrate(self) -> int:
        """Apply pending schema migrations in order; returns the schema version."""
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, applied TEXT)"
        )
        done = {row[0] for row in self.db.execute("SELECT version FROM schema_migrations")}
        for version, migration in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                migration(self.db)
                self.db.table("schema_migrations").insert(
                    {"version": version, "applied": to_iso(self.clock())}
                )
        return len(MIGRATIONS)

    # --- feeds -------------------------------------------------------------------------------

    def sync_feeds(self, feeds: Sequence[Feed], *, source: str = "config") -> None:
        """Make the `source` feeds exactly `feeds`: add new ones, update settings, deactivate
        the rest. A URL moved by a permanent redirect is kept unless the configured URL changed."""
        now = to_iso(self.clock())
        with self.transaction():
            existing = {r["name"]: r for r in self.db["feeds"].rows_where("source = ?", [source])}
            for feed in feeds:
                values = _feed_settings(feed) | {"source": source, "active": 1}
                rows = list(self.db["feeds"].rows_where("name = ?", [feed.name]))
                if not rows:
                    self.db.table("feeds").insert(values | {"url": feed.url, "added": now})
                    continue
                if rows[0]["config_url"] != feed.url:
                    values |= {"url": feed.url}
                self.db.table("feeds").update(rows[0]["id"], values)
            for name, row in existing.items():
                if name not in {f.name for f in feeds}:
                    self.db.table("feeds").update(row["id"], {"active": 0})

    def add_feed(self, feed: Feed) -> None:
        """Add a feed from the command line. Raises StoreError when name or URL is taken."""
        taken = self.db.execute(
            "SELECT name FROM feeds WHERE (name = ? OR url = ?) AND active = 1",
            [feed.name, feed.url],
        ).fetchone()
        if taken:
            raise StoreError(f"a feed named or at that URL already exists: {taken[0]}")
        with self.transaction():
            self.db.execute("DELETE FROM feeds WHERE name = ? AND active = 0", [feed.name])
            self.db.table("feeds").insert(
                _feed_settings(feed)
                | {"url": feed.url, "source": "cli", "active": 1, "added": to_iso(self.clock())}
            )

    def active_feeds(self) -> list[Feed]:
        return [_row_to_feed(r) for r in self.db["feeds"].rows_where("active = 1", order_by="id")]

    def feed_state(self, name: str) -> FeedState:
        with self._errors():
            rows = list(self.db["feeds"].rows_where("name = ?", [name]))
        if not rows:
            raise StoreError(f"no feed named {name!r}; `vedette feeds list` shows them")
        return _row_to_state(rows[0])

    def feed_rows(self) -> list[FeedRow]:
        counts = dict(
            self.db.execute("SELECT feed, count(*) FROM articles GROUP BY feed").fetchall()
        )
        return [
            FeedRow(_row_to_feed(r), _row_to_state(r), r["source"], counts.get(r["name"], 0))
            for r in self.db["feeds"].rows_where("active = 1", order_by="name")
        ]

    def record_success(
        self,
        name: str,
        *,
        url: str,
        etag: str | None,
        last_modified: str | None,
        next_poll: datetime,
        title: str | None = None,
        warning: str | None = None,
        item_digests: Sequence[str] | None = None,
    ) -> None:
        """A poll that worked (200 or 304): validators kept, error state cleared.
        `item_digests` (200 only) replace `FeedState.item_digests`; call it in the transaction
        that stored the articles, so a digest is never kept for an article that is not."""
        values: dict[str, Any] = {
            "url": url,
            "etag": etag,
            "last_modified": last_modified,
            "status": "ok",
            "last_error": warning,
            "error_count": 0,
            "first_failed": None,
            "last_polled": to_iso(self.clock()),
            "next_poll": to_iso(next_poll),
        }
        if title:
            values["title"] = title
        if item_digests is not None:
            values["item_digests"] = " ".join(item_digests) or None
        self._update_feed(name, values)

    def record_failure(self, name: str, *, error: str, next_poll: datetime) -> FeedState:
        """A poll that failed: count it, keep the first failure time, schedule the retry."""
        state = self.feed_state(name)
        now = self.clock()
        self._update_feed(
            name,
            {
                "status": "failing",
                "last_error": error[:1000],
                "error_count": state.error_count + 1,
                "first_failed": to_iso(state.first_failed or now),
                "last_polled": to_iso(now),
                "next_poll": to_iso(next_poll),
            },
        )
        return self.feed_state(name)

    def set_failing_alerted(self, name: str, alerted: bool) -> bool:
        """Flip the "feed failing" alert flag; True when it changed (so one alert per outage)."""
        cursor = self.db.execute(
            "UPDATE feeds SET failing_alerted = ? WHERE name = ? AND failing_alerted != ?",
            [int(alerted), name, int(alerted)],
        )
        return cursor.rowcount > 0

    def failing_feed_count(self) -> int:
        row = self.db.execute(
            "SELECT count(*) FROM feeds WHERE active = 1 AND status = 'failing'"
        ).fetchone()
        return int(row[0])

    def _update_feed(self, name: str, values: Mapping[str, Any]) -> None:
        sets = ", ".join(f"{key} = ?" for key in values)
        with self._errors():
            self.db.execute(f"UPDATE feeds SET {sets} WHERE name = ?", [*values.values(), name])

    # --- articles ----------------------------------------------------------------------------

    def upsert_articles(
        self, feed: str, articles: Sequence[Article], *, fetched: datetime
    ) -> list[tuple[StoredArticle, bool]]:
        """Insert new entries and update edited ones in place; unchanged ones are skipped.
        Returns the changed articles with `True` for new, `False` for updated.

        An entry with an unknown id whose content (title, text and link: its hash) the feed
        already has is the same article under a fresh id, as feeds that mint a guid per request
        send it: skipped, so re-polling such a feed never duplicates articles (issue #8)."""
        known: dict[str, tuple[int, str]] = {}
        ids = [a.entry_id for a in articles]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row_id, entry_id, digest in self.db.execute(
                f"SELECT id, entry_id, hash FROM articles WHERE feed = ? AND entry_id IN ({marks})",
                [feed, *chunk],
            ):
                known[entry_id] = (row_id, digest)
        hashes = [a.content_hash for a in articles if a.entry_id not in known]
        stored_hashes: set[str] = set()
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            marks = ",".join("?" * len(chunk))
            stored_hashes.update(
                digest
                for (digest,) in self.db.execute(
                    f"SELECT hash FROM articles WHERE feed = ? AND hash IN ({marks})",
                    [feed, *chunk],
                )
            )
        changed: list[tuple[StoredArticle, bool]] = []
        fetched_iso = to_iso(fetched)
        for article in articles:
            row = _article_row(feed, article)
            previous = known.get(article.entry_id)
            if previous is None:
                if article.content_hash in stored_hashes:
                    continue
                stored_hashes.add(article.content_hash)
                # Plain SQL: Table.insert re-inspects the table on every call, which cost
                # a fifth of a cold poll (bench/RESULTS.md).
                row_id = self.db.execute(_INSERT_ARTICLE, [*row.values(), fetched_iso]).lastrowid
                assert row_id is not None
                changed.append((StoredArticle(row_id, feed, article, fetched), True))
            elif previous[1] != article.content_hash:
                self.db.execute(_UPDATE_ARTICLE, [*row.values(), fetched_iso, previous[0]])
                changed.append((StoredArticle(previous[0], feed, article, fetched), False))
        return changed

    def count_articles(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM articles").fetchone()[0])

    def has_articles(self, feed: str) -> bool:
        with self._errors():
            row = self.db.execute("SELECT 1 FROM articles WHERE feed = ? LIMIT 1", [feed])
            return row.fetchone() is not None

    def prune_articles(self, *, older_than: datetime, batch: int = 500) -> int:
        """Delete articles published before `older_than`, one small transaction per batch so
        polls are never blocked for long. Matches and alerts are kept (they carry a payload)."""
        total = 0
        while True:
            with self.transaction():
                cursor = self.db.execute(
                    "DELETE FROM articles WHERE id IN (SELECT id FROM articles"
                    " WHERE published < ? LIMIT ?)",
                    [to_iso(older_than), batch],
                )
            total += cursor.rowcount
            if cursor.rowcount < batch:
                return total

    def article(self, article_id: int) -> StoredArticle | None:
        rows = list(self.db["articles"].rows_where("id = ?", [article_id]))
        return _row_to_article(rows[0]) if rows else None

    def article_by_url(self, url: str) -> StoredArticle | None:
        rows = list(self.db["articles"].rows_where("url = ?", [url], order_by="id", limit=1))
        return _row_to_article(rows[0]) if rows else None

    def iter_articles(self, *, since: datetime | None = None) -> Iterator[StoredArticle]:
        where, args = ("published >= ?", [to_iso(since)]) if since else (None, [])
        for row in self.db["articles"].rows_where(where, args, order_by="published, id"):
            yield _row_to_article(row)

    def search(
        self, query: str, *, since: datetime | None = None, feed: str | None = None, limit: int = 50
    ) -> list[SearchHit]:
        """Full-text search (FTS5 syntax; falls back to quoting when the syntax is invalid)."""
        clauses, args = [], {}
        if since:
            clauses.append("published >= :since")
            args["since"] = to_iso(since)
        if feed:
            clauses.append("feed = :feed")
            args["feed"] = feed
        where = " AND ".join(clauses) or None
        table = self.db.table("articles")
        try:
            rows = list(table.search(query, where=where, where_args=args, limit=limit))
        except sqlite3.OperationalError:
            rows = list(table.search(query, where=where, where_args=args, limit=limit, quote=True))
        return [SearchHit(_row_to_article(r), _snippet(r)) for r in rows]

    # --- stories (issue #9) -------------------------------------------------------------------

    def add_story(self, stored: StoredArticle) -> int:
        """Open a new story with `stored` as its first article."""
        article = stored.article
        cursor = self.db.execute(
            "INSERT INTO stories (title, url, first_seen, first_feed) VALUES (?, ?, ?, ?)",
            [article.title[:500], article.url, to_iso(stored.fetched), stored.feed],
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def set_story(self, article_id: int, story_id: int) -> None:
        self.db.execute("UPDATE articles SET story_id = ? WHERE id = ?", [story_id, article_id])

    def story_of(self, article_id: int) -> int | None:
        row = self.db.execute("SELECT story_id FROM articles WHERE id = ?", [article_id]).fetchone()
        return row[0] if row else None

    def story_feeds(self, story_id: int) -> list[str]:
        """The distinct feeds carrying a story, in the order they first did."""
        rows = self.db.execute(
            "SELECT feed FROM articles WHERE story_id = ? GROUP BY feed ORDER BY min(id)",
            [story_id],
        ).fetchall()
        return [row[0] for row in rows]

    def story_members(self, *, since: datetime) -> list[tuple[int, StoredArticle]]:
        """(story id, article) of every grouped article published since `since`, oldest first:
        what the in-memory story index is rebuilt from after a restart."""
        rows = self.db["articles"].rows_where(
            "story_id IS NOT NULL AND published >= ?", [to_iso(since)], order_by="published, id"
        )
        return [(row["story_id"], _row_to_article(row)) for row in rows]

    def list_stories(self, *, since: datetime | None = None) -> list[dict[str, Any]]:
        """Stories with their articles (newest story first), for `vedette stories`."""
        where, args = ("first_seen >= ?", [to_iso(since)]) if since else (None, [])
        stories = list(self.db["stories"].rows_where(where, args, order_by="first_seen desc"))
        for story in stories:
            story["articles"] = [
                _row_to_article(row)
                for row in self.db["articles"].rows_where(
                    "story_id = ?", [story["id"]], order_by="fetched, id"
                )
            ]
        return stories

    def story_alert(self, watchlist: str, story_key: str) -> Alert | None:
        rows = list(
            self.db["alerts"].rows_where(
                "watchlist = ? AND story_key = ?", [watchlist, story_key], limit=1
            )
        )
        return _row_to_alert(rows[0]) if rows else None

    def story_followups(self, watchlist: str, story_key: str) -> list[dict[str, Any]]:
        """Payloads of the follow-ups already made for a story's alert."""
        rows = self.db.execute(
            "SELECT payload FROM alerts WHERE watchlist = ? AND story_key LIKE ? ORDER BY id",
            [watchlist, f"{story_key}:followup:%"],
        ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def update_payload(self, alert_id: int, payload: Mapping[str, Any]) -> None:
        """Rewrite an unsent alert's payload (another source joined its story)."""
        self.db.execute(
            "UPDATE alerts SET payload = ? WHERE id = ? AND status = 'queued'",
            [json.dumps(payload, ensure_ascii=False), alert_id],
        )

    # --- matches and the alert outbox --------------------------------------------------------

    def add_match(self, article_id: int, match: Match) -> None:
        # Plain SQL, like the article insert: Table.upsert inspects the table on every call.
        self.db.execute(
            "INSERT INTO matches (article_id, watchlist, terms, hits, created)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (article_id, watchlist) DO UPDATE SET"
            " terms = excluded.terms, hits = excluded.hits, created = excluded.created",
            [
                article_id,
                match.watchlist,
                json.dumps(list(match.terms), ensure_ascii=False),
                json.dumps(
                    [{"field": h.field, "text": h.text, "term": h.term} for h in match.hits],
                    ensure_ascii=False,
                ),
                to_iso(self.clock()),
            ],
        )

    def enqueue_alert(
        self,
        *,
        watchlist: str,
        article_id: int,
        story_key: str,
        tags: Sequence[str],
        payload: Mapping[str, Any],
        expires: datetime,
    ) -> int | None:
        """Add an alert to the outbox unless this (watchlist, story) already has one."""
        now = to_iso(self.clock())
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO alerts (watchlist, article_id, story_key, tags, payload,"
            " status, attempts, created, next_attempt, expires)"
            " VALUES (?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?)",
            [
                watchlist,
                article_id,
                story_key,
                json.dumps(list(tags)),
                json.dumps(payload, ensure_ascii=False),
                now,
                now,
                to_iso(expires),
            ],
        )
        return cursor.lastrowid if cursor.rowcount else None

    def due_alerts(self, *, limit: int = 100, planned_only: bool = False) -> list[Alert]:
        """Queued alerts whose time has come (with `planned_only`, only those the outbox has
        given a release time)."""
        rows = self.db["alerts"].rows_where(
            "status = 'queued' AND next_attempt <= ?"
            + (" AND release_at IS NOT NULL" if planned_only else ""),
            [to_iso(self.clock())],
            order_by="id",
            limit=limit,
        )
        return [_row_to_alert(r) for r in rows]

    def list_alerts(self, *, status: str | None = None, limit: int = 1000) -> list[Alert]:
        where, args = ("status = ?", [status]) if status else (None, [])
        rows = self.db["alerts"].rows_where(where, args, order_by="id desc", limit=limit)
        return [_row_to_alert(r) for r in rows]

    def record_delivery(
        self,
        alert_id: int,
        *,
        channel: str,
        ok: bool,
        error: str | None,
        message_id: str | None = None,
    ) -> None:
        """Log one send attempt to one target; `error` must already be redacted."""
        self.db.table("deliveries").insert(
            {
                "alert_id": alert_id,
                "channel": channel,
                "status": "ok" if ok else "failed",
                "error": error,
                "time": to_iso(self.clock()),
                "message_id": message_id,
            }
        )

    def mark_sent(self, alert_id: int) -> None:
        now = to_iso(self.clock())
        self.db.execute(
            "UPDATE alerts SET status = 'sent', sent_at = ?, attempts = attempts + 1,"
            " last_error = NULL WHERE id = ?",
            [now, alert_id],
        )

    def mark_failed(self, alert_id: int, *, error: str, next_attempt: datetime | None) -> None:
        """A failed attempt: retry at `next_attempt`, or give up (dead) when it is None."""
        status, when = ("queued", to_iso(next_attempt)) if next_attempt else ("dead", None)
        self.db.execute(
            "UPDATE alerts SET status = ?, attempts = attempts + 1, last_error = ?,"
            " next_attempt = COALESCE(?, next_attempt) WHERE id = ?",
            [status, error[:1000], when, alert_id],
        )

    def retry_alerts(self, ids: Sequence[int] = ()) -> int:
        """Make the given alerts (or every unsent one) due now; dead ones get a new lease."""
        now = self.clock()
        where = "status != 'sent'" + (f" AND id IN ({','.join('?' * len(ids))})" if ids else "")
        cursor = self.db.execute(
            f"UPDATE alerts SET status = 'queued', next_attempt = ?,"
            f" expires = MAX(expires, ?) WHERE {where}",
            [to_iso(now), to_iso(now), *ids],
        )
        return cursor.rowcount

    def alert_counts(self) -> dict[str, int]:
        """Alerts by status (queued, sent, dead), for /metrics."""
        rows = self.db.execute("SELECT status, count(*) FROM alerts GROUP BY status").fetchall()
        return {status: int(count) for status, count in rows}

    def deliveries(self, alert_id: int) -> list[dict[str, Any]]:
        return list(self.db["deliveries"].rows_where("alert_id = ?", [alert_id], order_by="id"))

    # --- release planning: digests, quiet hours, rate caps (issue #5) -------------------------

    def unplanned_alerts(self, *, limit: int = 1000) -> list[Alert]:
        """Queued alerts the outbox has not yet given a release time, oldest first."""
        rows = self.db["alerts"].rows_where(
            "status = 'queued' AND release_at IS NULL", order_by="id", limit=limit
        )
        return [_row_to_alert(r) for r in rows]

    def open_batch(self, watchlist: str) -> tuple[datetime, str] | None:
        """The list's held batch that has not gone out yet (new alerts join it), if any."""
        row = self.db.execute(
            "SELECT release_at, hold FROM alerts WHERE watchlist = ? AND status = 'queued'"
            " AND hold IS NOT NULL AND release_at > ? ORDER BY release_at LIMIT 1",
            [watchlist, to_iso(self.clock())],
        ).fetchone()
        return (datetime.fromisoformat(row[0]), row[1]) if row else None

    def message_times(self, watchlist: str, *, since: datetime) -> list[datetime]:
        """When each of the list's messages after `since` was planned to go out: one per alert
        sent alone, one per held batch. The rate cap counts these."""
        rows = self.db.execute(
            "SELECT release_at FROM alerts WHERE watchlist = ? AND release_at > ?"
            " AND hold IS NULL UNION ALL SELECT DISTINCT release_at FROM alerts"
            " WHERE watchlist = ? AND release_at > ? AND hold IS NOT NULL",
            [watchlist, to_iso(since), watchlist, to_iso(since)],
        ).fetchall()
        return sorted(datetime.fromisoformat(row[0]) for row in rows)

    def plan_alert(
        self, alert_id: int, *, release_at: datetime, hold: str | None, expires: datetime
    ) -> None:
        """Give an alert its release time (and hold reason); it becomes due then."""
        self.db.execute(
            "UPDATE alerts SET release_at = ?, hold = ?, next_attempt = ?, expires = ?"
            " WHERE id = ? AND release_at IS NULL",
            [to_iso(release_at), hold, to_iso(release_at), to_iso(expires), alert_id],
        )

    def batch_alerts(self, watchlist: str, release_at: datetime) -> list[Alert]:
        """The unsent alerts of one held batch, which go out together as one digest."""
        rows = self.db["alerts"].rows_where(
            "status = 'queued' AND watchlist = ? AND release_at = ? AND hold IS NOT NULL",
            [watchlist, to_iso(release_at)],
            order_by="id",
        )
        return [_row_to_alert(r) for r in rows]

    def count_held(self) -> int:
        """Alerts waiting for a digest, quiet hours or the rate cap (not failures)."""
        row = self.db.execute(
            "SELECT count(*) FROM alerts WHERE status = 'queued' AND hold IS NOT NULL"
            " AND release_at > ?",
            [to_iso(self.clock())],
        ).fetchone()
        return int(row[0])


def _fix_for(exc: sqlite3.Error) -> str:
    """What the operator can do about a SQLite failure (by its SQLITE_* code)."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_FULL"):
        return "free disk space where the database lives; nothing was half-written, retrying"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return (
            f"another process held the database for over {BUSY_TIMEOUT_S:g}s (a second "
            "`vedette run`, or a sqlite3 shell with an open transaction?); retrying"
        )
    if name.startswith(("SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_PERM")):
        return "check the disk and the permissions of the database file and its folder"
    return "if the file is corrupt, move it aside and restore a backup (see README, Backups)"


def _feed_settings(feed: Feed) -> dict[str, Any]:
    return {
        "name": feed.name,
        "config_url": feed.url,
        "tags": json.dumps(list(feed.tags)),
        "interval_s": feed.interval_s,
        "jitter_s": feed.jitter_s,
        "timeout_s": feed.timeout_s,
        "max_bytes": feed.max_bytes,
    }


def _row_to_feed(row: Mapping[str, Any]) -> Feed:
    return Feed(
        name=row["name"],
        url=row["url"],
        tags=tuple(json.loads(row["tags"] or "[]")),
        interval_s=row["interval_s"],
        jitter_s=row["jitter_s"],
        timeout_s=row["timeout_s"],
        max_bytes=row["max_bytes"],
    )


def _row_to_state(row: Mapping[str, Any]) -> FeedState:
    return FeedState(
        name=row["name"],
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        status=row["status"],
        last_error=row["last_error"],
        error_count=row["error_count"],
        first_failed=from_iso(row["first_failed"]),
        next_poll=from_iso(row["next_poll"]),
        last_polled=from_iso(row["last_polled"]),
        item_digests=frozenset((row["item_digests"] or "").split()),
    )


_ARTICLE_COLUMNS: tuple[str, ...] = ("feed", "entry_id", "url", "title", "summary", "content")
_ARTICLE_COLUMNS += ("author", "published", "hash")  # the order of _article_row's values
_INSERT_ARTICLE = (
    f"INSERT INTO articles ({', '.join(_ARTICLE_COLUMNS)}, fetched)"
    f" VALUES ({', '.join('?' * (len(_ARTICLE_COLUMNS) + 1))})"
)
_UPDATE_ARTICLE = (
    f"UPDATE articles SET {', '.join(f'{c} = ?' for c in _ARTICLE_COLUMNS)}, updated = ?"
    " WHERE id = ?"
)


def _article_row(feed: str, article: Article) -> dict[str, Any]:
    return {
        "feed": feed,
        "entry_id": article.entry_id,
        "url": article.url,
        "title": article.title,
        "summary": article.summary,
        "content": article.content,
        "author": article.author,
        "published": to_iso(article.published),
        "hash": article.content_hash,
    }


def _row_to_article(row: Mapping[str, Any]) -> StoredArticle:
    article = Article(
        entry_id=row["entry_id"],
        url=row["url"],
        title=row["title"],
        summary=row["summary"],
        content=row["content"],
        author=row["author"],
        published=datetime.fromisoformat(row["published"]),
        content_hash=row["hash"],
    )
    return StoredArticle(row["id"], row["feed"], article, datetime.fromisoformat(row["fetched"]))


def _row_to_alert(row: Mapping[str, Any]) -> Alert:
    return Alert(
        id=row["id"],
        watchlist=row["watchlist"],
        article_id=row["article_id"],
        story_key=row["story_key"],
        tags=tuple(json.loads(row["tags"])),
        payload=json.loads(row["payload"]),
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        created=datetime.fromisoformat(row["created"]),
        next_attempt=datetime.fromisoformat(row["next_attempt"]),
        expires=datetime.fromisoformat(row["expires"]),
        sent_at=from_iso(row["sent_at"]),
        release_at=from_iso(row.get("release_at")),
        hold=row.get("hold"),
    )


def _snippet(row: Mapping[str, Any]) -> str:
    text = row.get("summary") or row.get("content") or ""
    return " ".join(str(text).split())[:200]
