"""make bench's rule for rounds that do not count (bench/bad_rounds.py)."""

import pytest

from bench import bad_rounds as rounds


def test_every_round_counts_when_none_failed_or_stalled():
    judged = rounds.judge([300, 330, 270], [1000, 1100, 900], [False, False, False])
    assert [r.left_out for r in judged] == [None, None, None]
    assert [r.ratio for r in judged] == pytest.approx([0.3, 0.3, 0.3])
    assert rounds.median_ratio(judged) == pytest.approx(0.3)


def test_a_round_with_errors_is_marked_and_left_out_of_the_median():
    judged = rounds.judge([300, 900, 280], [1000, 1000, 1000], [False, True, False])
    assert [r.left_out for r in judged] == [None, "errors", None]
    assert rounds.median_ratio(judged) == pytest.approx(0.29)
    assert "[0.90 left out: errors]" in rounds.text(judged)


def test_a_round_whose_reference_stalled_is_marked_and_left_out():
    # The round that printed 6706: its reference managed 1 call a second.
    judged = rounds.judge([300, 6706, 280], [1000, 1, 1100], [False, False, False])
    assert judged[1].left_out == "reference 1/s, median 1000/s"
    assert judged[0].left_out is None and judged[2].left_out is None
    assert rounds.median_ratio(judged) == pytest.approx((0.3 + 280 / 1100) / 2)


def test_a_reference_at_half_its_median_still_counts_and_just_below_does_not():
    judged = rounds.judge([100] * 5, [500, 1000, 1000, 1000, 499], [False] * 5)
    assert [r.left_out is None for r in judged] == [True, True, True, True, False]


def test_no_round_counts_gives_no_ratio():
    judged = rounds.judge([100, 100], [0, 1000], [False, True])
    assert [r.left_out is not None for r in judged] == [True, True]
    assert rounds.median_ratio(judged) is None


def test_the_text_lists_rounds_in_order_and_is_empty_for_one_good_round():
    judged = rounds.judge([3, 1, 2], [10, 10, 10], [False] * 3)
    assert rounds.text(judged) == " (0.10 0.20 0.30)"
    assert rounds.text(rounds.judge([1], [10], [False])) == ""
