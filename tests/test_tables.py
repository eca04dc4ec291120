import numpy as np
import pytest

from ace_utils.book.tables import dict_table, markdown_table, per_model, span


def test_span_writes_ranges_single_values_and_missing_ones():
    assert span([12, 14, 13], "{:.0f}") == "12-14"
    assert span([0.1, -0.2], "{:.2f}") == "-0.20 to 0.10"
    assert span([3.0, 3.0004], "{:.2f}") == "3.00"  # equal once formatted
    assert span([np.nan, 5, np.nan], "{:.0f}") == "5"
    assert span([np.nan, np.nan]) == "never"
    assert span(7, "{:.0f}") == "7"
    assert span([[1, 2], [3, 4]], "{:.0f}") == "1-4"  # any shape


def test_per_model_joins_one_entry_per_model():
    assert per_model([720, np.nan]) == "720 / –"
    assert per_model([0.03131, 0.0121], "{:.3f}") == "0.031 / 0.012"


def test_markdown_table_has_a_header_rule_and_refuses_ragged_rows():
    assert markdown_table(["a", "b"], [[1, "x"], [2.5, "y"]]).splitlines() == [
        "| a | b |", "|---|---|", "| 1 | x |", "| 2.5 | y |"]
    with pytest.raises(ValueError, match="a row has 1 cells, the header 2"):
        markdown_table(["a", "b"], [[1]])


def test_dict_table_formats_floats_and_leaves_missing_cells_empty():
    table = dict_table({"a": {"x": 0.5, "y": "n/a"}, "b": {"x": np.float64(2.0)}}, ["x", "y"], first="name")
    assert table.splitlines() == ["| name | x | y |", "|---|---|---|", "| a | 0.500 | n/a |", "| b | 2.000 |  |"]


def test_span_takes_generators_and_arrays_of_any_shape():
    assert span((x for x in [3.0, 1.0]), "{:.0f}") == "1-3"
    assert span(np.array([[0.5, 0.25], [0.75, 0.5]]), "{:.2f}") == "0.25-0.75"
    assert span(2.0, "{:.1f}") == "2.0"


def test_seed_span_reads_one_claims_range_from_a_committed_seed_table(tmp_path):
    from ace_utils.book import rerun
    from ace_utils.book.tables import seed_span

    runs = [rerun.RunResult(s, "ok", 1.0, {"c": {"holds": True, "value": [s, 10 * s], "expected": "", "asserted": True},
                                           "nan": {"holds": False, "value": None, "expected": "", "asserted": True}})
            for s in (1, 2, 3)]
    rerun.write_tables(runs, tmp_path, "ch", {})
    assert seed_span("ch", "c", tmp_path, fmt="{:.0f}") == "1-30"
    assert seed_span("ch", "c", tmp_path, pick=lambda v: v[0], scale=2.0, fmt="{:.0f}") == "2-6"
    assert seed_span("ch", "nan", tmp_path) == "n/a"
    assert seed_span("ch", "nan", tmp_path, missing="none") == "none"
    assert seed_span("ch", "absent", tmp_path) == "not recorded"
    assert seed_span("other", "c", tmp_path) == "not recorded"


def test_mean_se_min_max_and_rows_at_checkpoints():
    from ace_utils.book.tables import at_checkpoints, max_or_nan, mean_se, min_or_nan

    m, se = mean_se([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(m, [2.0, 2.0])
    np.testing.assert_allclose(se, [np.sqrt(2) / np.sqrt(2), 0.0])  # std (ddof 1) / sqrt(models)
    assert mean_se([[4.0], [5.0]])[1].tolist() == [0.0, 0.0]  # one model: no spread
    assert min_or_nan([3, 1, 2]) == 1 and max_or_nan([3, 1, 2]) == 3
    assert np.isnan(min_or_nan([])) and np.isnan(max_or_nan([]))
    curves = {"acc": np.array([[0.1, 0.2], [0.5, 0.6], [0.9, 1.0]])}
    text = at_checkpoints([0, 140, 1000], [0, 100, 200], curves, ["acc"])
    assert text.splitlines() == ["epoch     0: acc [0.1, 0.2]", "epoch   100: acc [0.5, 0.6]", "epoch   200: acc [0.9, 1.0]"]


def test_range_of_is_span_for_whole_numbers():
    from ace_utils.book.tables import range_of

    assert range_of([12.0, 21.0, 16.0]) == span([12.0, 21.0, 16.0], "{:.0f}") == "12-21"
    assert range_of([]) == "n/a" and range_of([0.25, 0.5], "{:.2f}") == span([0.25, 0.5], "{:.2f}")


def test_held_count_reads_a_committed_table(tmp_path):
    from ace_utils.book.seed_rule import RunResult
    from ace_utils.book.seed_tables import write_tables
    from ace_utils.book.tables import held_count

    runs = [RunResult(s, "ok", 1.0, {"c": {"holds": s < 7, "value": s, "expected": ">= 0", "kind": "finding"}})
            for s in range(10)]
    write_tables(runs, tmp_path, "ch", {})
    assert held_count("ch", "c", tmp_path) == "7/10 seeds"
    assert held_count("ch", "other", tmp_path) == held_count("none", "c", tmp_path) == "not recorded"
