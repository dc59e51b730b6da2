"""Throughput of Matcher.match on a synthetic English/Ukrainian/Russian corpus.

    .venv/bin/python bench/match_bench.py            # ~20 MB corpus
    .venv/bin/python bench/match_bench.py --quick    # ~2 MB corpus
    .venv/bin/python bench/match_bench.py --json --runs 5   # one JSON object a line, every run

Prints one line per watchlist size (100 / 1,000 / 10,000 terms): MB/s of UTF-8 article text,
median of `--runs` runs (3 by default). Everything is generated from a fixed seed, so runs are
comparable. `bench/run.py` runs it for its `match` scenario.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

# run.py --src points this at a copy of the package under test
sys.path.insert(
    0, os.environ.get("BENCH_DAEMON_SRC") or str(Path(__file__).resolve().parent.parent)
)

from daemon.match import compile_watchlists
from daemon.models import TermSpec, Watchlist

SEED = 20240601


def words(line: str) -> list[str]:
    return line.split()


LATIN_SYLLABLES = words("ba kha mu to so le da ri zo ny ka ki ro ve lu han po kro sk iv ia ser hi")
CYR_SYLLABLES = words("ба ха му то со ле да рі зо ни ка кі ро ве лу ган по кро ськ ів я сер гі ы ё")
ENGLISH = words(
    "the of and to in a is that for on with as was by at from said forces troops city region "
    "attack front line shelling officials reported killed wounded drone missile strike energy "
    "government minister president talks ceasefire civilians village near east south offensive"
)
UKRAINIAN = words(
    "і в на що з за не до як від про під бої тривають ЗСУ відбили атаку війська місто область "
    "обстріл загинули поранені ракета удар енергетика уряд міністр президент переговори село"
)
RUSSIAN = words(
    "и в на что с за не до как от о под бои продолжаются войска город область обстрел погибли "
    "ранены ракета удар энергетика правительство министр президент переговоры село ещё"
)
REAL = ["Bakhmut", "Бахмутом", "Соледара", "Wagner", "Kharkiv", "Харькове", "Авдіївці"]


def make_name(rng: random.Random, syllables: list[str]) -> str:
    return "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))).capitalize()


def make_watchlists(rng: random.Random, n_terms: int) -> list[Watchlist]:
    per_list = 100
    lists = []
    for n in range(max(1, n_terms // per_list)):
        specs = [
            TermSpec(make_name(rng, LATIN_SYLLABLES), (make_name(rng, CYR_SYLLABLES),))
            for _ in range(per_list // 2)
        ]
        groups = {"places": tuple(specs[: per_list // 4]), "units": tuple(specs[per_list // 4 :])}
        if n == 0:
            groups["places"] += (TermSpec("Bakhmut", ("Бахмут", "Артемовск")), TermSpec("Kharkiv"))
            groups["units"] += (TermSpec("Wagner Group", ("Wagner", "ЧВК Вагнер")),)
        lists.append(
            Watchlist(
                name=f"list{n}",
                title=f"List {n}",
                groups=groups,
                rule="places and units" if n % 2 else None,
                exclude=(TermSpec("Richard Wagner"),),
            )
        )
    return lists


def make_article(rng: random.Random, target_chars: int) -> dict[str, str]:
    vocab = rng.choice([ENGLISH, UKRAINIAN, RUSSIAN])
    words: list[str] = []
    size = 0
    while size < target_chars:
        word = rng.choice(REAL) if rng.random() < 0.002 else rng.choice(vocab)
        if rng.random() < 0.1:
            word = word.capitalize() + rng.choice([",", ".", ""])
        words.append(word)
        size += len(word) + 1
    body = " ".join(words)
    return {"title": body[:80], "summary": body[80:400], "content": body[400:]}


def make_corpus(rng: random.Random, total_bytes: int) -> list[dict[str, str]]:
    corpus: list[dict[str, str]] = []
    size = 0
    while size < total_bytes:
        article = make_article(rng, rng.randint(1000, 8000))
        corpus.append(article)
        size += sum(len(v.encode()) for v in article.values())
    return corpus


def run(total_bytes: int, *, runs: int = 3, as_json: bool = False) -> None:
    rng = random.Random(SEED)
    corpus = make_corpus(rng, total_bytes)
    mb = sum(len(v.encode()) for a in corpus for v in a.values()) / 1e6
    for n_terms in (100, 1_000, 10_000):
        watchlists = make_watchlists(random.Random(SEED + n_terms), n_terms)
        started = time.perf_counter()
        matcher = compile_watchlists(watchlists)
        compile_s = time.perf_counter() - started
        rates = []
        matches = 0
        for _ in range(runs):
            started = time.perf_counter()
            matches = sum(len(matcher.match(a, feed_name="bench")) for a in corpus)
            rates.append(mb / (time.perf_counter() - started))
        if as_json:
            row = {"terms": n_terms, "corpus_mb": round(mb, 2), "articles": len(corpus),
                   "compile_s": round(compile_s, 3), "matches": matches,
                   "mb_per_s": [round(r, 2) for r in rates]}  # fmt: skip
            print(json.dumps(row), flush=True)
            continue
        print(
            f"terms={n_terms:>6} corpus={mb:.1f}MB articles={len(corpus)} "
            f"compile={compile_s:.2f}s matches={matches} "
            f"throughput={statistics.median(rates):.1f} MB/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 MB corpus instead of 20 MB")
    parser.add_argument("--runs", type=int, default=3, help="timed passes per watchlist size")
    parser.add_argument("--json", action="store_true", help="one JSON object a line, every run")
    args = parser.parse_args()
    run(2_000_000 if args.quick else 20_000_000, runs=max(1, args.runs), as_json=args.json)


if __name__ == "__main__":
    main()
