"""DataWarning: a repaired flaw in the data, issued by `warn` at its finder, printed by `reported_warnings`."""

from __future__ import annotations

import subprocess
import sys
import warnings

import pytest

from attnkit.data.warning import DataWarning, reported_warnings, warn


def test_warn_issues_a_data_warning_at_the_caller() -> None:
    with pytest.warns(DataWarning, match="skipped 2 pairs") as record:
        warn("skipped 2 pairs")
    assert record[0].filename == __file__
    assert issubclass(DataWarning, UserWarning)


def test_data_warnings_can_be_told_apart() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("a data flaw")
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert [w.category for w in caught] == [DataWarning, UserWarning]


def test_reported_warnings_prints_and_collects_data_warnings_only(capsys) -> None:
    with pytest.warns(UserWarning, match="something else"), reported_warnings() as seen:
        warn("skipped 1 pair(s)")
        warn("skipped 1 pair(s)")  # the same flaw found twice is reported twice
        warnings.warn("something else", UserWarning, stacklevel=1)
    assert seen == ["skipped 1 pair(s)", "skipped 1 pair(s)"]
    assert capsys.readouterr().err == "warning: skipped 1 pair(s)\n" * 2


def test_reported_warnings_reports_even_when_the_block_fails(capsys) -> None:
    with pytest.raises(RuntimeError), reported_warnings() as seen:
        warn("truncated 3 sources")
        raise RuntimeError("boom")
    assert seen == ["truncated 3 sources"]
    assert "warning: truncated 3 sources" in capsys.readouterr().err


def test_reported_warnings_passes_other_warnings_on_under_the_default_filters(tmp_path) -> None:
    """A library's UserWarning inside the block comes out once afterwards (it once looped for ever, re-recorded)."""
    script = tmp_path / "other.py"
    script.write_text(
        "import warnings\n"
        "from attnkit.data.warning import reported_warnings, warn\n"
        "with reported_warnings() as seen:\n"
        "    warn('a data flaw')\n"
        "    warnings.warn('a library warning')\n"
        "print(seen)\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "['a data flaw']\n"
    assert proc.stderr.count("UserWarning: a library warning") == 1 and "warning: a data flaw" in proc.stderr
