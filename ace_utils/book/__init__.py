"""The book's own tooling, apart from the method.

``params`` (validated papermill parameters), ``claims`` (a chapter's claims ledger and the rule
for which claims are asserted), ``chapter`` (a chapter's setup in one call), ``tables`` (ranges
and Markdown tables), ``plots`` (figures several chapters draw), ``cache`` (the
integrity-checked cache of trained models), ``cluster`` and ``processes`` (independent runs as
Dask tasks), ``rerun`` (a chapter over seeds, tabulated) and ``machine`` (what the CPU is, for
the records).
"""
