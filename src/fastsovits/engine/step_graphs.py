"""CUDA graphs of the T2S decode step, one per (rows, kv_len) shape bucket.

At small batches on a GPU a decode step costs its kernel launches (about fifteen per layer), not
its arithmetic. Capturing the step once per shape and replaying it removes that cost. The runner
already shapes every step as (cache rows ``0 .. n-1``, attention over ``0 .. kv_len-1``), both host
integers: with graphs on, ``n`` is rounded up to a row bucket (:func:`row_bucket`) and ``kv_len`` is
the runner's multiple of 64, so only a few dozen shapes ever occur.

Protocol (what makes a replay equal to the eager step):
- static inputs: ``tokens [S, 1]`` and ``positions [S]`` are allocated once; a call copies its
  inputs into their first ``n`` rows, and the graph of bucket ``(n, kv_len)`` reads exactly those;
- the graph writes its K/V into the engine's cache and its logits into a tensor of the graph's
  memory pool; the caller copies the logits out before the next replay (all graphs share one pool,
  so one graph's replay may reuse another's output memory);
- the cache and the model's positional table are captured by address: if either has moved
  (reallocated), every graph is dropped and captured again;
- graphs are captured lazily on the first step of a shape and kept in an LRU of ``max_graphs``.

Warm-up runs before a capture execute the real step eagerly; they are harmless because a step is
idempotent (it writes the same key/value at the same slot, and a row only reads slots up to its own).

``capture`` is injectable: the default records a ``torch.cuda.CUDAGraph``; tests on a CPU pass one
that runs the step eagerly, which checks the buffers, buckets, invalidation and eviction.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import Tensor

from fastsovits.errors import InvalidParameter

log = logging.getLogger(__name__)

# Rows per captured step: dense where batches are small (they are the latency-bound ones).
ROW_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 96, 128, 160, 192, 256, 320, 384, 448, 512)
ROW_BUCKET_STEP = 128  # beyond the table: multiples of this

Capture = Callable[[Callable[[], Tensor]], Callable[[], Tensor]]


def row_bucket(n: int, limit: int) -> int:
    """The number of cache rows a graphed step covers for ``n`` busy rows (at most ``limit``)."""
    if n < 1:
        raise InvalidParameter(f"row_bucket: n must be >= 1, got {n}")
    for b in ROW_BUCKETS:
        if b >= n:
            return min(b, limit)
    return min(-(-n // ROW_BUCKET_STEP) * ROW_BUCKET_STEP, limit)


class GraphCaptureError(RuntimeError):
    """A step could not be captured (an op that is not capturable, out of memory while capturing...)."""


class CudaGraphCapture:
    """Records ``fn`` into a CUDA graph (after ``warmup`` eager runs on a side stream, as CUDA requires
    for lazy library initialisation) and returns a replay that gives the graph's static output."""

    def __init__(self, device: torch.device, warmup: int = 2) -> None:
        if device.type != "cuda" or not torch.cuda.is_available():
            raise InvalidParameter(f"CUDA graphs need a CUDA device, the model is on {device}")
        self.device, self.warmup = device, warmup
        self.pool = torch.cuda.graph_pool_handle()

    def __call__(self, fn: Callable[[], Tensor]) -> Callable[[], Tensor]:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                fn()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the decode thread and reference loading keep launching their own kernels while
        # the engine thread captures (they run on other streams; only this thread's calls are checked).
        with torch.cuda.graph(graph, pool=self.pool, capture_error_mode="thread_local"):
            out = fn()

        def replay() -> Tensor:
            graph.replay()
            return out

        replay.graph = graph  # type: ignore[attr-defined]  # keeps the graph alive with its replay
        return replay


class GraphedStep:
    """``model.decode_step`` through captured graphs; call it like the step: (tokens, positions, kv_len)."""

    def __init__(self, model, cache, max_rows: int, *, capture: Capture | None = None, max_graphs: int = 96) -> None:
        if max_graphs < 1:
            raise InvalidParameter(f"max_graphs must be >= 1, got {max_graphs}")
        device = cache.k.device
        self.model, self.cache, self.max_rows, self.max_graphs = model, cache, max_rows, max_graphs
        self._capture = capture if capture is not None else CudaGraphCapture(device)
        self.tokens = torch.zeros(max_rows, 1, dtype=torch.long, device=device)
        self.positions = torch.zeros(max_rows, dtype=torch.long, device=device)
        self._graphs: OrderedDict[tuple[int, int], Callable[[], Tensor]] = OrderedDict()
        self._addresses = self._current_addresses()
        self.captures = 0  # graphs recorded so far (diagnostics, tests)
        self.replays = 0

    def rows_for(self, n: int) -> int:
        return row_bucket(n, self.max_rows)

    @property
    def shapes(self) -> list[tuple[int, int]]:
        """(rows, kv_len) of the resident graphs, least recently used first."""
        return list(self._graphs)

    def _current_addresses(self) -> tuple[int, ...]:
        return (
            self.cache.k.data_ptr(),
            self.cache.v.data_ptr(),
            self.cache.text_len.data_ptr(),
            self.model.pe.data_ptr(),
        )

    def _step(self, n: int, kv_len: int) -> Tensor:
        return self.model.decode_step(self.tokens[:n], self.positions[:n], self.cache, kv_len)

    def __call__(self, tokens: Tensor, positions: Tensor, kv_len: int) -> Tensor:
        """tokens [n, 1], positions [n] (n a row bucket) -> logits [n, V] (copy them out before the next call)."""
        n = tokens.shape[0]
        if n > self.max_rows:
            raise InvalidParameter(f"a graphed step covers at most {self.max_rows} rows, got {n}")
        addresses = self._current_addresses()
        if addresses != self._addresses:
            log.info("KV cache or positional table moved; dropping %d captured step graphs", len(self._graphs))
            self._graphs.clear()
            self._addresses = addresses
        self.tokens[:n].copy_(tokens)
        self.positions[:n].copy_(positions)
        key = (n, kv_len)
        run = self._graphs.get(key)
        if run is None:
            try:
                run = self._capture(lambda: self._step(n, kv_len))
            except Exception as e:  # noqa: BLE001 - reported with its shape; the runner decides what to do
                raise GraphCaptureError(f"capturing the T2S step for {n} rows x {kv_len} positions failed: {e}") from e
            self.captures += 1
            self._graphs[key] = run
            while len(self._graphs) > self.max_graphs:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        self.replays += 1
        return run()
