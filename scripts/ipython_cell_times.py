"""IPython startup file: append one JSON line per executed cell (its source, seconds, whether
it raised, and the kernel it ran in) to ``$ACE_CELL_TIMES``. ``scripts/test.sh`` links it into
the kernels' startup folder while it runs the chapters and builds the book;
``scripts/cell_times.py`` reports the log, and counts each page's executions by its kernels
(one kernel runs one page). Leaves no names behind."""


def _ace_log_cell_times() -> None:
    import json
    import os
    import time

    path = os.environ.get("ACE_CELL_TIMES")
    if not path:
        return
    ip = get_ipython()  # noqa: F821 (IPython defines it for startup files)
    kernel = f"{os.getpid()}@{time.time():.3f}"  # this kernel process, unique over the log
    started: list[float] = []

    def pre(info) -> None:
        started[:] = [time.perf_counter()]

    def post(result) -> None:
        if started:
            record = {"source": result.info.raw_cell, "seconds": round(time.perf_counter() - started[0], 3),
                      "error": not result.success, "kernel": kernel}
            with open(path, "a", encoding="utf8") as f:
                f.write(json.dumps(record) + "\n")

    ip.events.register("pre_run_cell", pre)
    ip.events.register("post_run_cell", post)


_ace_log_cell_times()
del _ace_log_cell_times
