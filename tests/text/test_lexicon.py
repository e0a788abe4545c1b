"""The lexicon: tokens, negation, phrases, rules, its file, and the ``lexicon`` feature."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradeloom.plugins.component import BuildContext, ParamError
from tradeloom.plugins.features.lexicon import LexiconParams, LexiconScorer, build_lexicon
from tradeloom.text.documents import Documents
from tradeloom.text.lexicon import LexiconError, read_lexicon, tokenise


def lexicon_file(tmp_path: Path, text: str, name: str = "words.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


WORDS = "term,weight\ngood,1\nbad,-1\nrate cut,2\ncut,-0.5\nBTC,0.25\n"


def test_tokens_are_case_folded_words_with_inner_apostrophes() -> None:
    assert tokenise("BTC didn\u2019t RALLY; rate-cut, 3.5% _x_") == [
        "btc",
        "didn't",
        "rally",
        "rate",
        "cut",
        "3",
        "5",
        "x",
    ]
    assert tokenise("BTC Rally", case_sensitive=True) == ["BTC", "Rally"]


@pytest.mark.parametrize(
    ("text", "score", "hits"),
    [
        ("good good bad", 1.0, 3.0),
        ("not good", -1.0, 1.0),
        ("never really that good", -1.0, 1.0),  # 'good' is the 3rd word after 'never'
        ("it is not so very much good", 1.0, 1.0),  # 4th word after "not": not flipped
        ("doesn't look bad", 1.0, 1.0),  # a word ending in n't negates
        ("a rate cut", 2.0, 1.0),  # the longest term wins and uses its words up
        ("a cut", -0.5, 1.0),
        ("btc is GOOD", 1.25, 2.0),
        ("nothing here", 0.0, 0.0),
    ],
)
def test_a_text_scores_the_sum_of_its_terms_signed_by_negation(
    tmp_path: Path, text: str, score: float, hits: float
) -> None:
    lexicon = read_lexicon(lexicon_file(tmp_path, WORDS))
    assert lexicon.score(text) == (score, hits)


def test_the_rules_mean_and_normalised(tmp_path: Path) -> None:
    path = lexicon_file(tmp_path, WORDS)
    assert read_lexicon(path, rule="mean").score("good good bad") == (1 / 3, 3.0)
    assert read_lexicon(path, rule="mean").score("nothing") == (0.0, 0.0)
    assert read_lexicon(path, rule="normalised").score("good") == (1 / math.sqrt(16), 1.0)


def test_a_yaml_lexicon_declares_its_negators(tmp_path: Path) -> None:
    path = lexicon_file(tmp_path, "terms: {good: 1, bad: -1}\nnegators: [sans]\n", "words.yaml")
    lexicon = read_lexicon(path)
    assert lexicon.score("sans good") == (-1.0, 1.0)
    assert lexicon.score("not good") == (1.0, 1.0)  # 'not' is not declared
    assert read_lexicon(path, negators=("not",)).score("not good") == (-1.0, 1.0)
    plain = lexicon_file(tmp_path, "good: 1\n", "plain.yaml")
    assert read_lexicon(plain).score("not good") == (-1.0, 1.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("word,value\ngood,1\n", "expected columns term and weight; found ['word', 'value']"),
        ("term,weight\ngood,one\n", ":2: weight of 'good' must be a number; was 'one'"),
        ("term,weight\ngood,1\nGood,2\n", ":3: term 'Good' is given twice; keep one"),
        ("term,weight\n--,1\n", ":2: term '--' has no word"),
        ("term,weight\nnot,1\n", ": 'not' is a negator and a term; keep it in one"),
        ("term,weight\n", ": no terms"),
    ],
)
def test_a_bad_lexicon_file_is_one_line_naming_it(tmp_path: Path, text: str, message: str) -> None:
    path = lexicon_file(tmp_path, text)
    with pytest.raises(LexiconError) as caught:
        read_lexicon(path)
    assert str(caught.value).startswith(str(path))
    assert str(caught.value).endswith(message)


def documents(*texts: str, titles: tuple[str, ...] | None = None) -> Documents:
    n = len(texts)
    return Documents(
        ids=tuple(f"d{i}" for i in range(n)),
        stamped_ns=np.arange(n, dtype=np.int64),
        visible_ns=np.arange(n, dtype=np.int64),
        texts=texts,
        titles=titles or ("",) * n,
        sources=("",) * n,
        symbols=((),) * n,
    )


def test_the_feature_scores_title_and_text(tmp_path: Path) -> None:
    lexicon_file(tmp_path, WORDS)
    ctx = BuildContext("s", tmp_path, 0)
    feature = build_lexicon(
        LexiconParams.model_validate({"of": "news", "lexicon": "words.csv"}), ctx
    )
    assert feature.columns() == ["lexicon_score", "lexicon_hits", "lexicon_count"]
    assert feature.cutoff is None
    scorer = feature.scorer
    assert isinstance(scorer, LexiconScorer)
    answer = scorer.score(documents("good", "bad", titles=("bad news", "")))
    assert answer.values.tolist() == [[0.0, 2.0], [-1.0, 1.0]]
    assert answer.reasons == ("", "")
    assert scorer.identity.startswith("lexicon:")
    untitled = build_lexicon(
        LexiconParams.model_validate(
            {"of": "news", "lexicon": "words.csv", "title": False, "name": "tone"}
        ),
        ctx,
    )
    assert untitled.columns() == ["tone_score", "tone_hits", "tone_count"]
    assert untitled.scorer.score(documents("good", titles=("bad",))).values.tolist() == [[1.0, 1.0]]
    assert untitled.scorer.identity != scorer.identity


def test_a_missing_or_bad_lexicon_is_refused_at_its_key(tmp_path: Path) -> None:
    ctx = BuildContext("s", tmp_path, 0)
    with pytest.raises(ParamError, match=r"file not found: .*nowhere\.csv$"):
        build_lexicon(LexiconParams.model_validate({"of": "n", "lexicon": "nowhere.csv"}), ctx)
    lexicon_file(tmp_path, "term,weight\ngood,x\n")
    with pytest.raises(ParamError, match=r"weight of 'good' must be a number; was 'x'$"):
        build_lexicon(LexiconParams.model_validate({"of": "n", "lexicon": "words.csv"}), ctx)


@pytest.mark.parametrize("rule", ["sum", "mean", "normalised"])
def test_all_texts_at_once_score_as_one_at_a_time_bit_for_bit(tmp_path: Path, rule: str) -> None:
    words = ["good", "bad", "fine", "not", "never", "isn't", "x", "y", "z", "Good", "BAD"]
    path = lexicon_file(tmp_path, "term,weight\ngood,1.25\nbad,-0.7\nfine,0.1\n")
    lexicon = read_lexicon(path, rule=rule, negation_window=2)  # type: ignore[arg-type]
    rng = np.random.default_rng(5)
    texts = [" ".join(rng.choice(words, rng.integers(0, 30))) for _ in range(500)]
    at_once = lexicon.score_many(texts)
    one_by_one = np.array([lexicon._score_phrases(t) for t in texts])
    assert np.array_equal(at_once, one_by_one)
    assert at_once[:, 1].sum() > 500


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.sampled_from(
                [*"ab Z_9'\u2019\n-.,\t", "é", "ß", "İ", "ǅ", "٣", "²", "\u0301", "日", "😀"]
            ),
            max_size=14,
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_words_found_at_once_are_the_patterns(texts: list[str]) -> None:
    from tradeloom.text.lexicon import _pattern_tokens, _tokens

    joined = "\n".join(t.replace("\n", " ") for t in texts).replace("\u2019", "'")
    for text in (joined, joined.casefold()):
        ids, owner, words = _tokens(text)
        want_ids, want_owner, want_words = _pattern_tokens(text)
        assert [words[i] for i in ids] == [want_words[i] for i in want_ids]
        assert owner.tolist() == want_owner.tolist()
