"""Fine-tuning steps as separate processes: start, follow (progress + log tail), cancel.

One step at a time per experiment. The process writes progress JSON lines and a log; the WebUI
only reads them, so a browser that goes away loses nothing and a new page sees the same state.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from fastsovits.errors import InvalidInput
from fastsovits.webui.config import LOG_TAIL_LINES


@dataclass(frozen=True)
class StepStatus:
    step: str
    state: str  # "idle", "running", "done", "failed", "cancelled"
    done: int
    total: int
    message: str
    error: str | None
    log_tail: str


class StepRunner:
    def __init__(self, jobs_dir: Path) -> None:
        self.jobs_dir = jobs_dir
        self._lock = threading.Lock()
        self._procs: dict[tuple[str, str], subprocess.Popen] = {}

    def _files(self, exp: str, step: str) -> tuple[Path, Path, Path]:
        d = self.jobs_dir / exp
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{step}.spec.json", d / f"{step}.progress.jsonl", d / f"{step}.log"

    def running(self, exp: str) -> str | None:
        with self._lock:
            for (e, step), proc in self._procs.items():
                if e == exp and proc.poll() is None:
                    return step
        return None

    def start(self, exp: str, step: str, spec: dict) -> None:
        busy = self.running(exp)
        if busy:
            raise InvalidInput(f"experiment {exp!r} is already running {busy}; wait or cancel it")
        spec_path, progress, log = self._files(exp, step)
        progress.unlink(missing_ok=True)
        spec_path.write_text(json.dumps({**spec, "progress": str(progress)}, ensure_ascii=False), "utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "fastsovits.webui.finetune_worker", step, str(spec_path)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        with self._lock:
            self._procs[(exp, step)] = proc

    def reap(self, exp: str, step: str, timeout: float = 30.0) -> None:
        """After a step reported its end: wait for its process to exit (so the next step may start)."""
        with self._lock:
            proc = self._procs.get((exp, step))
        if proc is not None:
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)

    def cancel(self, exp: str) -> str | None:
        with self._lock:
            procs = [(step, p) for (e, step), p in self._procs.items() if e == exp and p.poll() is None]
        for step, proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)  # the worker's own process group (start_new_session)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            _, progress, _ = self._files(exp, step)
            with open(progress, "a", encoding="utf-8") as f:
                f.write(json.dumps({"state": "cancelled"}) + "\n")
            return step
        return None

    def status(self, exp: str, step: str) -> StepStatus:
        _, progress, log = self._files(exp, step)
        done = total = 0
        message, error, state = "", None, "idle"
        if progress.is_file():
            state = "running"
            for line in progress.read_text("utf-8").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                done, total = rec.get("done", done), rec.get("total", total)
                message = rec.get("message", message)
                if "state" in rec:
                    state, error = rec["state"], rec.get("error")
        with self._lock:
            proc = self._procs.get((exp, step))
        if state == "idle" and proc is not None:  # started; the process has not written its first line yet
            state, message = "running", "starting"
        if state == "running" and proc is not None and proc.poll() is not None:
            state, error = "failed", error or f"the step's process exited with code {proc.returncode}"
        if state == "running" and proc is None:
            state = "failed"  # a leftover from a WebUI that stopped while the step ran: run it again to resume
            error = error or "interrupted (the WebUI restarted); run the step again to resume"
        tail = ""
        if log.is_file():
            with open(log, "rb") as f:
                f.seek(max(0, log.stat().st_size - 16384))
                tail = "\n".join(f.read().decode("utf-8", "replace").splitlines()[-LOG_TAIL_LINES:])
        return StepStatus(step, state, int(done), int(total), str(message), error, tail)

    def close(self) -> None:
        with self._lock:
            exps = {e for (e, _), p in self._procs.items() if p.poll() is None}
        for exp in exps:
            self.cancel(exp)
