from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from daemon.errors import StoreError
from daemon.models import Article, Feed, Hit, Match
from daemon.store import Store
from daemon.storeschema import MIGRATIONS
from daemon.walcheckpoint import BACKSTOP_PAGES
from support import wait_until

NOW = datetime(2023, 1, 10, 12, 0, tzinfo=UTC)


def article(entry_id: str, title: str = "Bakhmut holds", body: str = "text") -> Article:
    return Article(
        entry_id=entry_id,
        url=f"https://news.example/{entry_id}",
        title=title,
        summary=body,
        content="",
        author="",
        published=NOW,
        content_hash=f"{title}|{body}|{entry_id}",  # like parse: the link is part of the hash
    )


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = Store.open(tmp_path / "db" / "vedette.db", clock=lambda: NOW)
    opened.sync_feeds([Feed("wire", "https://wire.example/rss", tags=("en",))])
    return opened


def test_open_creates_wal_database_and_records_migrations(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "new" / "v.db")
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.migrate() == len(MIGRATIONS)
    versions = [r[0] for r in store.db.execute("SELECT version FROM schema_migrations")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))
    assert {"feeds", "articles", "articles_fts", "matches", "alerts", "deliveries"} <= set(
        store.db.table_names()
    )
    store.close()
    # Reopening does not re-run migrations.
    assert Store.open(tmp_path / "new" / "v.db").migrate() == len(MIGRATIONS)


def test_corrupt_file_gives_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=r"cannot open database.*restore a backup"):
        Store.open(path)


def test_repoll_never_duplicates_and_edits_update_in_place(store: Store) -> None:
    first = store.upsert_articles("wire", [article("a"), article("b")], fetched=NOW)
    assert [(s.article.entry_id, new) for s, new in first] == [("a", True), ("b", True)]
    assert store.upsert_articles("wire", [article("a"), article("b")], fetched=NOW) == []
    edited = store.upsert_articles("wire", [article("a", body="corrected")], fetched=NOW)
    assert [(s.id, new) for s, new in edited] == [(first[0][0].id, False)]
    assert store.db.execute("SELECT count(*) FROM articles").fetchone()[0] == 2
    assert store.article(first[0][0].id).article.summary == "corrected"  # type: ignore[union-attr]


def test_transaction_rolls_back_everything(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.upsert_articles("wire", [article("a")], fetched=NOW)
        raise RuntimeError("crash mid-poll")
    assert not store.has_articles("wire")


def test_full_text_search(store: Store) -> None:
    store.upsert_articles(
        "wire",
        [article("a", "Fighting in Bakhmut"), article("b", "Бої за Бахмут", "Соледар")],
        fetched=NOW,
    )
    assert [h.article.article.entry_id for h in store.search("Bakhmut")] == ["a"]
    assert [h.article.article.entry_id for h in store.search("Соледар")] == ["b"]
    assert store.search('unbalanced "quote') == []  # invalid FTS syntax falls back to quoting
    assert store.search("Bakhmut", feed="other") == []


def test_search_index_follows_edits_but_not_other_updates(store: Store) -> None:
    bakhmut = article("a", "Fighting in Bakhmut")
    [(stored, _)] = store.upsert_articles("wire", [bakhmut], fetched=NOW)
    index_writes = store.db.execute("SELECT count(*) FROM articles_fts_data").fetchone()[0]
    store.set_story(stored.id, 7)  # not indexed text: the index is left alone
    assert store.db.execute("SELECT count(*) FROM articles_fts_data").fetchone()[0] == index_writes
    assert [h.article.article.entry_id for h in store.search("Bakhmut")] == ["a"]
    store.upsert_articles("wire", [article("a", "Fighting in Soledar")], fetched=NOW)  # an edit
    assert store.search("Bakhmut") == []
    assert [h.article.article.entry_id for h in store.search("Soledar")] == ["a"]
    # FTS5 checks its index against the articles table and raises on any difference.
    store.db.execute("INSERT INTO articles_fts(articles_fts, rank) VALUES('integrity-check', 1)")


def test_feed_state_success_failure_and_redirect(store: Store) -> None:
    state = store.record_failure("wire", error="HTTP 503", next_poll=NOW + timedelta(minutes=20))
    assert (state.status, state.error_count, state.first_failed) == ("failing", 1, NOW)
    assert store.record_failure("wire", error="HTTP 503", next_poll=NOW).error_count == 2
    store.record_success(
        "wire", url="https://moved.example/rss", etag='"e1"', last_modified=None, next_poll=NOW
    )
    state = store.feed_state("wire")
    assert (state.status, state.error_count, state.url, state.etag) == (
        "ok",
        0,
        "https://moved.example/rss",
        '"e1"',
    )
    # The configured URL did not change, so a re-sync keeps the redirected one.
    store.sync_feeds([Feed("wire", "https://wire.example/rss")])
    assert store.feed_state("wire").url == "https://moved.example/rss"
    store.sync_feeds([Feed("wire", "https://new.example/rss")])
    assert store.feed_state("wire").url == "https://new.example/rss"


def test_item_digests_are_kept_until_a_body_brings_new_ones(store: Store) -> None:
    assert store.feed_state("wire").item_digests == frozenset()
    success = {"url": "https://wire.example/rss", "etag": None, "last_modified": None}
    store.record_success("wire", **success, next_poll=NOW, item_digests=("d1", "d2"))
    assert store.feed_state("wire").item_digests == {"d1", "d2"}
    store.record_success("wire", **success, next_poll=NOW)  # a 304 keeps them
    assert store.feed_state("wire").item_digests == {"d1", "d2"}
    store.record_success("wire", **success, next_poll=NOW, item_digests=())  # not split
    assert store.feed_state("wire").item_digests == frozenset()


def test_sync_deactivates_removed_config_feeds_but_keeps_cli_feeds(store: Store) -> None:
    store.add_feed(Feed("manual", "https://manual.example/rss"))
    with pytest.raises(StoreError, match="already exists"):
        store.add_feed(Feed("manual", "https://other.example/rss"))
    store.sync_feeds([])
    assert [f.name for f in store.active_feeds()] == ["manual"]


def test_outbox_is_unique_per_watchlist_and_story(store: Store) -> None:
    ((stored, _),) = store.upsert_articles("wire", [article("a")], fetched=NOW)
    hit = Hit("title", 0, 7, "Bakhmut", "Bakhmut", "places")
    store.add_match(stored.id, Match("bakhmut", ("Bakhmut",), (hit,)))
    store.add_match(stored.id, Match("bakhmut", ("Bakhmut", "Soledar"), (hit,)))  # re-matched
    assert store.db.execute("SELECT article_id, watchlist, terms FROM matches").fetchall() == [
        (stored.id, "bakhmut", '["Bakhmut", "Soledar"]')
    ]
    kwargs = {
        "article_id": stored.id,
        "story_key": "url:x",
        "tags": ["a"],
        "payload": {"title": "t"},
    }
    first = store.enqueue_alert(watchlist="bakhmut", expires=NOW + timedelta(days=1), **kwargs)
    again = store.enqueue_alert(watchlist="bakhmut", expires=NOW + timedelta(days=1), **kwargs)
    other = store.enqueue_alert(watchlist="other", expires=NOW + timedelta(days=1), **kwargs)
    assert first is not None and again is None and other is not None
    assert [a.id for a in store.due_alerts()] == [first, other]
    store.mark_failed(first, error="down", next_attempt=NOW + timedelta(minutes=1))
    assert [a.id for a in store.due_alerts()] == [other]
    store.mark_failed(other, error="gone", next_attempt=None)
    assert [a.status for a in store.list_alerts()] == ["dead", "queued"]
    assert store.retry_alerts() == 2
    store.mark_sent(first)
    assert store.list_alerts(status="sent")[0].attempts == 2


def test_prune_keeps_recent_articles_and_search_index_in_step(store: Store) -> None:
    old = article("old", "Bakhmut archive")
    old = Article(
        **{**{f: getattr(old, f) for f in old.__slots__}, "published": NOW - timedelta(days=400)}
    )
    store.upsert_articles("wire", [old, article("new", "Bakhmut today")], fetched=NOW)
    assert store.prune_articles(older_than=NOW - timedelta(days=180), batch=1) == 1
    assert [h.article.article.entry_id for h in store.search("Bakhmut")] == ["new"]


def test_concurrent_reader_while_writing(store: Store, tmp_path: Path) -> None:
    reader = sqlite3.connect(tmp_path / "db" / "vedette.db")
    with store.transaction():
        store.upsert_articles("wire", [article("a")], fetched=NOW)
        assert reader.execute("SELECT count(*) FROM articles").fetchone()[0] == 0
    assert reader.execute("SELECT count(*) FROM articles").fetchone()[0] == 1
    reader.close()


def _open_with_background_checkpoints(path: Path) -> Store:
    opened = Store.open(path, clock=lambda: NOW, background_checkpoints=True)
    opened.sync_feeds([Feed("wire", "https://wire.example/rss")])
    return opened


def test_background_checkpoints_copy_the_log_into_the_file(tmp_path: Path) -> None:
    """The writer's own checkpoint waits for BACKSTOP_PAGES; well below it, the log reaches the
    database file anyway, copied by the checkpoint thread."""
    path = tmp_path / "v.db"
    store = _open_with_background_checkpoints(path)
    assert store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == BACKSTOP_PAGES
    size_before = path.stat().st_size
    body = "Bakhmut " * 2000  # 16 KB an article: ~2 MB of log, a quarter of the backstop
    articles = [article(f"a{i}", body=body) for i in range(120)]
    with store.transaction():
        store.upsert_articles("wire", articles, fetched=NOW)
    wait_until(lambda: path.stat().st_size > size_before + 1_000_000, what="a checkpoint")
    assert store._checkpointer is not None and store._checkpointer.checkpoints >= 1
    store.close()
    assert not any(t.name == "wal-checkpoint" for t in threading.enumerate())
    assert not Path(f"{path}-wal").exists()  # the last connection to close checkpointed all
    assert Store.open(path).count_articles() == 120


def test_a_failing_checkpoint_thread_leaves_the_work_to_the_writer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "v.db"
    store = _open_with_background_checkpoints(path)
    assert store._checkpointer is not None
    store._checkpointer._connection.close()  # its next checkpoint raises sqlite3.Error
    with store.transaction():
        store.upsert_articles("wire", [article("a")], fetched=NOW)
    wait_until(lambda: "wal_checkpoint_failed" in caplog.text, what="the warning")
    with store.transaction():  # the writer goes on, checkpointing itself at the backstop
        store.upsert_articles("wire", [article("b")], fetched=NOW)
    store.close()
    assert Store.open(path).count_articles() == 2
