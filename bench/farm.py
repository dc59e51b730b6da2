"""A deterministic loopback feed farm: N synthetic news feeds served on 127.0.0.1.

    .venv/bin/python bench/farm.py --feeds 1000 --seed 7          # prints {"url": ...}, serves
    curl -s http://127.0.0.1:PORT/feeds.json | head                # the feed list
    curl -s 'http://127.0.0.1:PORT/tick?items=3&fraction=1'       # 3 new items on every feed

Every feed, item and fault is a pure function of `--seed`, `--epoch`, the feed number, the item
number and the feed's tick count, so two farms started with the same options serve the same
bytes. What is served:

* 20-100 items per feed (`--min-items`/`--max-items`), RSS 2.0 or Atom, in English, Ukrainian
  or Russian; a share of the Cyrillic feeds is encoded as windows-1251, a share of all feeds
  carries full article content besides the summary.
* ETag and Last-Modified on every feed (`--validators mixed`: some send one, a few neither);
  If-None-Match / If-Modified-Since answer 304; gzip when the client asks for it (bodies are
  rendered and compressed ahead of time so serving costs the farm almost no CPU).
* Sticky faults on a seeded share of feeds: slow (a 0.3-2 s delay), 500, 429 with Retry-After,
  hanging (holds the connection `--hang-s` seconds, then closes it without an answer), and
  malformed (half of them broken XML that a lenient parser still reads, half an HTML page).
* `GET /tick?items=K&fraction=F` adds K new items (dated after everything else) to a seeded
  share F of the feeds; the oldest items slide out, as on a real feed.
* `GET /stats` counts what the farm saw on the wire (requests, statuses, conditional requests,
  gzip answers, body bytes); control endpoints are not counted. `/reset` returns every feed to
  its first version and zeroes the counters; `/shutdown` stops the farm.

The farm stops by itself after `--max-lifetime` seconds, when its stdin closes
(`--exit-on-stdin-eof`, which `run.py` uses) or on `/shutdown`. It listens on loopback only.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import math
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape, quoteattr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loopback import JsonHandler, LoopbackServer, check_loopback, serve_until_stopped

DEFAULT_EPOCH = 1_717_200_000  # 2024-06-01T00:00:00Z; run.py passes the current hour instead
FAULTS = ("slow", "error500", "error429", "hang", "malformed")
RETRY_AFTER_S = 300

# --- vocabulary ------------------------------------------------------------------------------
# Place names appear in the forms outlets use, Cyrillic ones inflected, so that the watchlists
# in bench/watchlists/ meet every spelling the matcher has to handle.


def _words(text: str) -> list[str]:
    return text.split()


EN_PLACES = [
    "Bakhmut", "Bakhmut", "Bakhmut", "Artemivsk", "Artyomovsk", "Soledar", "Soledar",
    "Kramatorsk", "Sloviansk", "Avdiivka", "Avdeyevka", "Chasiv Yar", "Kharkiv", "Kharkov",
    "Zaporizhzhia", "Zaporozhye", "Kherson", "Klishchiivka", "Toretsk", "Pokrovsk", "Lyman",
    "Kupiansk", "Vuhledar", "Siversk",
]  # fmt: skip
UK_PLACES = [
    "Бахмут", "Бахмута", "Бахмуті", "Бахмутом", "Соледар", "Соледара", "Соледарі", "Харків",
    "Харкова", "Харкові", "Авдіївка", "Авдіївки", "Авдіївці", "Краматорськ", "Краматорську",
    "Запоріжжя", "Запоріжжі", "Херсон", "Херсоні", "Кліщіївка", "Часів Яр", "Покровськ",
]  # fmt: skip
RU_PLACES = [
    "Бахмут", "Бахмута", "Бахмуте", "Артемовск", "Артемовска", "Соледар", "Соледаре", "Харьков",
    "Харькове", "Авдеевка", "Авдеевке", "Краматорск", "Краматорске", "Запорожье", "Херсон",
    "Херсоне", "Клещеевка", "Часов Яр", "Покровск",
]  # fmt: skip
EN_UNITS = [
    "the Wagner Group", "Wagner fighters", "PMC Wagner", "the 93rd Mechanized Brigade",
    "the 3rd Assault Brigade", "the Azov brigade", "Russian airborne units", "the border guard",
]  # fmt: skip
UK_UNITS = ["ПВК Вагнер", "вагнерівці", "93-тя бригада", "3-тя штурмова бригада", "ЗСУ"]
RU_UNITS = ["ЧВК Вагнер", "вагнеровцы", "десантники", "93-я бригада", "штурмовые отряды"]

EN_WAR_TITLES = [
    "{unit} reportedly advances near {place}",
    "Shelling of {place} kills {n}, regional governor says",
    "Battle for {place}: what we know on day {n}",
    "{unit} holds positions east of {place} despite heavy losses",
    "Evacuation from {place} continues as the front line moves closer",
    "Claims of a breakthrough near {place} could not be verified",
    "Drone strike hits energy facility outside {place}",
]
EN_TITLES = [
    "{company} shares rise {n}% after quarterly results",
    "Central bank in {country} holds rates at {n}%",
    "{city} council approves new tram line",
    "{team} beat {team2} {n}-{m} in a late comeback",
    "Heatwave expected across {country} this week",
    "Parliament in {country} debates pension reform",
    "Opera season opens with Richard Wagner's Ring cycle in {city}",
]
EN_WAR_SENTENCES = [
    "Officials in {place} said {n} people were wounded overnight.",
    "{unit} claimed to have taken several streets on the eastern edge of {place}.",
    "Ukrainian forces repelled {n} attacks in the direction of {place}, the General Staff said.",
    "Residents of {place} described constant shelling and no electricity for {n} days.",
    "Analysts warned that the encirclement of {place} remained a risk.",
    "Fighting around the salt mines north of {place} continued.",
]
EN_SENTENCES = [
    "The claim could not be independently verified.",
    "{company} reported revenue of {n} million, above analysts' expectations.",
    "The match in {city} drew a crowd of {n} thousand.",
    "Forecasters expect temperatures of {n} degrees in {city} on Sunday.",
]
UK_WAR_TITLES = [
    "{unit} намагаються наступати біля {place}",
    "Обстріл: у {place} загинули {n} людей, повідомляє ОВА",
    "Бої за {place}: що відомо на {n}-й день",
    "Інформація про прорив біля {place} не підтверджено",
    "Евакуація з {place} триває",
]
UK_TITLES = [
    "Погода: у {city} до {n} градусів тепла",
    "Уряд ухвалив бюджет на {n} мільярдів",
    "У {city} відкрили новий міст",
]
UK_WAR_SENTENCES = [
    "За даними Генштабу, ЗСУ відбили {n} атак на напрямку {place}.",
    "{unit} нібито просунулися на околицях {place}, але це не підтверджено.",
    "Мешканці {place} розповідають про постійні обстріли.",
    "Загроза оточення {place} зберігається, кажуть аналітики.",
]
UK_SENTENCES = [
    "У місті {city} пройшов концерт, який зібрав {n} тисяч глядачів.",
    "Уряд обговорює нову програму підтримки енергетики.",
]
RU_WAR_TITLES = [
    "{unit} заявляют о продвижении у {place}",
    "Обстрел {place}: погибли {n} человек",
    "Бои за {place}: что известно на {n}-й день",
    "Сообщения о прорыве у {place} не подтверждено",
    "Эвакуация из {place} продолжается",
]
RU_TITLES = [
    "В {city} ожидается до {n} градусов тепла",
    "Правительство утвердило бюджет на {n} миллиардов",
    "В {city} открыли новый мост",
]
RU_WAR_SENTENCES = [
    "По данным Генштаба, отбито {n} атак на направлении {place}.",
    "{unit} якобы продвинулись на окраинах {place}, но это не подтверждено.",
    "Жители {place} рассказывают о постоянных обстрелах.",
    "Угроза окружения {place} сохраняется, считают аналитики.",
]
RU_SENTENCES = [
    "В городе {city} прошёл концерт, собравший {n} тысяч зрителей.",
    "Правительство обсуждает новую программу поддержки энергетики.",
]
EN_FILLER = _words(
    "the a of and to in on for with as by at from that said officials forces troops city "
    "region attack front line shelling reported killed wounded drone missile strike energy "
    "government minister president talks ceasefire civilians village near east south week "
    "market prices inflation bank rates budget school hospital road bridge water power grid "
    "council mayor election vote court police fire storm rain season league team coach "
    "players fans museum festival music film book study researchers data report analysis"
)
UK_FILLER = _words(
    "і в на що з за не до як від про під бої тривають війська місто область обстріл загинули "
    "поранені ракета удар енергетика уряд міністр президент переговори село ціни банк бюджет "
    "школа лікарня міст вода світло рада вибори суд поліція дощ команда вболівальники музей"
)
RU_FILLER = _words(
    "и в на что с за не до как от о под бои продолжаются войска город область обстрел погибли "
    "ранены ракета удар энергетика правительство министр президент переговоры село цены банк "
    "бюджет школа больница мост вода свет совет выборы суд полиция дождь команда болельщики"
)
CITIES = ["Lisbon", "Nairobi", "Osaka", "Toronto", "Oslo", "Cairo", "Glasgow", "Gdansk"]
UK_CITIES = ["Львові", "Києві", "Одесі", "Дніпрі", "Вінниці"]
RU_CITIES = ["Москве", "Казани", "Самаре", "Риге", "Алматы"]
COUNTRIES = ["Canada", "Japan", "Brazil", "Norway", "Kenya", "Chile", "Poland", "Portugal"]
COMPANIES = ["Norvik Systems", "Alder Bank", "Brightwave", "Kestrel Motors", "Halden Foods"]
TEAMS = ["Riverside FC", "Athletic Vale", "Portside Rovers", "Eastfield City", "Harbour Town"]
AUTHORS = ["Maria Okafor", "James Lindqvist", "Olena Kovalenko", "Ігор Петренко", "Анна Смирнова"]
CATEGORIES = {"en": ["World", "Europe", "Business", "Sport"], "uk": ["Війна", "Економіка", "Спорт"],
              "ru": ["Война", "Экономика", "Спорт"]}  # fmt: skip


# How often war news (naming a place) comes up: about one article in ten mentions a place the
# bench watchlists know, a realistic rate for an analyst's feeds. Most text is filler.
WAR_TITLE_SHARE = 0.08
WAR_SENTENCE_SHARE = 0.012
OTHER_SENTENCE_SHARE = 0.08


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    places: list[str]
    units: list[str]
    war_titles: list[str]
    titles: list[str]
    war_sentences: list[str]
    sentences: list[str]
    filler: list[str]
    cities: list[str]


LANGUAGES = {
    "en": Language("en", EN_PLACES, EN_UNITS, EN_WAR_TITLES, EN_TITLES, EN_WAR_SENTENCES,
                   EN_SENTENCES, EN_FILLER, CITIES),
    "uk": Language("uk", UK_PLACES, UK_UNITS, UK_WAR_TITLES, UK_TITLES, UK_WAR_SENTENCES,
                   UK_SENTENCES, UK_FILLER, UK_CITIES),
    "ru": Language("ru", RU_PLACES, RU_UNITS, RU_WAR_TITLES, RU_TITLES, RU_WAR_SENTENCES,
                   RU_SENTENCES, RU_FILLER, RU_CITIES),
}  # fmt: skip


# --- the corpus --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """Everything fixed about one feed, drawn from the seed."""

    index: int
    name: str
    kind: str  # rss | atom
    lang: str  # en | uk | ru
    encoding: str  # utf-8 | windows-1251
    items: int  # items on the feed at any time (a sliding window)
    spacing_s: int  # time between two items
    full_content: bool
    fault: str | None  # one of FAULTS, or None
    malformed_kind: str | None  # "lenient" (broken XML) or "html" (an error page)
    send_etag: bool
    send_last_modified: bool

    @property
    def path(self) -> str:
        return f"/feeds/{self.name}.xml"


@dataclass(frozen=True, slots=True)
class FarmOptions:
    feeds: int = 1000
    seed: int = 7
    epoch: int = DEFAULT_EPOCH
    min_items: int = 20
    max_items: int = 100
    cyrillic_fraction: float = 0.3
    cp1251_fraction: float = 0.35  # of the Cyrillic feeds
    atom_fraction: float = 0.35
    full_content_fraction: float = 0.15
    validators: str = "all"  # all | mixed
    slow_fraction: float = 0.03
    error500_fraction: float = 0.01
    error429_fraction: float = 0.01
    hang_fraction: float = 0.005
    malformed_fraction: float = 0.02
    slow_delay_s: tuple[float, float] = (0.3, 2.0)
    hang_s: float = 3.0
    gzip_level: int = 1  # nginx's default; the farm compresses 100+ MB on start and tick


def feed_specs(options: FarmOptions) -> list[FeedSpec]:
    rng = random.Random(f"{options.seed}:feeds")
    fault_weights = [
        ("slow", options.slow_fraction),
        ("error500", options.error500_fraction),
        ("error429", options.error429_fraction),
        ("hang", options.hang_fraction),
        ("malformed", options.malformed_fraction),
    ]
    specs = []
    for index in range(options.feeds):
        cyrillic = rng.random() < options.cyrillic_fraction
        lang = rng.choice(["uk", "ru"]) if cyrillic else "en"
        encoding = (
            "windows-1251" if cyrillic and rng.random() < options.cp1251_fraction else "utf-8"
        )
        roll, fault = rng.random(), None
        for name, share in fault_weights:
            if roll < share:
                fault = name
                break
            roll -= share
        validators = rng.random()
        if options.validators == "all":
            etag = last_modified = True
        else:  # mixed: 75 % both, 12 % ETag only, 8 % Last-Modified only, 5 % neither
            etag = validators < 0.87
            last_modified = validators < 0.75 or 0.87 <= validators < 0.95
        specs.append(
            FeedSpec(
                index=index,
                name=f"feed-{index:04d}",
                kind="atom" if rng.random() < options.atom_fraction else "rss",
                lang=lang,
                encoding=encoding,
                items=rng.randint(options.min_items, options.max_items),
                spacing_s=int(math.exp(rng.uniform(math.log(900), math.log(8 * 3600)))),
                full_content=rng.random() < options.full_content_fraction,
                fault=fault,
                malformed_kind=rng.choice(["lenient", "html"]) if fault == "malformed" else None,
                send_etag=etag,
                send_last_modified=last_modified,
            )
        )
    return specs


@dataclass(frozen=True, slots=True)
class Item:
    guid: str
    link: str
    title: str
    summary_html: str
    content_html: str | None
    published: datetime
    author: str
    category: str


def _fill(template: str, rng: random.Random, lang: Language) -> str:
    return template.format(
        place=rng.choice(lang.places),
        unit=rng.choice(lang.units),
        n=rng.randint(2, 60),
        m=rng.randint(0, 5),
        city=rng.choice(lang.cities),
        country=rng.choice(COUNTRIES),
        company=rng.choice(COMPANIES),
        team=rng.choice(TEAMS),
        team2=rng.choice(TEAMS),
    )


def _sentence(rng: random.Random, lang: Language) -> str:
    roll = rng.random()
    if roll < WAR_SENTENCE_SHARE:
        return _fill(rng.choice(lang.war_sentences), rng, lang)
    if roll < WAR_SENTENCE_SHARE + OTHER_SENTENCE_SHARE:
        return _fill(rng.choice(lang.sentences), rng, lang)
    words = rng.choices(lang.filler, k=rng.randint(8, 22))
    return " ".join(words).capitalize() + "."


SENTENCE_POOL = 6000  # per language; items draw from it, which keeps rendering fast


def sentence_pools(seed: int) -> dict[str, list[str]]:
    """Seeded, HTML-escaped sentences per language: now and then a templated news sentence
    (places, units, hedges), filler words otherwise."""
    pools = {}
    for code, lang in LANGUAGES.items():
        rng = random.Random(f"{seed}:sentences:{code}")
        pools[code] = [html.escape(_sentence(rng, lang), quote=False) for _ in range(SENTENCE_POOL)]
    return pools


def _paragraphs(rng: random.Random, pool: list[str], target_words: int) -> str:
    paragraphs, words = [], 0
    while words < target_words:
        sentences = rng.choices(pool, k=rng.randint(2, 4))
        words += sum(s.count(" ") + 1 for s in sentences)
        paragraphs.append("<p>" + " ".join(sentences) + "</p>")
    return "\n".join(paragraphs)


def published_at(options: FarmOptions, spec: FeedSpec, number: int) -> datetime:
    """The first version has one item every `spacing_s` up to the epoch; items added by ticks
    follow one minute apart."""
    newest_initial = spec.items - 1
    if number <= newest_initial:
        return datetime.fromtimestamp(
            options.epoch - (newest_initial - number) * spec.spacing_s, UTC
        )
    return datetime.fromtimestamp(options.epoch + (number - newest_initial) * 60, UTC)


def make_item(
    options: FarmOptions, spec: FeedSpec, number: int, pools: dict[str, list[str]]
) -> Item:
    """Item `number` of a feed (0 = the oldest of its first version; ticks add higher ones)."""
    rng = random.Random(f"{options.seed}:{spec.index}:{number}")
    lang = LANGUAGES[spec.lang]
    titles = lang.war_titles if rng.random() < WAR_TITLE_SHARE else lang.titles
    title = _fill(rng.choice(titles), rng, lang)
    pool = pools[spec.lang]
    summary = _paragraphs(rng, pool, rng.randint(30, 160))
    content = _paragraphs(rng, pool, rng.randint(300, 700)) if spec.full_content else None
    slug = hashlib.blake2s(f"{spec.index}:{number}".encode(), digest_size=6).hexdigest()
    return Item(
        guid=f"urn:farm:{spec.name}:{number}",
        link=f"https://{spec.name}.news.example/{spec.lang}/{slug}?utm_source=rss&id={number}",
        title=title,
        summary_html=summary,
        content_html=content,
        published=published_at(options, spec, number),
        author=rng.choice(AUTHORS),
        category=rng.choice(CATEGORIES[spec.lang]),
    )


def render_item(spec: FeedSpec, item: Item) -> str:
    if spec.kind == "rss":
        content = (
            f"<content:encoded><![CDATA[{item.content_html}]]></content:encoded>"
            if item.content_html
            else ""
        )
        return (
            f"<item><title>{escape(item.title)}</title><link>{escape(item.link)}</link>"
            f'<guid isPermaLink="false">{item.guid}</guid>'
            f"<pubDate>{format_datetime(item.published, usegmt=True)}</pubDate>"
            f"<dc:creator>{escape(item.author)}</dc:creator>"
            f"<category>{escape(item.category)}</category>"
            f"<description>{escape(item.summary_html)}</description>{content}</item>\n"
        )
    stamp = item.published.isoformat().replace("+00:00", "Z")
    content = (
        f'<content type="html">{escape(item.content_html)}</content>' if item.content_html else ""
    )
    return (
        f'<entry><title type="text">{escape(item.title)}</title>'
        f'<link rel="alternate" href={quoteattr(item.link)}/><id>{item.guid}</id>'
        f"<published>{stamp}</published><updated>{stamp}</updated>"
        f"<author><name>{escape(item.author)}</name></author>"
        f"<category term={quoteattr(item.category)}/>"
        f'<summary type="html">{escape(item.summary_html)}</summary>{content}</entry>\n'
    )


def render_feed(spec: FeedSpec, fragments: list[str], newest: datetime, base_url: str) -> bytes:
    """The whole document, newest item first, in the feed's encoding."""
    title = f"{spec.name} ({spec.lang})"
    declaration = f'<?xml version="1.0" encoding="{spec.encoding}"?>\n'
    if spec.kind == "rss":
        head = (
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
            ' xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>{escape(title)}</title><link>https://{spec.name}.news.example/</link>"
            f"<description>Synthetic feed {spec.index}</description><language>{spec.lang}"
            f"</language><lastBuildDate>{format_datetime(newest, usegmt=True)}</lastBuildDate>\n"
        )
        tail = "</channel></rss>\n"
    else:
        head = (
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{escape(title)}</title><id>urn:farm:{spec.name}</id>"
            f'<link rel="self" href="{base_url}{spec.path}"/>'
            f"<updated>{newest.isoformat().replace('+00:00', 'Z')}</updated>\n"
        )
        tail = "</feed>\n"
    body = declaration + head + "".join(reversed(fragments)) + tail
    if spec.malformed_kind == "lenient":  # an unescaped ampersand and an unclosed element
        body = body.replace("</title>", " & more</title>", 3).replace(tail, "<broken>\n" + tail)
    elif spec.malformed_kind == "html":
        body = (
            "<!DOCTYPE html><html><head><title>Temporarily unavailable</title></head><body>"
            "<h1>Service temporarily unavailable</h1><p>Please try again later.</p></body></html>"
        )
    return body.encode(spec.encoding, "xmlcharrefreplace")


# --- the farm: state, rendering and counters ----------------------------------------------------


@dataclass(slots=True)
class Rendered:
    body: bytes
    gzipped: bytes
    etag: str
    last_modified: str
    modified_at: datetime
    content_type: str


@dataclass(slots=True)
class Counters:
    requests: int = 0
    status: dict[str, int] = field(default_factory=dict)
    conditional: int = 0
    gzip: int = 0
    body_bytes: int = 0
    slow: int = 0
    hung: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "status": dict(sorted(self.status.items())),
            "ok_200": self.status.get("200", 0),
            "not_modified_304": self.status.get("304", 0),
            "conditional": self.conditional,
            "gzip": self.gzip,
            "body_bytes": self.body_bytes,
            "slow": self.slow,
            "hung": self.hung,
        }


class Farm:
    """The feeds, their current versions (how many ticks each has seen) and what was served."""

    def __init__(self, options: FarmOptions, base_url: str) -> None:
        self.options = options
        self.base_url = base_url
        self.specs = feed_specs(options)
        self.by_path = {spec.path: spec for spec in self.specs}
        self.added = [0] * len(self.specs)  # new items per feed since the first version
        self.ticks = 0
        self.lock = threading.Lock()
        self.counters = Counters()
        self._fragments: dict[tuple[int, int], str] = {}
        self._pools = sentence_pools(options.seed)
        self._rendered: list[Rendered | None] = [None] * len(self.specs)
        started = time.perf_counter()
        for spec in self.specs:
            self._render(spec)
        self.render_s = time.perf_counter() - started

    def _fragment(self, spec: FeedSpec, number: int) -> str:
        key = (spec.index, number)
        fragment = self._fragments.get(key)
        if fragment is None:
            fragment = render_item(spec, make_item(self.options, spec, number, self._pools))
            self._fragments[key] = fragment
        return fragment

    def _render(self, spec: FeedSpec) -> None:
        first = self.added[spec.index]
        numbers = range(first, first + spec.items)
        for stale in range(max(0, first - self.options.max_items), first):
            self._fragments.pop((spec.index, stale), None)  # slid out; keep memory flat
        newest = published_at(self.options, spec, numbers[-1])
        body = render_feed(spec, [self._fragment(spec, n) for n in numbers], newest, self.base_url)
        version = hashlib.blake2s(body, digest_size=8).hexdigest()
        content_type = (
            "text/html; charset=utf-8"
            if spec.malformed_kind == "html"
            else f"application/{spec.kind}+xml; charset={spec.encoding}"
        )
        self._rendered[spec.index] = Rendered(
            body=body,
            gzipped=gzip.compress(body, self.options.gzip_level, mtime=0),
            etag=f'"{version}"',
            last_modified=format_datetime(newest, usegmt=True),
            modified_at=newest,
            content_type=content_type,
        )

    def current(self, spec: FeedSpec) -> Rendered:
        rendered = self._rendered[spec.index]
        assert rendered is not None
        return rendered

    def tick(self, items: int, fraction: float) -> int:
        """Add `items` new items to a seeded share of the feeds; returns how many changed."""
        with self.lock:
            self.ticks += 1
            rng = random.Random(f"{self.options.seed}:tick:{self.ticks}")
            count = round(len(self.specs) * min(max(fraction, 0.0), 1.0))
            chosen = rng.sample(self.specs, count)
            for spec in chosen:
                self.added[spec.index] += items
                self._render(spec)
            return len(chosen)

    def reset(self) -> None:
        with self.lock:
            changed = [spec for spec in self.specs if self.added[spec.index]]
            self.added = [0] * len(self.specs)
            self.ticks = 0
            for spec in changed:
                self._render(spec)
            self.counters = Counters()

    def count(
        self, status: int | str, *, conditional: bool, gzipped: bool, body_bytes: int
    ) -> None:
        with self.lock:
            c = self.counters
            c.requests += 1
            c.status[str(status)] = c.status.get(str(status), 0) + 1
            c.conditional += conditional
            c.gzip += gzipped
            c.body_bytes += body_bytes

    def stats(self, *, reset: bool = False) -> dict[str, Any]:
        with self.lock:
            stats = self.counters.as_dict() | {"ticks": self.ticks, "feeds": len(self.specs)}
            if reset:
                self.counters = Counters()
            return stats

    def listing(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "url": self.base_url + s.path,
                "kind": s.kind,
                "lang": s.lang,
                "encoding": s.encoding,
                "items": s.items,
                "fault": s.fault,
            }
            for s in self.specs
        ]

    def opml(self) -> str:
        outlines = "".join(
            f'<outline type="rss" text="{s.name}" title="{s.name}" xmlUrl="{self.base_url}'
            f'{s.path}"/>\n'
            for s in self.specs
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0"><head><title>farm'
            f"</title></head><body>\n{outlines}</body></opml>\n"
        )


def not_modified(request_headers: Any, spec: FeedSpec, rendered: Rendered) -> bool:
    """RFC 9110 §13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request_headers.get("If-None-Match")
    if if_none_match is not None:
        tags = [t.strip() for t in if_none_match.split(",")]
        return spec.send_etag and (rendered.etag in tags or "*" in tags)
    if_modified_since = request_headers.get("If-Modified-Since")
    if if_modified_since and spec.send_last_modified:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        return since.tzinfo is not None and rendered.modified_at <= since
    return False


def make_handler(farm: Farm, stop: threading.Event) -> type[JsonHandler]:
    options = farm.options

    class FarmHandler(JsonHandler):
        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            spec = farm.by_path.get(url.path)
            if spec is not None:
                self._serve_feed(spec)
                return
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if url.path == "/stats":
                self.send_json(farm.stats(reset=query.get("reset") == "1"))
            elif url.path == "/tick":
                changed = farm.tick(int(query.get("items", "3")), float(query.get("fraction", "1")))
                self.send_json({"changed": changed, "ticks": farm.ticks})
            elif url.path == "/reset":
                farm.reset()
                self.send_json({"reset": True})
            elif url.path == "/feeds.json":
                self.send_json(farm.listing())
            elif url.path == "/opml.xml":
                self._send(200, farm.opml().encode(), "text/x-opml; charset=utf-8")
            elif url.path == "/shutdown":
                self.send_json({"stopping": True})
                stop.set()
            else:
                self._send(404, b"not found\n", "text/plain")

        do_POST = do_GET

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve_feed(self, spec: FeedSpec) -> None:
            rendered = farm.current(spec)  # one consistent version even if a tick lands now
            conditional = bool(
                self.headers.get("If-None-Match") or self.headers.get("If-Modified-Since")
            )
            fault_rng = random.Random(f"{options.seed}:{spec.index}:delay")
            if spec.fault == "hang":
                with farm.lock:
                    farm.counters.hung += 1
                farm.count("hung", conditional=conditional, gzipped=False, body_bytes=0)
                stop.wait(options.hang_s)  # bounded: then close without answering
                self.close_connection = True
                return
            if spec.fault == "slow":
                with farm.lock:
                    farm.counters.slow += 1
                stop.wait(fault_rng.uniform(*options.slow_delay_s))
            if spec.fault in ("error500", "error429"):
                status = 500 if spec.fault == "error500" else 429
                body = b"<html><body>upstream error</body></html>"
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", str(RETRY_AFTER_S))
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                farm.count(status, conditional=conditional, gzipped=False, body_bytes=len(body))
                return
            validators = []
            if spec.send_etag:
                validators.append(("ETag", rendered.etag))
            if spec.send_last_modified:
                validators.append(("Last-Modified", rendered.last_modified))
            if not_modified(self.headers, spec, rendered):
                self.send_response(304)
                for name, value in validators:
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")  # not sent on a real 304; harmless
                self.end_headers()
                farm.count(304, conditional=True, gzipped=False, body_bytes=0)
                return
            use_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
            body = rendered.gzipped if use_gzip else rendered.body
            self.send_response(200)
            self.send_header("Content-Type", rendered.content_type)
            for name, value in validators:
                self.send_header(name, value)
            if use_gzip:
                self.send_header("Content-Encoding", "gzip")
            self.send_header("Vary", "Accept-Encoding")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            farm.count(200, conditional=conditional, gzipped=use_gzip, body_bytes=len(body))

    return FarmHandler


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    defaults = FarmOptions()
    parser.add_argument("--feeds", type=int, default=defaults.feeds)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--epoch",
        type=int,
        default=defaults.epoch,
        help="Unix time of the newest item of each feed's first version",
    )
    parser.add_argument("--min-items", type=int, default=defaults.min_items)
    parser.add_argument("--max-items", type=int, default=defaults.max_items)
    parser.add_argument("--validators", choices=["all", "mixed"], default=defaults.validators)
    parser.add_argument(
        "--faults",
        choices=["realistic", "none"],
        default="realistic",
        help="realistic: 3%% slow, 1%% 500, 1%% 429, 0.5%% hanging, 2%% malformed",
    )
    parser.add_argument("--hang-s", type=float, default=defaults.hang_s)
    parser.add_argument("--host", default="127.0.0.1", type=check_loopback)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--max-lifetime", type=float, default=3600.0, help="seconds")
    parser.add_argument("--exit-on-stdin-eof", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    fault_free = {
        name: 0.0
        for name in (
            "slow_fraction",
            "error500_fraction",
            "error429_fraction",
            "hang_fraction",
            "malformed_fraction",
        )
    }
    options = FarmOptions(
        feeds=args.feeds,
        seed=args.seed,
        epoch=args.epoch,
        min_items=args.min_items,
        max_items=args.max_items,
        validators=args.validators,
        hang_s=args.hang_s,
        **(fault_free if args.faults == "none" else {}),  # type: ignore[arg-type]
    )
    stop = threading.Event()
    server = LoopbackServer((args.host, args.port), JsonHandler)
    base_url = f"http://{args.host}:{server.server_address[1]}"
    farm = Farm(options, base_url)
    server.RequestHandlerClass = make_handler(farm, stop)
    faults: dict[str, int] = {}
    for spec in farm.specs:
        if spec.fault:
            faults[spec.fault] = faults.get(spec.fault, 0) + 1
    banner = {
        "url": base_url,
        "feeds": len(farm.specs),
        "items": sum(s.items for s in farm.specs),
        "faults": faults,
        "bytes": sum(farm.current(s).body.__len__() for s in farm.specs),
        "gzip_bytes": sum(len(farm.current(s).gzipped) for s in farm.specs),
        "render_s": round(farm.render_s, 2),
    }
    serve_until_stopped(
        server,
        banner=banner,
        max_lifetime_s=args.max_lifetime,
        exit_on_stdin_eof=args.exit_on_stdin_eof,
        stop=stop,
    )


if __name__ == "__main__":
    main()
