"""Figures that several chapters draw: eigenvalues in the complex plane, annotated pairwise matrices.

Each helper draws on a given matplotlib ``Axes`` and returns what a caller may need next (the
image for a colour bar); the chapters lay out the figure and write the caption.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["unit_circle", "eigenvalue_clock", "heatmap"]


def unit_circle(ax, *, xlim: tuple[float, float] = (-1.1, 1.1), ylim: tuple[float, float] = (-1.1, 1.1),
                color: str = "0.75", lw: float = 0.8, xlabel: str | None = "Re λ",
                ylabel: str | None = "Im λ") -> None:
    """The unit circle on ``ax`` (the reference for eigenvalues of a fitted operator), equal
    aspect, the given limits, and the real and imaginary axes labelled (``None``: no label)."""
    th = np.linspace(0, 2 * np.pi, 300)
    ax.plot(np.cos(th), np.sin(th), color=color, lw=lw)
    ax.set_aspect("equal")
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)


def eigenvalue_clock(ax, eigenvalues: np.ndarray, p: int, title: str, fontsize: float = 8) -> int:
    """Eigenvalues (complex, NaN entries ignored) on the unit circle: blue where within
    ``sin(pi / p)`` of it (what counts as a rotational mode), grey elsewhere. Returns how many
    are near the circle."""
    eig = np.asarray(eigenvalues)
    eig = eig[~np.isnan(eig)]
    near = np.abs(np.abs(eig) - 1) <= np.sin(np.pi / p)
    unit_circle(ax, xlim=(-1.25, 1.25), ylim=(-1.25, 1.25), xlabel=None, ylabel=None)
    ax.scatter(eig[~near].real, eig[~near].imag, s=10, color="0.6")
    ax.scatter(eig[near].real, eig[near].imag, s=12, color="C0")
    ax.set_xticks([-1, 0, 1])
    ax.set_yticks([-1, 0, 1])
    ax.set_title(title, fontsize=fontsize)
    return int(near.sum())


def heatmap(ax, M: np.ndarray, title: str, labels: Sequence[str], vmin: float = 0.0, vmax: float = 1.0,
            fmt: str = "{:.2f}"):
    """An (n, n) matrix as an annotated heatmap (colour scale ``vmin``..``vmax``, each entry
    written with ``fmt``), rows and columns labelled. Returns the image (for a colour bar)."""
    M = np.asarray(M)
    im = ax.imshow(M, vmin=vmin, vmax=vmax, cmap="Blues")
    for i in range(len(M)):
        for j in range(len(M)):
            ax.text(j, i, fmt.format(M[i, j]).replace("-0.00", "0.00"), ha="center", va="center", fontsize=7,
                    color="white" if M[i, j] > vmin + 0.6 * (vmax - vmin) else "black")
    ax.set_xticks(range(len(M)), labels)
    ax.set_yticks(range(len(M)), labels)
    ax.set_title(title, fontsize=10)
    return im
