"""What a reader needs to reuse and cite the package: a licence, a citation file that cites the
book and the paper, one version (``ace_utils.__version__``) shown wherever a version is shown,
and one repository URL (``_config.yml``'s ``repository.url``) wherever the repository is named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import ace_utils

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
CITATION = yaml.safe_load((ROOT / "CITATION.cff").read_text())
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_the_licence_is_mit_and_pyproject_says_so():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in text
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert CITATION["license"] == "MIT"


def test_the_citation_file_cites_the_book_and_the_paper():
    assert CITATION["cff-version"] == "1.2.0"
    assert CITATION["type"] == "software" and "Algorithmic cores, executed" in CITATION["title"]
    assert CITATION["authors"] and CITATION["repository-code"] == REPO_URL
    (paper,) = CITATION["references"]
    assert paper["title"] == "Transformers converge to invariant algorithmic cores"
    assert paper["authors"][0]["family-names"] == "Schiffman"
    assert {"type": "other", "value": "arXiv:2602.22600"} in paper["identifiers"]


def test_one_version_everywhere():
    version = ace_utils.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert CITATION["version"] == version
    assert f"ace-book {version}" in CONFIG["html"]["extra_footer"]  # shown on every page of the book
    assert PROJECT["dynamic"] == ["version"]  # the package's version is read from ace_utils


def test_the_repository_url_has_one_home():
    """_config.yml holds it (the book's repository and Colab buttons); every other file that
    names the repository names the same one. The chapters' Colab cells: test_colab_cell.py."""
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", REPO_URL)
    assert PROJECT["urls"]["Homepage"] == REPO_URL
    name = REPO_URL.rsplit("/", 1)[1]
    named = {m.group(0) for p in (ROOT / "README.md", ROOT / "CITATION.cff", ROOT / "pyproject.toml")
             for m in re.finditer(rf"https://github\.com/[\w.-]+/{re.escape(name)}\b", p.read_text())}
    assert named <= {REPO_URL}, named
