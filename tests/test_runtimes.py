"""The runtime line of a page opening, from the committed timing records (the openings are checked
in tests/test_chapter_frame.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ace_utils.book.runtimes import chapter_runtime, chapter_seconds, duration_range



@pytest.mark.parametrize("seconds, text", [
    ([442.5, 594.5], "7.5-10 minutes"),   # minutes from 90 s on, to the half minute
    ([38.1, 45.3], "40-45 s"),            # seconds below, to 5 s
    ([2.0], "about 5 s"),                 # never "0 s"
    ([100.0, 104.0], "about 1.5 minutes"),  # a range that rounds to one figure
    ([60.0, 120.0], "1-2 minutes"),
])
def test_duration_range_rounds_to_readable_figures(seconds, text):
    assert duration_range(seconds) == text


def record(tmp_path: Path, name: str, rows: dict[str, float], precision: str = "fp32") -> None:
    rows = [{"step": step, "seconds": sec, "load": "", "result": "ok"} for step, sec in rows.items()]
    (tmp_path / f"{name}.json").write_text(json.dumps({"training precision": precision, "rows": rows}))


def test_runtime_reads_cold_and_warm_rows_of_float32_records_only(tmp_path):
    record(tmp_path, "a", {"ch: in make test's book build (cold model cache)": 300.0, "ch: papermill, warm model cache": 20.0})
    record(tmp_path, "b", {"ch: in make test's book build (cold model cache)": 420.0,
                           "other: in make test's book build (cold model cache)": 5.0,
                           "ch: papermill, cold model cache": 400.0})  # alone: not the test run's time
    record(tmp_path, "c", {"ch: papermill, cold model cache": 9999.0}, precision="bf16")  # an outdated chapter
    record(tmp_path, "d", {"ch: in make test's book build (unit tests' models cached)": 1.0})  # not cold
    assert chapter_seconds("ch", tmp_path) == ([300.0, 420.0], [20.0])
    assert chapter_runtime("ch", tmp_path) == ("5-7 minutes on 2 CPU cores from an empty model cache "
                                               "(in the book's test run, two chapters at a time), "
                                               "about 20 s with its models cached; 2 CPU kinds measured")
    assert chapter_runtime("new", tmp_path).startswith("not measured yet")

