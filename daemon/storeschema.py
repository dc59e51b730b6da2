"""Versioned schema migrations. Append a function; never edit one that has shipped."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Migration = Callable[[Any], None]  # receives the sqlite_utils.Database


def _create_tables(db: Any) -> None:
    db["feeds"].create(
        {
            "id": int,
            "name": str,
            "url": str,
            "config_url": str,
            "tags": str,
            "interval_s": float,
            "jitter_s": float,
            "timeout_s": float,
            "max_bytes": int,
            "source": str,
            "active": int,
            "title": str,
            "etag": str,
            "last_modified": str,
            "status": str,
            "last_error": str,
            "error_count": int,
            "first_failed": str,
            "failing_alerted": int,
            "next_poll": str,
            "last_polled": str,
            "added": str,
        },
        pk="id",
        not_null={"name", "url"},
        defaults={"status": "new", "error_count": 0, "active": 1, "failing_alerted": 0},
    )
    db["feeds"].create_index(["name"], unique=True)
    db["articles"].create(
        {
            "id": int,
            "feed": str,
            "entry_id": str,
            "url": str,
            "title": str,
            "summary": str,
            "content": str,
            "author": str,
            "published": str,
            "fetched": str,
            "updated": str,
            "hash": str,
        },
        pk="id",
        not_null={"feed", "entry_id"},
    )
    db["articles"].create_index(["feed", "entry_id"], unique=True)
    db["articles"].create_index(["url"])
    db["articles"].create_index(["published"])
    db["articles"].enable_fts(
        ["title", "summary", "content"],
        fts_version="FTS5",
        create_triggers=True,
        tokenize="unicode61 remove_diacritics 2",
    )
    db["matches"].create(
        {
            "article_id": int,
            "watchlist": str,
            "terms": str,
            "hits": str,
            "created": str,
        },
        pk=("article_id", "watchlist"),
    )
    db["alerts"].create(
        {
            "id": int,
            "watchlist": str,
            "article_id": int,
            "story_key": str,
            "tags": str,
            "payload": str,
            "status": str,
            "attempts": int,
            "last_error": str,
            "created": str,
            "next_attempt": str,
            "expires": str,
            "sent_at": str,
        },
        pk="id",
    )
    db["alerts"].create_index(["watchlist", "story_key"], unique=True)
    db["alerts"].create_index(["status", "next_attempt"])
    db["deliveries"].create(
        {"id": int, "alert_id": int, "channel": str, "status": str, "error": str, "time": str},
        pk="id",
        foreign_keys=[("alert_id", "alerts", "id")],
    )
    db["deliveries"].create_index(["alert_id"])


def _add_release_planning(db: Any) -> None:
    """Issue #5: when the outbox plans to send each alert (`release_at`), why it is held
    (`hold`: digest, quiet_hours, rate_limit; NULL when sent alone), and the id of the message
    each delivery carried (`message_id`, shared by the alerts of one digest)."""
    db["alerts"].add_column("release_at", str)
    db["alerts"].add_column("hold", str)
    db["alerts"].create_index(["watchlist", "release_at"])
    db["deliveries"].add_column("message_id", str)


def _add_stories(db: Any) -> None:
    """Issue #9: stories (the same report carried by several feeds) and each matched article's
    story. Articles nobody watches get no story (grouping costs time and helps no alert)."""
    db["stories"].create(
        {"id": int, "title": str, "url": str, "first_seen": str, "first_feed": str}, pk="id"
    )
    db["stories"].create_index(["first_seen"])
    db["articles"].add_column("story_id", int)
    db["articles"].create_index(["story_id"])


def _add_item_digests(db: Any) -> None:
    """Issue #7: the digests of the items of each feed's last parsed body whose articles are
    stored (space-separated, see `feeditems`), so the next poll parses only what is new."""
    db["feeds"].add_column("item_digests", str)


def _reindex_only_changed_text(db: Any) -> None:
    """Issue #7: the full-text index is rewritten only when an article's indexed text changes.
    sqlite-utils' update trigger fires on any column, so setting an article's story id deleted
    and re-added its whole text in the index: a quarter of the cost of recording an alert."""
    db.execute("DROP TRIGGER IF EXISTS [articles_au]")
    db.execute(
        """CREATE TRIGGER [articles_au] AFTER UPDATE OF [title], [summary], [content]
        ON [articles] BEGIN
          INSERT INTO [articles_fts] ([articles_fts], rowid, [title], [summary], [content])
            VALUES('delete', old.rowid, old.[title], old.[summary], old.[content]);
          INSERT INTO [articles_fts] (rowid, [title], [summary], [content])
            VALUES (new.rowid, new.[title], new.[summary], new.[content]);
        END"""
    )


MIGRATIONS: list[Migration] = [
    _create_tables,
    _add_release_planning,
    _add_stories,
    _add_item_digests,
    _reindex_only_changed_text,
]
