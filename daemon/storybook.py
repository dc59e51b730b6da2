"""Puts matched articles into stories, remembered in the database and indexed in memory.

The index (`stories.StoryIndex`) holds the last `window_s` of grouped articles; it is rebuilt
from the store on first use, so a restart forgets nothing. Only articles that matched a
watchlist are grouped: a story matters for alerts, and grouping every stored article would cost
a cold poll of 60,000 articles some 20 s for nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from daemon.models import Clock, StoredArticle, utc_now
from daemon.store import Store
from daemon.stories import StoryConfig, StoryIndex

MAX_INDEXED = 50_000  # grouped articles kept in memory (about 25 MB)


class StoryBook:
    def __init__(
        self, store: Store, config: StoryConfig | None = None, clock: Clock = utc_now
    ) -> None:
        self.store = store
        self.config = config or StoryConfig()
        self.clock = clock
        self._index: StoryIndex | None = None

    def story_for(self, stored: StoredArticle) -> int:
        """The story of `stored`: the one it already has (an edited article), the one the index
        finds (same URL or near-identical title from another feed), or a new one."""
        known = self.store.story_of(stored.id)
        if known is not None:
            return known
        index = self._ensure_index()
        a = stored.article
        story_id = index.find(url=a.url, title=a.title, published=a.published, feed=stored.feed)
        if story_id is None:
            story_id = self.store.add_story(stored)
        self.store.set_story(stored.id, story_id)
        index.add(story_id, url=a.url, title=a.title, published=a.published, feed=stored.feed)
        return story_id

    @contextmanager
    def forget_on_error(self) -> Iterator[None]:
        """Around a transaction: if it rolls back, the index may name stories the database
        never kept, so drop it; it is rebuilt from the store on next use."""
        try:
            yield
        except BaseException:
            self._index = None
            raise

    def prune(self) -> int:
        """Bound memory: past MAX_INDEXED articles, forget those published before the window.
        (Matching never looks past the window anyway; pruning eagerly by the clock would stop
        a backlog of older reports, fetched together, from grouping among themselves.)"""
        if self._index is None or len(self._index) <= MAX_INDEXED:
            return 0
        return self._index.prune(self.clock() - timedelta(seconds=self.config.window_s))

    def _ensure_index(self) -> StoryIndex:
        if self._index is None:
            index = StoryIndex(self.config)
            since = self.clock() - timedelta(seconds=self.config.window_s)
            for story_id, member in self.store.story_members(since=since):
                article = member.article
                index.add(
                    story_id,
                    url=article.url,
                    title=article.title,
                    published=article.published,
                    feed=member.feed,
                )
            self._index = index
        return self._index
