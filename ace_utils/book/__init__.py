"""The book's own tooling, apart from the method.

``params`` (validated papermill parameters), ``claims`` (a chapter's claims ledger, the kinds of
claim and the rule for which claims are asserted), ``ledger`` (the claims as a chapter shows
them), ``seed_rule`` (the seed tables' per-seed rows and the 9-of-10 rule that reads them),
``seed_tables`` (the committed seed tables and whether they are in step with the
code), ``chapter`` (a chapter's setup in one call), ``tables`` (ranges
and Markdown tables), ``baseline_tables`` (subspace finders side by side), ``plots``
(figures several chapters draw), ``cache`` (the
integrity-checked cache of trained models), ``cluster`` and ``processes`` (independent runs as
Dask tasks), ``rerun`` (a chapter over seeds, tabulated) and ``machine`` (what the CPU is, the
machine in one line and the git commit, for the records).
"""
