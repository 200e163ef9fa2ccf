"""Hydra callback: a summary of every job of a multirun, written when the sweep ends.

Each job leaves ``job_result.json`` in its folder (its overrides, status, objective and error);
when the sweep ends, ``summary.csv`` and ``summary.md`` at the multirun root list them all,
with each job's status, objective (the best monitored metric ``train.py`` returns; ``inf`` for a
diverged or refused job, whose status and reason come from ``diverged.txt`` / ``error.txt`` in
its folder) and reason (the error of a refused, diverged or failed job). Files rather than
memory, so it also works when jobs run elsewhere (submitit, SLURM).

The order, best first (ties by job number):

1. completed jobs with an objective, ascending;
2. completed jobs without one (``metrics=none``: nothing to rank by);
3. diverged jobs, then refused jobs, then failed (crashed) jobs.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

log = logging.getLogger(__name__)

RESULT_FILE = "job_result.json"
ERROR_FILE = "error.txt"  # a refused job's one-line reason (bad value, missing data)
DIVERGED_FILE = "diverged.txt"  # a job whose losses stopped being finite: which loss, when
STATUS_ORDER = ("completed", "diverged", "refused", "failed")  # the summary's order of outcomes


def _objective(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def sort_key(row: dict[str, Any]) -> tuple[int, int, float, int]:
    """Where a job goes in the summary (see the module docstring): outcome, then, for completed
    jobs, whether they have an objective and its value, then the job number."""
    status = STATUS_ORDER.index(row["status"]) if row["status"] in STATUS_ORDER else len(STATUS_ORDER)
    objective = _objective(row.get("objective"))
    missing = objective is None or math.isnan(objective)
    job = row["job"] if isinstance(row.get("job"), int) else -1
    return status, int(missing), 0.0 if missing else objective, job


def _cell(text: Any) -> str:
    """``text`` as one Markdown table cell: on one line, its ``|`` escaped."""
    return " ".join(("" if text is None else str(text)).split()).replace("|", "\\|")


class SweepSummary(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        folder = Path(job_return.working_dir or ".")
        hydra_cfg = job_return.hydra_cfg.hydra if job_return.hydra_cfg is not None else None
        if hydra_cfg is not None and hydra_cfg.mode != RunMode.MULTIRUN:
            return  # a single run is not part of a sweep (and has no job number)
        if hydra_cfg is not None and hydra_cfg.runtime.output_dir:
            folder = Path(hydra_cfg.runtime.output_dir)
        failed = job_return.status == JobStatus.FAILED
        error = str(job_return._return_value) if failed else None
        status = "failed" if failed else "completed"
        for name, outcome in ((ERROR_FILE, "refused"), (DIVERGED_FILE, "diverged")):
            if error is None and (folder / name).is_file():
                error, status = (folder / name).read_text().strip(), outcome
        entry = {
            "job": hydra_cfg.job.num if hydra_cfg is not None else None,
            "overrides": list(job_return.overrides or []),
            "status": status,
            "objective": None if failed else _objective(job_return._return_value),
            "error": error,
            "folder": str(folder),
        }
        folder.mkdir(parents=True, exist_ok=True)
        (folder / RESULT_FILE).write_text(json.dumps(entry, indent=2))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        root = Path(config.hydra.sweep.dir)
        rows = [json.loads(p.read_text()) for p in root.glob(f"*/{RESULT_FILE}")]
        if not rows:
            return
        rows.sort(key=sort_key)
        with open(root / "summary.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["job", "status", "objective", "overrides", "error", "folder"])
            for r in rows:
                writer.writerow(
                    [
                        r["job"],
                        r["status"],
                        r["objective"],
                        " ".join(r["overrides"]),
                        r["error"] or "",
                        r["folder"],
                    ]
                )
        lines = ["| job | status | objective | overrides | reason |", "| ---: | --- | ---: | --- | --- |"]
        for r in rows:
            value = "" if r["objective"] is None else f"{r['objective']:.4f}"
            cells = [r["job"], r["status"], value, " ".join(r["overrides"]), r["error"]]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        (root / "summary.md").write_text("\n".join(lines) + "\n")
        log.info("sweep summary (%s):\n%s", root / "summary.csv", "\n".join(lines))
