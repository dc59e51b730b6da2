"""The skeleton's fast paths (issue #7) against slow, obvious versions of the same thing."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon import text

# Letters, signs that fold to nothing (ь, soft hyphen, a stress mark), spaces and punctuation,
# ASCII and Cyrillic, so that runs of removed bytes and spaces of every shape come up.
_ALPHABET = st.sampled_from("aбь \n,.'-\u00ad\u0301Ї&<\u200bß")


def _kept(spaced: bytes) -> list[int]:
    """Indexes of `spaced` that `_compact` keeps: no nulls, one space per run (its first)."""
    kept: list[int] = []
    for i, byte in enumerate(spaced):
        if byte == 0 or (byte == 0x20 and kept and spaced[kept[-1]] == 0x20):
            continue
        kept.append(i)
    return kept


@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_skeleton_offsets_match_a_byte_by_byte_compaction(raw: str) -> None:
    folded = text.fold(raw)
    spaced = folded._spaced
    kept = _kept(spaced)
    assert folded.skeleton == bytes(spaced[i] for i in kept).decode("latin-1")
    assert [folded._to_pre(pos) for pos in range(len(kept))] == kept


@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_skeleton_is_words_and_single_spaces(raw: str) -> None:
    # match.py finds a word's end with find(" "), relying on this
    skeleton = text.fold(raw).skeleton
    assert skeleton.startswith(" ")
    assert "  " not in skeleton
    assert set(skeleton) <= text.WORD_CHARS | {" "}


@given(st.text(alphabet=_ALPHABET, max_size=60))
def test_plain_cp1251_only_when_prepare_changes_nothing(raw: str) -> None:
    plain = text._plain_cp1251(raw)
    if plain is not None:
        assert text.prepare(raw) == (raw, None, None)
        assert plain == raw.encode("cp1251")


def test_plain_cp1251_declines_what_prepare_would_change() -> None:
    assert text._plain_cp1251("Бахмут і Соледар") == "Бахмут і Соледар".encode("cp1251")
    for raw in ("Бах\u00admут", "Бах\u200bмут", "<b>Бахмут</b>", "Бахму\u0301т", "Бахмутʼ"):
        assert text._plain_cp1251(raw) is None, raw
