"""Another library's exception message, quoted inside ours, stays on one short line."""

from __future__ import annotations

from attnkit.data.messages import one_line


def test_one_line_flattens_and_shortens() -> None:
    assert one_line(ValueError("a\n  b\tc")) == "a b c"
    assert one_line(KeyError()) == "KeyError"
    long = one_line(ValueError("x" * 1000))
    assert len(long) == 300 and long.endswith("...")
