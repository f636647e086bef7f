"""Normalisation: what two items must share to be exact duplicates."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guards.validation.normalize import (
    exact_fingerprint,
    is_tracking_param,
    normalize,
    prepare,
    strip_tracking,
)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hello World", "hello world"),
        ("  hello \t\n world  ", "hello world"),
        ("ＡＩ startup", "ai startup"),  # full-width letters (NFKC)
        ("Cafe\u0301", "café"),  # combining accent composes
        ("ﬁnance", "finance"),  # ligature
        ("STRASSE", "straße"),  # case-folding, not just lower()
        ("wild\u200bfire", "wildfire"),  # zero-width space
        ("\ufeffnews", "news"),  # byte-order mark
        ("word\u00a0word", "word word"),  # no-break space
    ],
)
def test_trivially_different_texts_normalise_alike(a, b):
    assert normalize(a) == normalize(b)
    assert exact_fingerprint(normalize(a)) == exact_fingerprint(normalize(b))


def test_different_texts_keep_different_fingerprints():
    assert exact_fingerprint(normalize("Order #1 shipped")) != exact_fingerprint(
        normalize("Order #2 shipped")
    )


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("https://x.example/a?utm_source=tw&utm_medium=social", "https://x.example/a"),
        ("https://x.example/a?id=7&fbclid=IwAR0", "https://x.example/a?id=7"),
        ("https://x.example/a?gclid=1&page=2&UTM_Campaign=s", "https://x.example/a?page=2"),
        ("https://x.example/a?b=2&a=1&mc_cid=x#frag", "https://x.example/a?b=2&a=1#frag"),
        ("https://x.example/a?q=a%20b&ref_src=twsrc", "https://x.example/a?q=a%20b"),
        ("https://x.example/a", "https://x.example/a"),
        ("https://x.example/a?", "https://x.example/a"),
    ],
)
def test_tracking_parameters_are_stripped_and_others_kept_in_order(url, clean):
    assert strip_tracking(url) == clean


def test_tracking_parameters_go_inside_text_and_trailing_punctuation_stays():
    text = "Read it (https://news.example/x?utm_source=rss&id=3). Now!"
    assert normalize(text) == "read it (https://news.example/x?id=3). now!"
    assert normalize("see https://a.example/p?utm_source=x") == normalize(
        "See https://a.example/p?fbclid=y"
    )


def test_a_parameter_merely_containing_utm_is_kept():
    assert not is_tracking_param("autm_x")
    assert is_tracking_param("utm_term")
    assert strip_tracking("https://a.example/?source=1") == "https://a.example/?source=1"


@given(st.text(max_size=200))
def test_normalisation_is_idempotent(text):
    once = normalize(text)
    assert normalize(once) == once


@given(st.text(max_size=200))
def test_normalised_text_has_no_edge_or_double_spaces(text):
    out = normalize(text)
    assert out == out.strip()
    assert "  " not in out


def test_look_alike_letters_swapped_into_a_latin_text_are_the_same_text():
    """audit21 guards F6: every Latin "a" replaced by the Cyrillic "а" (U+0430) passed
    both duplicate checks."""
    base = "Quarterly report: revenue grew 12% to $4.1 million in Q3, Acme says"
    assert normalize(base.replace("a", "\u0430")) == normalize(base)
    assert normalize(base.replace("o", "\u03bf").replace("A", "\u0410")) == normalize(base)
    assert prepare("\u0420ython 3.12 r\u0435leased") == "Python 3.12 released"  # the sketch's
    # a Russian or Greek text keeps its letters (it is not a look-alike of anything), a
    # link or a brand in it too (audit22 upgrade 1: its key changed at the upgrade)
    assert normalize("Привет, мир") == "привет, мир"
    assert normalize("Ελλάδα") == "ελλάδα"
    post = "Новый спутник запущен: https://example.com/news/123 (Acme)"
    assert normalize(post) == post.casefold()
    # while one Latin word spoofed in it is read as Latin
    assert normalize("Новый спутник от Аcme") == normalize("Новый спутник от Acme")


@given(st.text(alphabet="aBcXyz ВвНнМмКкТтАаОоРрСсΑαΒβΕεΗηΚκΝνΟοΡρΙι", max_size=30))
def test_a_text_in_capitals_is_the_same_text_whatever_its_scripts(text: str) -> None:
    """review22 M1: В was mapped to B but в left alone, so a Russian text with a Latin
    word (a link, a brand) in capitals was no longer the same text as in small letters."""
    assert normalize(text.upper()) == normalize(text.lower()) == normalize(text)
