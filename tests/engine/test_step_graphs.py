"""Graphed T2S steps (CUDA graphs) follow the eager step exactly: buffers, buckets, invalidation, eviction.

On a CPU the graphs are replaced by a capture that runs the step eagerly but keeps a graph's contract:
the replay reads only the static input buffers, and every graph writes its logits into ONE shared
output buffer (as graphs sharing a memory pool may), so a runner that forgot to copy its inputs in,
or read an output after another replay, would produce different tokens. The real CUDA capture is
checked by the last test where a GPU exists.
"""

from __future__ import annotations

import pytest
import torch

from fastsovits.checkpoints.gpt import load_gpt
from fastsovits.engine.sampling import GREEDY, RowSampling
from fastsovits.engine.step_graphs import ROW_BUCKETS, GraphCaptureError, GraphedStep, row_bucket
from fastsovits.engine.t2s_runner import T2SRunner
from fastsovits.errors import InvalidParameter
from tests.engine.test_t2s_runner import _rows, _run
from tests.reference import reference_dir


@pytest.fixture(scope="module")
def model():
    m, _, _ = load_gpt(reference_dir() / "tiny" / "tiny_s1_v2.ckpt")
    return m


class EagerCapture:
    """A stand-in for CUDA graph capture with the same contract (see the module docstring)."""

    def __init__(self, fail: bool = False) -> None:
        self.shared_out: torch.Tensor | None = None
        self.captured: list[int] = []
        self.fail = fail
        self.calls = 0

    def __call__(self, fn):
        out = fn()  # a warm-up, as the CUDA capture does
        n = out.shape[0]
        self.captured.append(n)
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        if self.shared_out is None or self.shared_out.shape[0] < n:
            self.shared_out = torch.empty(max(n, 64), out.shape[1], dtype=out.dtype)

        def replay():
            self.calls += 1
            view = self.shared_out[:n]
            view.copy_(fn())
            return view

        return replay


def test_row_buckets() -> None:
    assert [row_bucket(n, 1000) for n in (1, 2, 3, 5, 9, 13, 17, 33, 65, 500)] == [1, 2, 4, 8, 12, 16, 24, 48, 96, 512]
    assert row_bucket(600, 1000) == 640 and row_bucket(1000, 1000) == 1000
    assert row_bucket(9, 10) == 10  # never beyond the cache's rows
    assert list(ROW_BUCKETS) == sorted(ROW_BUCKETS)
    with pytest.raises(InvalidParameter):
        row_bucket(0, 8)


def test_graphed_continuous_batching_equals_eager(model) -> None:
    """Same tokens, greedy and seeded sampling, with rows joining and leaving (slots reused)."""
    rows = _rows(7, seed=11)
    params = [GREEDY if i % 2 else RowSampling(top_k=15, top_p=0.9, seed=100 + i) for i in range(7)]
    eager, _ = _run(model, rows, params, slots=5, max_new=30)
    capture = EagerCapture()
    graphed, _ = _run(model, rows, params, slots=5, max_new=30, graph_capture=capture)
    for i in range(7):
        assert graphed[i].generated == eager[i].generated, f"row {i}"
    assert capture.calls > 0
    assert set(capture.captured) <= {1, 2, 4, 5}  # row buckets, capped at the 5 slots


def test_window_is_rounded_to_a_row_bucket(model) -> None:
    runner = T2SRunner(model, 8, 128, graph_capture=EagerCapture())
    runner.admit([0, 1, 2], _rows(3, seed=2), [GREEDY] * 3)
    assert runner.window()[0] == 4  # 3 busy rows -> the 4-row graph
    runner.release([1, 2])
    assert runner.window()[0] == 1


def test_graphs_are_reused_evicted_and_dropped_when_the_table_moves(model) -> None:
    runner = T2SRunner(model, 4, 256, graph_capture=EagerCapture())
    graphs = runner.graphs
    graphs.max_graphs = 2
    runner.admit([0], _rows(1, seed=4), [GREEDY])
    for _ in range(3):
        runner.step()
    assert graphs.captures == 1 and graphs.replays == 3  # one shape, replayed
    runner.admit([1], _rows(1, seed=5), [GREEDY])
    runner.step()  # 2 rows: a second shape
    runner.admit([2], _rows(1, seed=6), [GREEDY])
    runner.step()  # 4 rows: a third; the least recently used (1 row) goes
    assert graphs.captures == 3 and [n for n, _ in graphs.shapes] == [2, 4]
    before = graphs.captures
    model.reset_tables(model.pe.shape[0])  # a new positional table: captured addresses are stale
    runner.step()
    assert graphs.captures == before + 1 and len(graphs.shapes) == 1


def test_failed_capture_falls_back_to_eager_steps_or_raises_when_required(model, caplog) -> None:
    rows = _rows(2, seed=7)
    eager, _ = _run(model, rows, [GREEDY] * 2, slots=2, max_new=12)
    fallback, _ = _run(model, rows, [GREEDY] * 2, slots=2, max_new=12, graph_capture=EagerCapture(fail=True))
    assert [fallback[i].generated for i in range(2)] == [eager[i].generated for i in range(2)]
    assert "runs without CUDA graphs" in caplog.text
    with pytest.raises(GraphCaptureError):
        _run(model, rows, [GREEDY] * 2, slots=2, max_new=12, cuda_graphs=True, graph_capture=EagerCapture(fail=True))


def test_graphs_need_cuda_without_a_capture_of_ones_own(model) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(InvalidParameter, match="CUDA"):
        T2SRunner(model, 2, 64, cuda_graphs=True)
    assert T2SRunner(model, 2, 64).graphs is None  # CPU default: eager


def test_graphed_step_checks_rows(model) -> None:
    runner = T2SRunner(model, 2, 64, graph_capture=EagerCapture())
    assert isinstance(runner.graphs, GraphedStep)
    with pytest.raises(InvalidParameter):
        runner.graphs(torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, dtype=torch.long), 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graphs_equal_eager_on_gpu() -> None:
    m, _, _ = load_gpt(reference_dir() / "tiny" / "tiny_s1_v2.ckpt", device="cuda")
    rows = [
        type(r)(r.phones.cuda(), r.bert.cuda(), None if r.prompt is None else r.prompt.cuda()) for r in _rows(5, seed=3)
    ]
    params = [GREEDY if i % 2 else RowSampling(top_k=15, seed=7 + i) for i in range(5)]
    eager, _ = _run(m, rows, params, slots=4, max_new=30, cuda_graphs=False)
    graphed, _ = _run(m, rows, params, slots=4, max_new=30, cuda_graphs=True)
    for i in range(5):
        assert graphed[i].generated == eager[i].generated, f"row {i}"
