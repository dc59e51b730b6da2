"""Quality and speed of story grouping (issue 9).

    .venv/bin/python bench/stories_eval.py                 # the corpus, the held-out set, speed
    .venv/bin/python bench/stories_eval.py --no-speed      # scores only

Quality: replays each corpus in tests/data/stories/ through `StoryIndex` in time order (prune,
find, else a new story, then add: what the pipeline will do) and scores the grouping pairwise
against the gold `story` labels. Precision: of the article pairs put in one story, the share that
belong together. Recall: of the pairs that belong together, the share put together, overall and
per language pair (most gold pairs are translations, which title matching leaves apart on
purpose). Every false merge is listed. corpus.yaml calibrated the defaults; heldout.yaml was
written after they were fixed and never used to tune them.

Speed: indexes 20,000 synthetic titles (English/Ukrainian/Russian; a few very common words,
Zipf-distributed rarer ones, numbers; 48 h of timestamps from 300 feeds) and times `find` for
5,000 new titles, a third of them near-copies of recent ones. Fixed seed, so runs compare.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import combinations
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.stories import StoryConfig, StoryIndex

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "stories"
CORPUS = DATA / "corpus.yaml"
HELDOUT = DATA / "heldout.yaml"
SEED = 20240609
INDEXED_TITLES = 20_000
FINDS = 5_000


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    feed: str
    lang: str
    title: str
    url: str
    published: datetime
    story: str


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    correct_pairs: int
    predicted_pairs: int
    gold_pairs: int
    predicted_stories: int
    gold_stories: int
    false_merges: list[tuple[Record, Record]] = field(default_factory=list)
    recall_by_lang: dict[str, tuple[int, int]] = field(default_factory=dict)  # found, gold


def load_corpus(path: Path = CORPUS) -> list[Record]:
    """Records of a corpus file; its `feeds` mapping gives each feed's language."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    langs: dict[str, str] = data["feeds"]
    records = [
        Record(
            id=int(r["id"]),
            feed=str(r["feed"]),
            lang=langs[r["feed"]],
            title=str(r["title"]),
            url=str(r["url"]),
            published=datetime.fromisoformat(str(r["published"])).astimezone(UTC),
            story=str(r["story"]),
        )
        for r in data["records"]
    ]
    if len({r.id for r in records}) != len(records):
        raise ValueError(f"{path}: record ids must be unique")
    return records


def group(records: list[Record], config: StoryConfig | None = None) -> dict[int, int]:
    """Record id -> predicted story id, feeding the index in time order as the pipeline would."""
    config = config or StoryConfig()
    index = StoryIndex(config)
    assigned: dict[int, int] = {}
    for record in sorted(records, key=lambda r: (r.published, r.id)):
        index.prune(record.published - timedelta(seconds=config.window_s))
        url, title, published, feed = record.url, record.title, record.published, record.feed
        story = index.find(url=url, title=title, published=published, feed=feed)
        if story is None:
            story = record.id  # a new story is named after its first article
        index.add(story, url=url, title=title, published=published, feed=feed)
        assigned[record.id] = story
    return assigned


def evaluate(records: list[Record], config: StoryConfig | None = None) -> Score:
    predicted = group(records, config)
    correct = predicted_pairs = gold_pairs = 0
    false_merges = []
    found: Counter[str] = Counter()
    gold: Counter[str] = Counter()
    for a, b in combinations(records, 2):
        together, belong = predicted[a.id] == predicted[b.id], a.story == b.story
        predicted_pairs += together
        gold_pairs += belong
        correct += together and belong
        if together and not belong:
            false_merges.append((a, b))
        if belong:
            langs = "-".join(sorted((a.lang, b.lang)))
            gold[langs] += 1
            found[langs] += together
    return Score(
        precision=correct / predicted_pairs if predicted_pairs else 1.0,
        recall=correct / gold_pairs if gold_pairs else 1.0,
        correct_pairs=correct,
        predicted_pairs=predicted_pairs,
        gold_pairs=gold_pairs,
        predicted_stories=len(set(predicted.values())),
        gold_stories=len({r.story for r in records}),
        false_merges=false_merges,
        recall_by_lang={k: (found[k], gold[k]) for k in sorted(gold)},
    )


def report(name: str, records: list[Record], score: Score) -> None:
    print(f"{name}: {len(records)} articles, {score.gold_stories} gold stories, "
          f"{score.predicted_stories} predicted")  # fmt: skip
    print(f"  pairwise precision {score.precision:.3f} "
          f"({score.correct_pairs}/{score.predicted_pairs} pairs grouped are right)")  # fmt: skip
    print(f"  pairwise recall    {score.recall:.3f} "
          f"({score.correct_pairs}/{score.gold_pairs} gold pairs grouped)")  # fmt: skip
    by_lang = (f"{k} {f}/{g}" for k, (f, g) in score.recall_by_lang.items())
    print("  recall by language pair: " + ", ".join(by_lang))
    print(f"  false merges: {len(score.false_merges)}")
    for a, b in score.false_merges:
        print(f"    {a.id} [{a.story}] {a.feed}: {a.title}")
        print(f"    {b.id} [{b.story}] {b.feed}: {b.title}")


# --- speed ---------------------------------------------------------------------------------------

COMMON = {
    "en": "russian ukrainian forces strike missile drone attack kills city region village troops",
    "uk": "росіяни удар ракета обстріл загинули поранені місто область село військові атака дрони",
    "ru": "россия удар ракета обстрел погибли ранены город область село военные атака войска",
}
SYLLABLES = {
    "en": "ba kha mu to so le da ri zo ny ka ki ro ve lu han po kro sk iv ia ser hi",
    "uk": "ба ха му то со ле да рі зо ни ка кі ро ве лу ган по кро ськ ів я сер гі",
    "ru": "ба ха му то со ле да ри зо ны ка ки ро ве лу ган по кро ск ов я сер ги",
}
VOCABULARY = 20_000


def synthetic_titles(rng: random.Random, n: int) -> list[str]:
    """Titles of 5-12 words: 2-4 of a language's 12 common words (each in about a fifth of its
    titles, like "russian" or "удар"), 3-7 rarer words drawn with Zipf-like weights (the most
    frequent in ~4% of titles), and a number in 40% of them."""
    vocabularies = {
        lang: ["".join(rng.choices(syl.split(), k=rng.randint(2, 4))) for _ in range(VOCABULARY)]
        for lang, syl in SYLLABLES.items()
    }
    weights = [1 / (rank + 10) for rank in range(VOCABULARY)]
    titles = []
    for _ in range(n):
        lang = rng.choice(list(COMMON))
        words = rng.sample(COMMON[lang].split(), rng.randint(2, 4))
        words += rng.choices(vocabularies[lang], weights, k=rng.randint(3, 7))
        if rng.random() < 0.4:
            words.append(str(rng.randint(1, 300)))
        rng.shuffle(words)
        titles.append(" ".join(words))
    return titles


def measure_speed() -> tuple[float, float, int]:
    """(adds/s, finds/s, finds that matched a story) with INDEXED_TITLES titles indexed."""
    rng = random.Random(SEED)
    titles = synthetic_titles(rng, INDEXED_TITLES + FINDS)
    start = datetime(2024, 6, 1, tzinfo=UTC)
    step = timedelta(hours=48) / INDEXED_TITLES
    index = StoryIndex()
    began = time.perf_counter()
    for n, title in enumerate(titles[:INDEXED_TITLES]):
        url, feed = f"https://site{n % 300}.example/a/{n}", f"feed{n % 300}"
        index.add(n, url=url, title=title, published=start + n * step, feed=feed)
    adds_s = time.perf_counter() - began
    queries = titles[INDEXED_TITLES:]
    recent = INDEXED_TITLES * 3 // 4  # the last 12 h, where a title match is allowed
    for i in range(0, FINDS, 3):  # a third: a recent title with one word dropped
        words = titles[rng.randrange(recent, INDEXED_TITLES)].split()
        del words[rng.randrange(len(words))]
        queries[i] = " ".join(words)
    now = start + timedelta(hours=48)
    began = time.perf_counter()
    found = sum(
        index.find(url=f"https://new.example/{i}", title=q, published=now, feed="new") is not None
        for i, q in enumerate(queries)
    )
    finds_s = time.perf_counter() - began
    return INDEXED_TITLES / adds_s, FINDS / finds_s, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-speed", action="store_true", help="skip the 20k-title timing")
    args = parser.parse_args()
    config = StoryConfig()
    print(f"config: {config}")
    for name, path in (("corpus.yaml", CORPUS), ("heldout.yaml", HELDOUT)):
        records = load_corpus(path)
        report(name, records, evaluate(records, config))
    if not args.no_speed:
        adds, finds, found = measure_speed()
        print(f"speed: {INDEXED_TITLES:,} titles indexed at {adds:,.0f} adds/s; "
              f"find: {finds:,.0f} finds/s ({found:,}/{FINDS:,} found a story)")  # fmt: skip


if __name__ == "__main__":
    main()
