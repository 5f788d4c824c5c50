"""The decode thread: owns the SoVITS decoder so text-to-semantic steps never wait for it.

The engine thread hands over finished sentences (``put_whole``) and streaming chunks
(``put_chunk``); this thread decodes them and hands the audio back through ``deliver`` (the
engine posts it to its own inbox, so all bookkeeping stays on the engine thread). Streaming
chunks go first (someone is listening); whole sentences are decoded in groups of up to
``max_batch`` (bucketed by length inside ``DecodeRunner``). Chunks of one row are decoded in the
order they were queued, which is the order their state needs. An out-of-memory error while
decoding a group retries its sentences one by one; a single sentence that still does not fit fails
its job only (``CapacityError``).

On CUDA the thread decodes on a stream of its own, so its kernels overlap the engine thread's T2S
steps on the device (and never touch the stream a T2S step graph is being captured on); each task
first waits for the default stream, where the voices' style vectors were made.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from fastsovits.engine.compute_gate import ComputeGate, control_thread
from fastsovits.engine.decode_runner import DecodeItem, SentenceDecoder
from fastsovits.engine.jobs import DecodeInputs
from fastsovits.engine.messages import DecodeFailed, DecodeResult, PieceDecoded, WholeDecoded
from fastsovits.engine.stream_decode import StreamDecoder, StreamSpec, StreamState
from fastsovits.errors import CapacityError, InvalidInput

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkTask:
    key: Any  # the engine's row id
    state: StreamState
    tokens: torch.Tensor  # [T25] generated so far (a copy)
    inputs: DecodeInputs
    spec: StreamSpec
    final: bool


class DecodeWorker:
    def __init__(
        self,
        decoder: SentenceDecoder,
        stream_decoder: StreamDecoder | None,
        deliver: Callable[[DecodeResult], None],
        max_batch: int = 8,
        threads: int | None = None,
        gate: ComputeGate | None = None,
    ) -> None:
        self.threads = threads
        self.gate = gate or ComputeGate(enabled=False)
        self.decoder, self.stream_decoder, self.deliver, self.max_batch = decoder, stream_decoder, deliver, max_batch
        self._chunks: deque[ChunkTask] = deque()
        self._whole: deque[tuple[Any, DecodeItem]] = deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.busy_seconds = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._stop = False
            self._thread = threading.Thread(target=self._loop, name="fastsovits-decode", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop after the task in progress; queued tasks are dropped (their jobs are being cancelled)."""
        with self._cv:
            self._stop = True
            self._chunks.clear()
            self._whole.clear()
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    @property
    def backlog(self) -> int:
        return len(self._chunks) + len(self._whole)

    def put_whole(self, key: Any, item: DecodeItem) -> None:
        with self._cv:
            self._whole.append((key, item))
            self._cv.notify()

    def put_chunk(self, task: ChunkTask) -> None:
        with self._cv:
            self._chunks.append(task)
            self._cv.notify()

    def _next(self) -> ChunkTask | list[tuple[Any, DecodeItem]] | None:
        with self._cv:
            while not (self._stop or self._chunks or self._whole):
                self._cv.wait()
            if self._stop:
                return None
            if self._chunks:
                return self._chunks.popleft()
            return [self._whole.popleft() for _ in range(min(self.max_batch, len(self._whole)))]

    def _decode_whole(self, items: list[DecodeItem]) -> list:
        try:
            return self.decoder.decode(items)
        except torch.OutOfMemoryError:
            if len(items) == 1:
                raise CapacityError(
                    f"a sentence of {items[0].codes.numel()} tokens does not fit in memory for decoding"
                ) from None
            log.warning("out of memory decoding %d sentences together; decoding them one by one", len(items))
            return [self.decoder.decode([item])[0] for item in items]

    def _loop(self) -> None:
        device = self.decoder.device
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        if self.gate.enabled:
            control_thread()
        while (task := self._next()) is not None:
            self.deliver(self.gate.run(self._timed, task, stream, threads=self.threads))

    def _timed(self, task: ChunkTask | list[tuple[Any, DecodeItem]], stream: torch.cuda.Stream | None) -> DecodeResult:
        t0 = time.perf_counter()
        try:
            if stream is None:
                return self._run(task)
            stream.wait_stream(torch.cuda.default_stream(stream.device))
            with torch.cuda.stream(stream):
                return self._run(task)
        finally:
            self.busy_seconds += time.perf_counter() - t0

    def _run(self, task: ChunkTask | list[tuple[Any, DecodeItem]]) -> DecodeResult:
        try:
            if isinstance(task, ChunkTask):
                if self.stream_decoder is None:
                    raise InvalidInput("this model decodes whole sentences only (no token streaming)")
                audio = self.stream_decoder.chunk(task.state, task.tokens, task.inputs, task.spec, task.final)
                return PieceDecoded(task.key, audio, task.final)
            return WholeDecoded([key for key, _ in task], self._decode_whole([item for _, item in task]))
        except Exception as e:  # noqa: BLE001 - reported to the jobs concerned by the engine
            keys = [task.key] if isinstance(task, ChunkTask) else [key for key, _ in task]
            return DecodeFailed(keys, e)
