from __future__ import annotations

from click.testing import CliRunner

from daemon.cli import main
from daemon.gazetteer import alias_line, load_gazetteer, suggest


def test_any_spelling_finds_the_town_and_its_names() -> None:
    places = load_gazetteer()
    for query in ("Bakhmut", "Артемовск", "artemivsk", "BAKHM"):
        assert suggest(places, query)[0].name == "Bakhmut", query
    line = alias_line(suggest(places, "Bakhmut")[0])
    assert line.startswith("Bakhmut: [Артемовск, Артемівськ,")
    assert "Artyomovsk" in line and "bafumuto" not in line
    assert "Бахмут" not in line  # already matched through transliteration: not proposed


def test_cli_suggests_and_reports_unknown_places() -> None:
    result = CliRunner().invoke(main, ["gazetteer", "Kramatorsk"])
    assert result.exit_code == 0 and "Kramatorsk: [Краматор," in result.output
    result = CliRunner().invoke(main, ["gazetteer", "Soledar"])
    assert result.exit_code == 1 and "not in the bundled gazetteer" in result.output
