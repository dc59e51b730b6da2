"""The `vedette` command line (SPEC §5): builds every object, maps errors to exit codes
(0 ok, 1 problems found, 2 usage error) and sets up logging. The only module importing click."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import click

from daemon import __version__
from daemon.config import (
    Settings,
    check_feed_name,
    load_settings,
    parse_duration,
    resolve_config_path,
)
from daemon.errors import ConfigError, VedetteError
from daemon.logs import redact, setup_logging
from daemon.models import StoredArticle, utc_now

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@dataclass(slots=True)
class Options:
    config: str | None

    def settings(self) -> Settings:
        return load_settings(resolve_config_path(self.config, os.environ))


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def print_rows(rows: Iterable[dict[str, Any]]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))


def parse_since(value: str | None) -> datetime | None:
    """`--since` takes an ISO date/time (UTC when no zone) or a duration back from now (`7d`)."""
    if value is None:
        return None
    try:
        return utc_now() - timedelta(seconds=parse_duration(value))
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use a date like 2023-01-10 or a duration like 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=utc_now().tzinfo)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="vedette")
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $VEDETTE_CONFIG, then config/vedette.yaml).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log line format (default: text; json when $VEDETTE_LOG_FORMAT=json).",
)
@click.option("-v", "--verbose", count=True, help="More log detail (-vv for debug).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, log_format: str | None, verbose: int) -> None:
    """Vedette watches news feeds and alerts you once per story that matches your watchlists."""
    setup_logging(
        log_format=log_format or os.environ.get("VEDETTE_LOG_FORMAT", "text"), verbosity=verbose
    )
    ctx.obj = Options(config_path)


def run_command(function: Any) -> Any:
    """Turn Vedette errors into a one-line message and exit code 1."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except VedetteError as exc:
            fail(str(exc))

    wrapper.__name__ = function.__name__
    wrapper.__doc__ = function.__doc__
    return wrapper


@main.command()
@click.pass_obj
@run_command
def run(options: Options) -> None:
    """Run the daemon: poll on schedule, hot-reload, serve /healthz and /metrics."""
    from daemon.service import Daemon

    path = resolve_config_path(options.config, os.environ)
    load_settings(path)  # fail fast, before the event loop starts
    sys.exit(asyncio.run(Daemon(path).run()))


@main.command()
@click.option(
    "--feed", "names", multiple=True, metavar="NAME", help="Poll only this feed (repeatable)."
)
@click.pass_obj
@run_command
def poll(options: Options, names: tuple[str, ...]) -> None:
    """Poll feeds once (all, or the named ones), store, match, send alerts, exit."""
    from daemon.service import Runtime, poll_once

    runtime = Runtime.open(options.settings())
    progress = sys.stderr.isatty()

    def show(outcome: Any) -> None:
        if progress:
            detail = outcome.error or f"{outcome.new} new, {outcome.updated} updated"
            click.echo(f"  {outcome.feed}: {outcome.outcome} ({detail})", err=True)

    try:
        outcomes, drained = asyncio.run(poll_once(runtime, names, on_done=show))
    finally:
        runtime.close()
    failed = [o for o in outcomes if o.outcome == "failed"]
    click.echo(
        f"polled {len(outcomes)} feeds: {sum(o.new for o in outcomes)} new articles, "
        f"{sum(o.updated for o in outcomes)} updated, {sum(o.alerts for o in outcomes)} alerts "
        f"({drained.sent} sent, {drained.failed} queued for retry), {len(failed)} failing"
    )
    for outcome in failed:
        click.echo(f"  failing: {outcome.feed}: {outcome.error}", err=True)


@main.command()
@click.pass_obj
def check(options: Options) -> None:
    """Validate config, watchlists, OPML and Apprise config; list problems with file:line."""
    from daemon.service import build_notifier, configured_feeds
    from daemon.watchlists import load_watchlists

    problems: list[str] = []
    try:
        settings = options.settings()
    except ConfigError as exc:
        fail(str(exc))
    watchlists, errors = load_watchlists(settings.watchlists_dir)
    problems += [str(e) for e in errors]
    if not settings.watchlists_dir.is_dir():
        problems.append(f"{settings.watchlists_dir}: watchlists folder does not exist")
    elif not watchlists and not errors:
        problems.append(f"{settings.watchlists_dir}: no watchlists (*.yaml) found")
    feeds = []
    try:
        feeds = configured_feeds(settings)
        notifier = build_notifier(settings, None, sys.stdout)
    except ConfigError as exc:
        problems.append(str(exc))
        notifier = None
    targets = getattr(notifier, "target_names", None)
    for watchlist in watchlists:
        for tag in watchlist.notify:
            if targets is not None and notifier is not None and not notifier.targets_for([tag]):
                problems.append(f"{watchlist.source}: notify: no Apprise target has tag '{tag}'")
    for problem in problems:
        click.echo(problem)
    target_text = f"{len(targets)} Apprise targets" if targets is not None else "console alerts"
    click.echo(
        f"{'FAILED' if problems else 'OK'}: {len(feeds)} feeds, {len(watchlists)} watchlists, "
        f"{target_text}, {len(problems)} problems"
    )
    sys.exit(1 if problems else 0)


@main.command()
@run_command
def demo() -> None:
    """Offline tour: serve bundled sample feeds on 127.0.0.1, poll them, print the alerts."""
    from daemon.demo import run_demo

    sys.exit(run_demo(sys.stdout))


@main.group()
def feeds() -> None:
    """List and manage feeds."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
@run_command
def feeds_list(options: Options, as_json: bool) -> None:
    """Show each feed's status, last error, article count and next poll."""
    from daemon.service import Runtime

    runtime = Runtime.open(options.settings())
    rows = runtime.store.feed_rows()
    runtime.close()
    records = [
        {
            "name": r.feed.name,
            "url": redact(r.feed.url),  # a feed's password stays in the config
            "tags": list(r.feed.tags),
            "status": "failing" if r.state.status == "failing" else "ok",
            "last_error": r.state.last_error,
            "error_count": r.state.error_count,
            "article_count": r.article_count,
            "last_polled": r.state.last_polled.isoformat() if r.state.last_polled else None,
            "next_poll": r.state.next_poll.isoformat() if r.state.next_poll else None,
            "source": r.source,
        }
        for r in rows
    ]
    if as_json:
        print_rows(records)
        return
    for rec in records:
        status = rec["status"] if rec["last_polled"] else "new"
        click.echo(
            f"{rec['name']:<28} {status:<8} {rec['article_count']:>6} articles"
            f"  next {rec['next_poll'] or 'soon'}"
        )
        click.echo(
            f"    {rec['url']}"
            + (f"\n    last error: {rec['last_error']}" if rec["last_error"] else "")
        )


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Feed name (default: derived from the URL).")
@click.option("--tag", "tags", multiple=True, help="Tag (repeatable).")
@click.pass_obj
@run_command
def feeds_add(options: Options, url: str, name: str | None, tags: tuple[str, ...]) -> None:
    """Add a feed (stored in the database; polled from the next cycle)."""
    from daemon.service import Runtime

    if not re.match(r"^https?://\S+$", url):
        raise click.BadParameter(f"{url!r} is not an http(s) URL", param_hint="URL")
    parts = urlsplit(url)  # host and path only: the userinfo or query may hold a password
    derived = re.sub(r"[^\w.\-]+", "-", f"{parts.hostname or ''}{parts.path}").strip("-.")[:60]
    feed_name = name or derived
    try:
        check_feed_name(feed_name)  # the rule config files follow
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--name") from None
    settings = options.settings()
    runtime = Runtime.open(settings)
    try:
        runtime.store.add_feed(settings.make_feed(feed_name, url, tags))
    finally:
        runtime.close()
    click.echo(f"added {feed_name}: {redact(url)}")


@feeds.command("import-opml")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
@run_command
def feeds_import_opml(options: Options, file: Path) -> None:
    """Add every feed of an OPML file (outline categories become tags)."""
    from daemon.opml import read_opml
    from daemon.service import Runtime

    settings = options.settings()
    runtime = Runtime.open(settings)
    added = skipped = 0
    try:
        subscriptions = read_opml(file)
        with click.progressbar(
            subscriptions, label="importing", file=sys.stderr, hidden=not sys.stderr.isatty()
        ) as bar:
            for sub in bar:
                try:
                    runtime.store.add_feed(settings.make_feed(sub.name, sub.url, sub.tags))
                    added += 1
                except VedetteError:
                    skipped += 1
    finally:
        runtime.close()
    click.echo(f"imported {added} feeds from {file} ({skipped} already present)")


@feeds.command("export-opml")
@click.pass_obj
@run_command
def feeds_export_opml(options: Options) -> None:
    """Print every active feed as OPML."""
    from daemon.opml import write_opml
    from daemon.service import Runtime

    runtime = Runtime.open(options.settings())
    click.echo(write_opml(runtime.store.active_feeds()), nl=False)
    runtime.close()


def article_record(stored: StoredArticle) -> dict[str, Any]:
    a = stored.article
    return {
        "article_id": stored.id,
        "feed": stored.feed,
        "url": a.url,
        "title": a.title,
        "published": a.published.isoformat(),
    }


@main.command()
@click.argument("query")
@click.option("--since", help="Only articles published since (2023-01-10, or 7d).")
@click.option("--feed", help="Only this feed.")
@click.option("--limit", default=50, show_default=True, help="At most this many results.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
@run_command
def search(
    options: Options, query: str, since: str | None, feed: str | None, limit: int, as_json: bool
) -> None:
    """Full-text search of stored articles (FTS5 syntax: words, "phrases", OR, NOT, prefix*)."""
    from daemon.store import Store

    store = Store.open(options.settings().database)
    hits = store.search(query, since=parse_since(since), feed=feed, limit=limit)
    store.close()
    if as_json:
        print_rows(article_record(h.article) | {"snippet": h.snippet} for h in hits)
        return
    for hit in hits:
        a = hit.article.article
        click.echo(
            f"[{hit.article.id}] {a.published:%Y-%m-%d %H:%M} {hit.article.feed}: {a.title}"
            f"\n    {a.url}"
        )
    if not hits:
        click.echo("no matching articles", err=True)


@main.command()
@click.argument("watchlist")
@click.argument("article_id", type=int, required=False)
@click.option("--url", help="Explain the stored article with this URL.")
@click.option("--text", help="Explain this text (as a title) instead of a stored article.")
@click.pass_obj
@run_command
def explain(
    options: Options, watchlist: str, article_id: int | None, url: str | None, text: str | None
) -> None:
    """Show why an article does or does not match a watchlist: hits, rule, excludes."""
    from daemon.store import Store
    from daemon.watchlists import WatchlistSet

    if sum(x is not None for x in (article_id, url, text)) != 1:
        raise click.UsageError("give exactly one of ARTICLE_ID, --url or --text")
    settings = options.settings()
    lists = WatchlistSet(
        settings.watchlists_dir, on_error=lambda e: click.echo(f"warning: {e}", err=True)
    )
    lists.refresh()
    feed_name, tags = "", cast(tuple[str, ...], ())
    if text is not None:
        fields = {"title": text, "summary": "", "content": ""}
    else:
        store = Store.open(settings.database)
        stored = (
            store.article(article_id) if article_id is not None else store.article_by_url(url or "")
        )
        feed_tags = {f.name: f.tags for f in store.active_feeds()}
        store.close()
        if stored is None:
            fail(
                f"no stored article {article_id if article_id is not None else url};"
                " try `vedette search`"
            )
        fields, feed_name, tags = (
            stored.article.text_fields(),
            stored.feed,
            feed_tags.get(stored.feed, ()),
        )
        click.echo(f"article {stored.id} ({stored.feed}): {stored.article.title}")
    try:
        explanation = lists.matcher.explain(watchlist, fields, feed_name=feed_name, feed_tags=tags)
    except ValueError as exc:
        fail(str(exc))
    for hit in explanation.hits:
        click.echo(
            f"  hit   {hit.field}[{hit.start}:{hit.end}] {hit.text!r} -> {hit.term} ({hit.group})"
        )
    for hit in explanation.excluded_by:
        click.echo(f"  exclude {hit.field}[{hit.start}:{hit.end}] {hit.text!r} -> {hit.term}")
    click.echo(f"  rule  {explanation.rule_trace}")
    click.echo(f"{'MATCH' if explanation.matched else 'NO MATCH'}: {explanation.reason}")


@main.command()
@click.argument("lists", nargs=-1, metavar="[LIST]...")
@click.option("--since", help="Only articles published since (2023-01-10, or 7d).")
@click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per matching (list, article)."
)
@click.pass_obj
@run_command
def backtest(options: Options, lists: tuple[str, ...], since: str | None, as_json: bool) -> None:
    """Run watchlists over stored articles without sending anything: what would have alerted."""
    from collections import Counter

    from daemon.store import Store
    from daemon.stories import StoryIndex
    from daemon.watchlists import WatchlistSet

    settings = options.settings()
    watchlists = WatchlistSet(
        settings.watchlists_dir, on_error=lambda e: click.echo(f"warning: {e}", err=True)
    )
    watchlists.refresh()
    known = {w.name for w in watchlists.active()}
    unknown = [name for name in lists if name not in known]
    if unknown:
        fail(f"unknown watchlist {', '.join(unknown)} (have: {', '.join(sorted(known))})")
    store = Store.open(settings.database)
    feed_tags = {f.name: f.tags for f in store.active_feeds()}
    matcher = watchlists.matcher
    per_list: dict[str, Counter[str]] = {}
    samples: dict[str, list[str]] = {}
    stories: dict[str, set[int]] = {}
    matched: Counter[str] = Counter()
    index = StoryIndex()  # stories as the daemon would group them, without touching the database
    scanned = 0
    progress = click.progressbar(
        length=store.count_articles(),
        label="scanning",
        file=sys.stderr,
        hidden=not sys.stderr.isatty(),  # quiet when piped (SPEC §5)
    )
    for stored in store.iter_articles(since=parse_since(since)):
        progress.update(1)
        scanned += 1
        for match in matcher.match(
            stored.article.text_fields(),
            feed_name=stored.feed,
            feed_tags=feed_tags.get(stored.feed, ()),
        ):
            if lists and match.watchlist not in lists:
                continue
            a = stored.article
            story = index.find(url=a.url, title=a.title, published=a.published, feed=stored.feed)
            if story is None:
                story = len(index) + 1
            index.add(story, url=a.url, title=a.title, published=a.published, feed=stored.feed)
            matched[match.watchlist] += 1
            new_story = story not in stories.setdefault(match.watchlist, set())
            stories[match.watchlist].add(story)
            per_list.setdefault(match.watchlist, Counter()).update(match.terms)
            if new_story:
                samples.setdefault(match.watchlist, []).append(stored.article.title)
            if as_json:
                print_rows(
                    [
                        article_record(stored)
                        | {
                            "watchlist": match.watchlist,
                            "story": story,
                            "first_of_story": new_story,
                            "terms": list(match.terms),
                            "hits": [
                                {"field": h.field, "text": h.text, "term": h.term}
                                for h in match.hits
                            ],
                        }
                    ]
                )
    store.close()
    progress.finish()
    if as_json:
        return
    click.echo(f"scanned {scanned} articles")
    for name in sorted(lists or known):
        titles = samples.get(name, [])
        counts = per_list.get(name, Counter())
        noisy = ", ".join(f"{term} ({count})" for term, count in counts.most_common(5))
        click.echo(
            f"{name}: {len(titles)} stories ({matched[name]} articles) would alert"
            + (f"; noisiest terms: {noisy}" if noisy else "")
        )
        for title in titles[:5]:
            click.echo(f"    - {title[:120]}")


@main.group()
def alerts() -> None:
    """The alert outbox and delivery log."""


@alerts.command("list")
@click.option(
    "--status", type=click.Choice(["queued", "sent", "dead"]), help="Only alerts with this status."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
@run_command
def alerts_list(options: Options, status: str | None, as_json: bool) -> None:
    """List alerts, newest first, with their delivery status and last error."""
    from daemon.store import Store

    store = Store.open(options.settings().database)
    rows = store.list_alerts(status=status)
    store.close()
    records = [
        {
            "id": a.id,
            "watchlist": a.watchlist,
            "article_id": a.article_id,
            "title": a.payload.get("title"),
            "terms": a.payload.get("terms", []),
            "status": a.status,
            "attempts": a.attempts,
            "last_error": a.last_error,
            "created": a.created.isoformat(),
            "sent_at": a.sent_at.isoformat() if a.sent_at else None,
            "next_attempt": a.next_attempt.isoformat() if a.status == "queued" else None,
            "hold": a.hold,  # digest | quiet_hours | rate_limit: waits to go out in a digest
            "release_at": a.release_at.isoformat() if a.release_at else None,
        }
        for a in rows
    ]
    if as_json:
        print_rows(records)
        return
    for r in records:
        click.echo(f"#{r['id']:<5} {r['status']:<6} {r['watchlist']}: {str(r['title'])[:90]}")
        if r["status"] == "queued" and r["hold"] and not r["attempts"]:
            click.echo(f"        held ({r['hold']}) until {r['release_at']}, then sent as a digest")
        if r["last_error"]:
            click.echo(f"        after {r['attempts']} attempts: {r['last_error']}")
    if not records:
        click.echo("no alerts", err=True)


@alerts.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.pass_obj
@run_command
def alerts_retry(options: Options, ids: tuple[int, ...]) -> None:
    """Send now, ignoring backoff: the given alerts, or every unsent one (dead ones too)."""
    from daemon.service import Runtime

    runtime = Runtime.open(options.settings())
    try:
        count = runtime.store.retry_alerts(ids)
        drained = asyncio.run(runtime.outbox().drain(limit=10_000))
    finally:
        runtime.close()
    click.echo(
        f"retried {count} alerts: {drained.sent} sent, {drained.failed} still failing,"
        f" {drained.dead} dead"
    )
    sys.exit(0 if drained.failed == drained.dead == 0 else 1)


@main.command("notify-test")
@click.option("--tag", "tags", multiple=True, help="Only targets with this tag (repeatable).")
@click.pass_obj
@run_command
def notify_test(options: Options, tags: tuple[str, ...]) -> None:
    """Send a test message through the configured targets and report each result."""
    from daemon.errors import NotifyError
    from daemon.render import render_notice
    from daemon.service import build_notifier

    notifier = build_notifier(options.settings(), None, sys.stdout)
    targets = notifier.targets_for(tags)
    if not targets:
        fail(f"no notification target{' with tag ' + ', '.join(tags) if tags else ''}")
    message = render_notice("Vedette test message", f"Vedette {__version__} can reach this target.")
    failures = 0
    for target in targets:
        try:
            notifier.send(target, message)
        except NotifyError as exc:
            failures += 1
            click.echo(f"FAILED {target}: {exc}")
        else:
            click.echo(f"ok     {target}")
    sys.exit(1 if failures else 0)


@main.command()
@click.argument("name")
@click.option("--limit", default=3, show_default=True, help="At most this many places.")
def gazetteer(name: str, limit: int) -> None:
    """Suggest a watchlist entry with a town's other names and scripts (GeoNames, Ukraine)."""
    from daemon.gazetteer import alias_line, load_gazetteer, suggest

    places = suggest(load_gazetteer(), name, limit=limit)
    if not places:
        fail(
            f"{name!r} is not in the bundled gazetteer (Ukrainian towns of 15,000 people or more);"
            " write its aliases by hand"
        )
    for place in places:
        click.echo(f"# {place.name}, population {place.population:,} (GeoNames)")
        click.echo(f"    {alias_line(place)}")


@main.command()
@click.option("--since", help="Only stories first seen since (2023-01-10, or 7d).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per story.")
@click.pass_obj
@run_command
def stories(options: Options, since: str | None, as_json: bool) -> None:
    """Stories of matched articles: their articles, sources, first-seen time, and whether any
    source reports them without a hedge (confirmed) or all hedge (unconfirmed)."""
    from daemon.alert import hedge_pattern, is_unconfirmed
    from daemon.store import Store

    settings = options.settings()
    hedges = hedge_pattern(settings.hedges)
    store = Store.open(settings.database)
    rows = store.list_stories(since=parse_since(since))
    store.close()
    for story in rows:
        articles = story["articles"]
        hedged = [is_unconfirmed(s.article.text_fields(), hedges) for s in articles]
        record = {
            "story_id": story["id"],
            "title": story["title"],
            "first_seen": story["first_seen"],
            "status": "unconfirmed" if hedged and all(hedged) else "confirmed",
            "sources": list(dict.fromkeys(s.feed for s in articles)),
            "articles": [
                article_record(s) | {"hedged": h} for s, h in zip(articles, hedged, strict=True)
            ],
        }
        if as_json:
            print_rows([record])
            continue
        sources = ", ".join(record["sources"])
        click.echo(f"#{record['story_id']} {record['status']:<11} {record['title'][:90]}")
        click.echo(f"    first seen {record['first_seen']} · {len(articles)} articles · {sources}")
    if not rows and not as_json:
        click.echo("no stories (only articles that matched a watchlist are grouped)", err=True)
