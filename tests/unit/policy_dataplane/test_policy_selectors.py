"""Calico selector language: every operator, absent-label rules, canonical form, ids, and property tests."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_dataplane.policy.selectors import (
    NAMESPACE_LABEL,
    SelectorError,
    index_atoms,
    parse,
    prefixed,
    required_pairs,
)

LABELS = {"app": "web", "tier": "frontend", "env": "prod-eu", "version": "v1.2"}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", True),
        ("all()", True),
        ('app == "web"', True),
        ("app == 'web'", True),
        ('app == "db"', False),
        ('app != "db"', True),
        ('missing != "x"', True),  # != matches an absent label
        ('missing == "x"', False),
        ('app in {"web", "db"}', True),
        ('app in {"db"}', False),
        ('app not in {"db"}', True),
        ('missing not in {"x"}', True),  # not in matches an absent label
        ('missing in {"x"}', False),
        ("has(app)", True),
        ("has(missing)", False),
        ("!has(missing)", True),
        ('!(app == "web")', False),
        ('app == "web" && tier == "frontend"', True),
        ('app == "web" && tier == "backend"', False),
        ('app == "db" || tier == "frontend"', True),
        ('app == "db" || tier == "backend" && has(app)', False),
        ('(app == "db" || tier == "frontend") && has(app)', True),
        ('env contains "eu"', True),
        ('env starts with "prod"', True),
        ('env ends with "eu"', True),
        ('env ends with "us"', False),
        ('missing contains ""', False),  # string operators need the label
        ('version == "v1.2"', True),
        ("global()", True),  # no namespace label here
    ],
)
def test_operators(text: str, expected: bool) -> None:
    assert parse(text).matches(LABELS) is expected


def test_global_matches_only_objects_without_namespace() -> None:
    assert parse("global()").matches({})
    assert not parse("global()").matches({NAMESPACE_LABEL: "dev"})


def test_precedence_not_binds_tighter_than_and_tighter_than_or() -> None:
    # a || b && c  ==  a || (b && c)
    assert parse('app == "x" || has(app) && has(missing)').canonical == parse(
        'app == "x" || (has(app) && has(missing))'
    ).canonical
    assert parse('!has(a) && has(b)').canonical == "(!has(a) && has(b))"


@pytest.mark.parametrize(
    "a, b",
    [
        ('a == "1" && b == "2"', 'b == "2" && a == "1"'),
        ('a == "1" || b == "2"', "b == '2' || a == '1'"),
        ('a in {"x", "y"}', 'a in {"y", "x", "x"}'),
        ('!(a == "1")', 'a != "1"'),
        ('!(a in {"1"})', 'a not in {"1"}'),
        ("!!has(a)", "has(a)"),
        ('a == "1" && (b == "2" && c == "3")', '(a == "1" && b == "2") && c == "3"'),
        ('a == "1" && all()', 'a == "1"'),
        ('a == "1" && a == "1"', 'a == "1"'),
        ("", "all()"),
    ],
)
def test_equal_selectors_share_canonical_form_and_id(a: str, b: str) -> None:
    assert parse(a).canonical == parse(b).canonical
    assert parse(a).id == parse(b).id
    assert parse(a) == parse(b)


def test_different_selectors_have_different_ids() -> None:
    assert parse('a == "1"').id != parse('a == "2"').id
    assert len(parse('a == "1"').id) == 16


@pytest.mark.parametrize(
    "bad",
    ['app == "web', "app ==", "app", "&& has(a)", "has(a", 'a in {"x"', "(has(a)", "has(a))", 'a = "x"', "a ~ b",
     'app == "x" has(b)', "in {}", 'a not "x"'],
)
def test_bad_selectors_raise_with_position(bad: str) -> None:
    with pytest.raises(SelectorError) as err:
        parse(bad)
    assert bad in str(err.value) or repr(bad) in str(err.value)


def test_value_quotes() -> None:
    sel = parse("""a == 'say "hi"'""")
    assert sel.matches({"a": 'say "hi"'})
    assert parse(sel.canonical) == sel


def test_prefixed_rewrites_every_key() -> None:
    sel = prefixed(parse('env == "prod" && has(team) && !(tier in {"a"})'), "pcns.")
    assert sel.matches({"pcns.env": "prod", "pcns.team": "x"})
    assert not sel.matches({"env": "prod", "team": "x"})
    assert prefixed(parse("all()"), "pcns.").canonical == "all()"


def test_index_atoms_and_required_pairs() -> None:
    sel = parse('app == "web" && has(x) && env in {"a", "b"} && name contains "q" || global()')
    values, presence, anychange = index_atoms(sel)
    assert ("app", "web") in values and ("env", "a") in values and ("env", "b") in values
    assert presence == {"x", NAMESPACE_LABEL}
    assert anychange == {"name"}
    assert required_pairs(parse('app == "web" && has(x) && b == "c"')) == {("app", "web"), ("b", "c")}
    assert required_pairs(parse('app == "web" || b == "c"')) == frozenset()


# --- property tests ------------------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c", "app", "x.io/k", "pcns.env"])
VALUES = st.sampled_from(["", "1", "web", "x y", "prod"])


def _quote(v: str) -> str:
    return f'"{v}"'


def _selectors() -> st.SearchStrategy[str]:
    leaf = st.one_of(
        st.builds(lambda k, v: f"{k} == {_quote(v)}", KEYS, VALUES),
        st.builds(lambda k, v: f"{k} != {_quote(v)}", KEYS, VALUES),
        st.builds(lambda k, vs: f"{k} in {{{', '.join(map(_quote, vs))}}}", KEYS, st.lists(VALUES, max_size=3)),
        st.builds(lambda k, vs: f"{k} not in {{{', '.join(map(_quote, vs))}}}", KEYS, st.lists(VALUES, max_size=3)),
        st.builds(lambda k: f"has({k})", KEYS),
        st.builds(lambda k, v, op: f"{k} {op} {_quote(v)}", KEYS, VALUES,
                  st.sampled_from(["contains", "starts with", "ends with"])),
        st.just("all()"),
        st.just("global()"),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda e: f"!({e})", inner),
            st.builds(lambda a, b: f"({a}) && ({b})", inner, inner),
            st.builds(lambda a, b: f"{a} || {b}", inner, inner),
        ),
        max_leaves=8,
    )


LABEL_SETS = st.dictionaries(KEYS, VALUES, max_size=4)


@settings(max_examples=300, deadline=None)
@given(_selectors(), LABEL_SETS)
def test_canonical_round_trip_keeps_meaning(text: str, labels: dict[str, str]) -> None:
    sel = parse(text)
    again = parse(sel.canonical)
    assert again.canonical == sel.canonical
    assert again.id == sel.id
    assert again.matches(labels) == sel.matches(labels)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='ab=!&|(){}," has()allglobalinnotcontainsstartswith.-/', max_size=40))
def test_parser_never_crashes_on_garbage(text: str) -> None:
    try:
        sel = parse(text)
    except SelectorError:
        return
    assert parse(sel.canonical) == sel
