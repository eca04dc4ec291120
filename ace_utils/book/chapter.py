"""A chapter's setup in one call: its parameters validated, torch's thread count, its claims ledger.

Every chapter's first code cell after the ``parameters`` cell calls :func:`open_chapter`.
The call also glues the chapter's runtime, read from the committed timing records
(:func:`ace_utils.book.runtimes.chapter_runtime`), under the name ``runtime``: the opening
paragraph shows it with ``{glue:md}`runtime```. ``asserted_at`` names the settings the
chapter's claims are made for (its defaults; the seed is free): the ledger asserts the claims there and checks and reports them everywhere else
(:class:`ace_utils.book.claims.Claims`). ``tests/test_claim_policy.py`` checks that each
chapter's ``asserted_at`` holds at the defaults of its ``parameters`` cell.

The OpenMP wait policy is not set here: torch reads ``OMP_WAIT_POLICY`` when it loads, before
this call, so the book's commands set it in the environment (the docstring of the
``ace_utils`` package says why, and what to do elsewhere).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, MutableMapping

from ace_utils.book.claims import Claims
from ace_utils.book.params import validate
from ace_utils.book.runtimes import chapter_runtime

__all__ = ["open_chapter", "at_settings", "glue_markdown"]


def glue_markdown(name: str, text: str) -> None:
    """Make ``text`` (Markdown) the value of ``{glue:md}`name``` on the built page; nothing where
    myst-nb is not installed (Colab, which shows the page's roles unrendered anyway)."""
    try:
        from IPython.display import Markdown
        from myst_nb import glue
    except ImportError:
        return
    glue(name, Markdown(text), display=False)


def at_settings(namespace: Mapping[str, Any], asserted_at: Mapping[str, Any | Callable[[Any], bool]]) -> bool:
    """Whether every parameter named in ``asserted_at`` has its value there: equal to a given
    value, or accepted by a given predicate (e.g. ``lambda n: n >= 1200``)."""
    return all(want(namespace[name]) if callable(want) else namespace[name] == want for name, want in asserted_at.items())


def open_chapter(chapter: str, spec: Mapping[str, Any], namespace: MutableMapping[str, Any], *,
                 asserted_at: Mapping[str, Any | Callable[[Any], bool]],
                 threads: int | None = 1) -> tuple[dict[str, Any], Claims]:
    """Validate ``namespace``'s parameters against ``spec`` (:func:`ace_utils.book.params.validate`:
    one message naming the parameter and its allowed values), set torch to ``threads`` threads
    (``None``: unchanged), glue the chapter's runtime (``runtime``) and open the chapter's claims
    ledger, strict where :func:`at_settings` holds. Returns ``(parameters, claims)``."""
    params = validate(spec, namespace)
    unknown = sorted(set(asserted_at) - set(spec))
    if unknown:
        raise ValueError(f"asserted_at names parameters the spec does not have: {unknown}")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    glue_markdown("runtime", chapter_runtime(chapter))
    return params, Claims(chapter, params, strict=at_settings(namespace, asserted_at))
