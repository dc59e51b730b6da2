"""The exception tree. Every message names the place, the problem and the fix.

    VedetteError
    ├── ConfigError(file, line, key)     config/vedette.yaml or watchlists/*.yaml is wrong
    ├── FeedError(url)                   one feed could not be polled
    │   ├── FetchError(retryable, retry_after_s, status)
    │   └── ParseError                   the body is not a usable feed
    ├── StoreError                       the SQLite database refused an operation
    └── NotifyError(tag)                 Apprise could not deliver to a target

Exceptions never log themselves; the code that catches one logs it once.
"""

from __future__ import annotations


class VedetteError(Exception):
    """Base of every error Vedette raises on purpose."""


class ConfigError(VedetteError):
    """A configuration or watchlist file is invalid; carries where and what."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, key: str = ""
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(self.location_message())

    def location_message(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


class FeedError(VedetteError):
    """A feed could not be polled. A failing feed is state, not a crash."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.message = message
        super().__init__(message)

    def __reduce__(self) -> tuple[type[FeedError], tuple[str, str]]:
        # Picklable with its two arguments: ParseError crosses from the parser process.
        return (type(self), (self.url, self.message))


class FetchError(FeedError):
    """The HTTP request failed. `retryable` is False for errors a retry will not fix soon."""

    def __init__(
        self,
        url: str,
        message: str,
        *,
        retryable: bool = True,
        retry_after_s: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(url, message)
        self.retryable = retryable
        self.retry_after_s = retry_after_s
        self.status = status


class ParseError(FeedError):
    """The body could not be turned into articles (the parser's reason is the message)."""


class StoreError(VedetteError):
    """The database could not be opened, migrated or written."""


class NotifyError(VedetteError):
    """Apprise reported failure (or no target) for a tag."""

    def __init__(self, message: str, *, tag: str | None = None) -> None:
        self.tag = tag
        super().__init__(message)
