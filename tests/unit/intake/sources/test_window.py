"""The one timestamp window the three sources share: its edges and its messages."""

import pytest

from webhook_server.intake.sources import STALE, SignatureError
from webhook_server.intake.sources.window import check_window

NOW = 1_800_000_000


@pytest.mark.parametrize("stamp", [NOW, NOW - 300, NOW + 300, NOW - 299.5])
def test_a_timestamp_within_the_tolerance_passes(stamp):
    check_window(stamp, NOW, 300)  # no exception


@pytest.mark.parametrize("stamp, message", [
    (NOW - 301, "timestamp too old (301 s > 300 s)"),
    (NOW - 301.9, "timestamp too old (301 s > 300 s)"),
    (NOW + 301, "timestamp too far in the future (301 s)"),
])
def test_a_timestamp_outside_says_which_way(stamp, message):
    with pytest.raises(SignatureError) as caught:
        check_window(stamp, NOW, 300)
    assert (str(caught.value), caught.value.reason) == (message, STALE)


@pytest.mark.parametrize("stamp", [NOW - 301, NOW + 301])
def test_a_source_may_word_the_refusal_itself(stamp):
    with pytest.raises(SignatureError) as caught:
        check_window(stamp, NOW, 300, message="{skew:.0f} s away (limit {limit} s)")
    assert (str(caught.value), caught.value.reason) == ("301 s away (limit 300 s)", STALE)
