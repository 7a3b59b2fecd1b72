"""What a query says about time: windows, windows relative to an event, "now" (English and Portuguese)."""

from datetime import datetime

import pytest

from backend.memory.time_hints import understand_time

NOW = datetime(2026, 12, 6, 15, 30)


@pytest.mark.parametrize(("query", "start", "end", "rest"), [
    ("Which book was I reading in May 2023?", datetime(2023, 5, 1), datetime(2023, 6, 1), "Which book was I reading ?"),
    ("Que livro eu estava lendo em maio de 2023?", datetime(2023, 5, 1), datetime(2023, 6, 1), "Que livro eu estava lendo ?"),
    ("what did we plan in Feb. 2024", datetime(2024, 2, 1), datetime(2024, 3, 1), "what did we plan"),
    ("Where was I working in 2023?", datetime(2023, 1, 1), datetime(2024, 1, 1), "Where was I working ?"),
    ("What did I cook last week?", datetime(2026, 11, 29), datetime(2026, 12, 6), "What did I cook ?"),
    ("o que eu comi ontem", datetime(2026, 12, 5), datetime(2026, 12, 6), "o que eu comi"),
])
def test_a_named_time_becomes_a_window_and_leaves_the_searched_text(query, start, end, rest):
    hint = understand_time(query, NOW)
    assert hint.window == (start, end)
    assert hint.rest == rest and not hint.latest and hint.anchor is None


def test_a_window_relative_to_an_event_names_the_event_and_the_days_around_it():
    hint = understand_time("What did I cook the week before my trip to Osaka?", NOW)
    assert (hint.rest, hint.anchor, hint.window) == ("What did I cook", "my trip to Osaka", None)
    assert hint.around(datetime(2024, 2, 13, 18, 5)) == (datetime(2024, 2, 6), datetime(2024, 2, 14))
    after = understand_time("O que aconteceu na semana depois da mudança para Berlim?", NOW)
    assert after.anchor == "mudança para Berlim" and after.around(datetime(2024, 2, 13)) == (datetime(2024, 2, 13), datetime(2024, 2, 21))


@pytest.mark.parametrize("query", ["Where do I work now?", "Onde eu trabalho atualmente?", "Which city do I currently live in?",
                                   "Onde eu moro hoje em dia?"])
def test_now_asks_for_the_newest_evidence(query):
    hint = understand_time(query, NOW)
    assert hint.latest and hint.window is None and hint.rest == query


@pytest.mark.parametrize("query", ["What may happen to my plants?", "march of the penguins", "How did the 2023 budget look?", ""])
def test_words_that_only_look_like_time_say_nothing(query):
    hint = understand_time(query, NOW)
    assert hint.empty and hint.rest == query
