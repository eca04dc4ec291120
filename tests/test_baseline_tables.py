"""Known answers for the finder-comparison helpers: the method's averaging of the random
controls and its smallest sufficient / necessary dimensions, and the book's tables and bars."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ace_utils.book.baseline_tables import (  # noqa: E402
    bar_plot, column_of, dimension_table, dimension_text, dimensions_text, mark, task_table)
from ace_utils.method.baselines import (  # noqa: E402
    average_random, dimension_or, first_dimension, sufficient_necessary)

E = torch.eye(3, dtype=torch.float64)


def test_average_random_folds_the_controls_into_their_mean_at_the_end():
    scores = {"random 1": {"keep": 0.2, "remove": 0.9}, "ACE": {"keep": 1.0, "remove": 0.1},
              "random 2": {"keep": 0.4, "remove": 0.7}}
    out = average_random(scores)
    assert list(out) == ["ACE", "random (mean)"]
    assert out["ACE"] == {"keep": 1.0, "remove": 0.1}
    assert out["random (mean)"] == pytest.approx({"keep": 0.3, "remove": 0.8})
    with pytest.raises(ValueError, match="random"):
        average_random({"ACE": {"keep": 1.0}})


def test_first_dimension_skips_r_zero():
    assert first_dimension(np.array([True, False, False, True, True])) == 3
    assert first_dimension(np.array([True, False])) is None


def test_sufficient_necessary_on_a_small_scan():
    keep = np.array([0.1, np.nan, 0.95, 0.9995, 1.0])
    remove = np.array([1.0, 0.5, 0.3, 0.05, 0.0])
    assert sufficient_necessary(keep, remove, base=1.0, p=20) == (3, 3)  # 0.9995 >= 1 - 1e-3; 0.05 <= 2/20
    assert sufficient_necessary(keep, remove, base=1.0, p=100) == (3, 4)
    assert sufficient_necessary(keep[:3], remove[:3], base=1.0, p=100) == (None, None)


def test_dimension_or_orders_never_last():
    assert dimension_or(4) == 4 and dimension_or(None) == 10**6 and dimension_or(None, never=7) == 7


def _runs():
    scores = [{"ACE": {"keep": 1.0, "remove": 0.2}, "random (mean)": {"keep": 0.3, "remove": 0.9}},
              {"ACE": {"keep": 0.8, "remove": 0.4}, "random (mean)": {"keep": 0.5, "remove": 0.7}}]
    bases = {"ACE": E[:, :1], "random (mean)": E[:, 1:2]}
    return [dict(scores=s, bases=bases) for s in scores]


def test_task_table_means_ranges_and_angles():
    lines = task_table(_runs(), ("keep", "remove")).splitlines()
    assert lines[0] == "| method | keep | remove | angle to ACE (deg) |"
    assert lines[2] == "| ACE | 0.900 (0.800-1.000) | 0.300 (0.200-0.400) | 0.0 |"
    assert lines[3] == "| random (mean) | 0.400 (0.300-0.500) | 0.800 (0.700-0.900) | ~90 (random) |"


def test_bar_plot_draws_one_bar_per_finder_and_mode():
    ax = bar_plot(_runs(), ("keep", "remove"), ("C0", "C1"), "accuracy", [(0.5, ":", "chance")])
    assert len(ax.patches) == 4
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [0.3, 0.4, 0.8, 0.9]
    assert ax.get_ylabel() == "accuracy" and [t.get_text() for t in ax.get_legend().get_texts()] == [
        "chance", "keep", "remove"]
    plt.close(ax.figure)


def test_dimension_texts():
    assert dimension_text(None, 52) == "> 52" and dimension_text(7, 52) == "7"
    runs = [{"sn": {"ACE": (3, None)}}, {"sn": {"ACE": (2, 2)}}]
    assert dimensions_text(runs, "ACE", 53) == "3 / > 53 and 2 / 2"


def test_dimension_table_caps_k_at_the_scan_and_angles_model_one():
    keep, remove = np.array([0.0, 0.5, 1.0]), np.array([1.0, 0.6, 0.1])
    run = dict(sn={"ACE": (2, None), "random (mean)": (None, None)}, dims={"r_energy": 5},
               curves={"ACE": (keep, remove), "random (mean)": (keep, remove)},
               bases={"ACE": E[:, :2], "random (mean)": E[:, 1:3]})
    lines = dimension_table([run], angle_r=2).splitlines()
    assert lines[0] == ("| method | model 1: r_suf / r_nec | model 1: keep / remove at k = 5 "
                        "| angle to ACE at r = 2 (deg), model 1 |")
    assert lines[2] == "| ACE | 2 / > 2 | 1.000 / 0.100 (k = 2) | 0.0 |"
    assert lines[3] == "| random (mean) | > 2 / > 2 | 1.000 / 0.100 (k = 2) |  |"


def test_mark_and_column_of():
    assert (mark(True), mark(False)) == ("✓", "✗")
    rows = {"Markov, model 1": {"a": 1}, "modular, model 1": {"a": 2}, "Markov, model 2": {"a": 3}}
    assert column_of(rows, "Markov", "a") == [1, 3]
