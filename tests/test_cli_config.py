"""Bad values that used to escape as tracebacks or Hydra's multi-line errors, through the command
line: one line, exit status 2, and ``refused`` (not a crash) in a multirun."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from .test_cli import run_train

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["metrics=default", "metrics.features=nope"], "metrics.features='nope' is invalid"),
        (["data.split=nope"], "data.split='nope' is invalid"),
        (["model.optimizer_g.betas=0.5"], "model.optimizer_g.betas=0.5 is invalid"),
        (["augment=diffaug", "augment.policy=3"], "augment.policy=3 is invalid"),
    ],
)
def test_bad_value_is_one_line_and_exit_2(
    tmp_path: Path, fashion_root: Path, overrides: list[str], named: str
) -> None:
    done = run_train(tmp_path, fashion_root, *overrides)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert named in output
    assert "Traceback" not in output and "Error executing job" not in output
    assert len([line for line in output.splitlines() if "ERROR" in line]) == 1


def test_unwritable_run_dir_is_one_line_and_exit_2(tmp_path: Path, fashion_root: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    done = run_train(tmp_path, fashion_root, f"hydra.run.dir={blocker}/sub")
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-3000:]
    assert output.strip() == (
        f"error: hydra.run.dir={blocker}/sub cannot be used as the run folder: "
        f"{blocker} is a file, not a folder"
    )


def test_multirun_job_with_a_bad_value_is_refused(tmp_path: Path, fashion_root: Path) -> None:
    done = run_train(
        tmp_path, fashion_root, "-m", "model.optimizer_g.betas=0.5,[0.5,0.99]", "trainer.max_steps=1"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (sweep,) = tmp_path.glob("outputs/multiruns/*")
    with open(sweep / "summary.csv") as f:
        rows = {
            "bad" if "model.optimizer_g.betas=0.5" in r["overrides"].split() else "good": r
            for r in csv.DictReader(f)
        }
    refused = rows["bad"]
    assert refused["status"] == "refused" and math.isinf(float(refused["objective"]))
    assert "model.optimizer_g.betas=0.5 is invalid" in refused["error"]
    assert rows["good"]["status"] == "completed"
