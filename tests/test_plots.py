"""The shared figure helpers draw what they say (matplotlib's Agg backend, no display)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ace_utils.book.plots import eigenvalue_clock, heatmap, unit_circle  # noqa: E402


def test_unit_circle_draws_a_radius_one_circle_with_equal_aspect():
    fig, ax = plt.subplots()
    unit_circle(ax, xlim=(-0.1, 1.05), ylim=(-0.5, 0.5), ylabel=None)
    (line,) = ax.lines
    x, y = line.get_data()
    np.testing.assert_allclose(np.hypot(x, y), 1.0, atol=1e-12)
    assert ax.get_aspect() == 1.0 and ax.get_xlim() == (-0.1, 1.05) and ax.get_ylabel() == ""
    assert ax.get_xlabel() == "Re λ"
    plt.close(fig)


def test_eigenvalue_clock_counts_and_colours_the_eigenvalues_near_the_circle():
    fig, ax = plt.subplots()
    eig = np.array([np.exp(1j * 0.3), 0.99 * np.exp(-1j * 0.3), 0.5 + 0j, np.nan + 0j])
    assert eigenvalue_clock(ax, eig, p=53, title="t") == 2  # 0.01 < sin(pi/53) = 0.059; NaN ignored
    far, near = ax.collections
    assert len(far.get_offsets()) == 1 and len(near.get_offsets()) == 2
    plt.close(fig)


def test_heatmap_writes_every_entry():
    fig, ax = plt.subplots()
    M = np.array([[1.0, -0.001], [0.25, 1.0]])
    heatmap(ax, M, "m", ["a", "b"])
    assert [t.get_text() for t in ax.texts] == ["1.00", "0.00", "0.25", "1.00"]
    plt.close(fig)
