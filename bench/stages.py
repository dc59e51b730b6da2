"""Time each pipeline stage in one thread, over the farm's feeds: parse, store, match.

    .venv/bin/python bench/stages.py --feeds 200
    PYTHONPATH=/tmp/patched .venv/bin/python bench/stages.py --feeds 200   # a patched copy

A sampling profile of a real poll (`profile_poll.py`) spreads the time over the event loop and
the parser threads, and GIL waits blur it; this harness runs the same stage functions one after
the other, single-threaded, and charges each the CPU time (`process_time`) it used, which other
processes on a busy machine do not inflate. The bodies are fetched from a farm
once, before any timing, so the network is not measured. It imports `daemon` from PYTHONPATH
first, which is how a proposed change is measured on a copy before anyone edits daemon/.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run
from measure import ProcessGroup

BENCH = Path(__file__).resolve().parent


def fetch_bodies(feeds: list[dict[str, Any]]) -> list[tuple[str, bytes, dict[str, str]]]:
    """(name, body, headers) of every feed that answers 200 with a body."""
    bodies = []
    for feed in feeds:
        if feed["fault"] in ("hang", "error500", "error429"):
            continue
        with urllib.request.urlopen(feed["url"], timeout=30) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            bodies.append((feed["name"], response.read(), headers))
    return bodies


def time_stages(bodies: list[tuple[str, bytes, dict[str, str]]], database: Path) -> dict[str, Any]:
    from daemon.errors import ParseError
    from daemon.parse import parse_feed
    from daemon.store import Store
    from daemon.watchlists import WatchlistSet

    watchlists = WatchlistSet(BENCH / "watchlists")
    watchlists.refresh()
    matcher = watchlists.matcher
    store = Store.open(database)
    now = datetime.now(UTC)
    parse_s = store_s = match_s = 0.0
    articles = matches = 0
    for name, body, headers in bodies:
        started = time.process_time()
        try:
            parsed = parse_feed(body, headers, url=f"http://farm/{name}", fetched_at=now)
        except ParseError:
            continue
        parse_s += time.process_time() - started
        started = time.process_time()
        with store.transaction():
            changed = store.upsert_articles(name, parsed.articles, fetched=now)
        store_s += time.process_time() - started
        started = time.process_time()
        for stored, _ in changed:
            matches += len(matcher.match(stored.article.text_fields(), feed_name=name))
        match_s += time.process_time() - started
        articles += len(changed)
    store.close()
    return {
        "articles": articles,
        "matches": matches,
        "parse_s": round(parse_s, 3),
        "store_s": round(store_s, 3),
        "match_s": round(match_s, 3),
        "per_article_ms": {
            "parse": round(parse_s / max(articles, 1) * 1000, 3),
            "store": round(store_s / max(articles, 1) * 1000, 3),
            "match": round(match_s / max(articles, 1) * 1000, 3),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="passes; medians are reported")
    args = parser.parse_args(argv)
    import daemon

    print(f"daemon imported from {Path(daemon.__file__).parent}", file=sys.stderr)
    group = ProcessGroup()
    try:
        farm = run.start_server(
            group, "farm.py", ["--feeds", str(args.feeds), "--max-lifetime", "1800"],
            sys.executable,
        )  # fmt: skip
        bodies = fetch_bodies(farm.get("/feeds.json"))
    finally:
        group.stop_all()
    passes = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="vedette-stages-") as tmp:
            passes.append(time_stages(bodies, Path(tmp) / "stages.db"))
    result = passes[-1] | {
        key: round(statistics.median(p[key] for p in passes), 3)
        for key in ("parse_s", "store_s", "match_s")
    }
    result["runs"] = [{k: p[k] for k in ("parse_s", "store_s", "match_s")} for p in passes]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
