"""Chapter 07's tables from a study summary: one row per setting, values per model."""

from types import SimpleNamespace

import numpy as np

from ace_utils.book import architecture_tables as at
from ace_utils.tasks import architecture as arch


def test_settings_table_has_one_row_per_setting():
    lines = at.settings_table(arch.MODADD_SETTINGS).splitlines()
    assert len(lines) == 2 + len(arch.MODADD_SETTINGS)
    assert lines[2].startswith("| `paper` |") and "post-LN" in lines[2]


def test_study_and_closing_cells():
    s = [SimpleNamespace(name="paper", label="the paper's"), SimpleNamespace(name="b", label="other")]
    keys = ("grok_epoch", "r_energy_init", "r_energy_grok", "r_energy_end", "r_suf", "r_nec", "core_removed_acc",
            "modes", "r2_in", "r2_h")
    summary = {"paper": {k: np.array([1.0, 2.0]) for k in keys}, "b": {k: np.array([3.0, 5.0]) for k in keys}}
    rows = at.study_table(s, summary).splitlines()
    assert rows[2].startswith("| the paper's | 1 / 2 | 1 / 2 → 1 / 2 → 1 / 2 |") and rows[3].startswith("| other | 3 / 5 |")
    assert at.paper_and_others(summary, s, "r_suf") == ["1 / 2", "3-5"]
    markov = {"paper": {"rank": np.array([3.0, 3.0])}, "b": {"rank": np.array([3.0, 4.0])}}
    assert at.markov_paper_and_others(markov, s, "rank", "{:.0f}") == ["3", "3-4"]
