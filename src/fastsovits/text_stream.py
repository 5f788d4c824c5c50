"""Text streamed in, audio streamed out: the session behind ``TTS.stream_text`` and the WebSocket route.

A :class:`TextStreamSession` takes text deltas (``push``), closes sentences with an
:class:`~fastsovits.text.incremental.IncrementalSplitter` and submits each one to the engine at
once (``TTS.submit(..., split=False)``), so sentence ``i`` generates while later text is still
arriving and batches with everything else the engine runs. ``audio()`` yields the chunks of
sentence 0, then 1, ... as they are decoded. Sentence ``i`` takes seed ``params.seed + i``, the
seed sentence ``i`` of a one-shot synthesis of the same text takes, so a seeded stream sounds like
one-shot synthesis of the same sentences.

Every client-controlled cost is bounded by :class:`~fastsovits.limits.TextStreamLimits`: total
text, delta size, text without a place to cut, sentences, sentences generating ahead of the
listener (the text source waits), idle time and session time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from fastsovits.errors import Cancelled, EmptyText, InputTimeout, InvalidInput, TextTooLong
from fastsovits.limits import TextStreamLimits
from fastsovits.params import SynthesisParams
from fastsovits.text.incremental import IncrementalSplitter

if TYPE_CHECKING:
    from fastsovits.api import TTS, AudioChunk, Reference, SynthesisHandle

POLL_S = 0.05  # how often a waiting side re-checks limits and cancellation


class TextStreamSession:
    """One stream of text in and audio out. ``push``/``finish`` from the text side (one thread at a
    time), ``audio()`` from the listening side; ``cancel``/``fail`` from anywhere."""

    def __init__(
        self,
        tts: TTS,
        reference: Reference,
        language: str,
        params: SynthesisParams | None = None,
        limits: TextStreamLimits | None = None,
    ) -> None:
        from fastsovits.text.frontend import check_language

        check_language(language, tts.version)  # an unknown language fails now, not at the first sentence
        self.tts, self.reference, self.language = tts, reference, language
        self.params = params or SynthesisParams()
        self.limits = limits or TextStreamLimits()
        self._splitter = IncrementalSplitter(
            language.replace("all_", ""), self.params.text_split_method, self.limits.max_pending_chars
        )
        self.sentences: list[str] = []  # closed sentences, in order
        self._handles: list[SynthesisHandle] = []
        self._cond = threading.Condition()
        self._push_lock = threading.Lock()
        self._played = 0  # sentences whose audio has been handed out completely
        self._input_done = False
        self._cancelled = False
        self._error: BaseException | None = None
        self.chars = 0
        self.t0 = self._last_input = time.monotonic()

    # ------------------------------------------------------------------ text side
    def push(self, delta: str) -> list[str]:
        """Add a delta; submits the sentences it closes and returns their texts. Errors also fail the session."""
        try:
            if not isinstance(delta, str):
                raise InvalidInput(f"a text delta must be a string, got {type(delta).__name__}")
            if len(delta) > self.limits.max_delta_chars:
                raise TextTooLong(f"a delta of {len(delta)} characters; the limit is {self.limits.max_delta_chars}")
            with self._push_lock:
                self._check_open()
                if self.chars + len(delta) > self.limits.max_chars:
                    raise TextTooLong(f"the streamed text passed {self.limits.max_chars} characters")
                self.chars += len(delta)
                self._last_input = time.monotonic()
                closed = self._splitter.feed(delta)
                for text in closed:
                    self._submit(text)
                return closed
        except BaseException as e:
            self.fail(e)
            raise

    def finish(self) -> list[str]:
        """The end of the text: closes and submits what is left."""
        try:
            with self._push_lock:
                self._check_open()
                closed = self._splitter.finish()
                for text in closed:
                    self._submit(text)
                if not self.sentences:
                    raise EmptyText("the streamed text has nothing to read")
                with self._cond:
                    self._input_done = True
                    self._cond.notify_all()
                return closed
        except BaseException as e:
            self.fail(e)
            raise

    def has_room(self) -> bool:
        """Whether fewer than ``max_ahead`` sentences wait for the listener (else the text side should wait)."""
        with self._cond:
            return len(self._handles) - self._played < self.limits.max_ahead or self._stopped

    def wait_for_room(self) -> None:
        with self._cond:
            while len(self._handles) - self._played >= self.limits.max_ahead and not self._stopped:
                self._cond.wait(POLL_S)

    def _check_open(self) -> None:
        if self._error is not None:
            raise self._error
        if self._cancelled:
            raise Cancelled("the text stream was cancelled")
        if self._input_done:
            raise InvalidInput("the text stream is already finished")
        if time.monotonic() - self.t0 > self.limits.max_session_s:
            raise InputTimeout(f"the text stream ran past {self.limits.max_session_s:g} s")

    def _submit(self, text: str) -> None:
        index = len(self.sentences)
        if index >= self.limits.max_sentences:
            raise TextTooLong(f"the streamed text passed {self.limits.max_sentences} sentences")
        params = self.params
        if params.fixed_seed is not None:
            params = params.with_(seed=params.fixed_seed + index)  # one-shot's seed of sentence `index`
        handle = self.tts.submit(text, self.reference, self.language, params, split=False)
        with self._cond:
            self.sentences.append(text)
            self._handles.append(handle)
            self._cond.notify_all()
        if self._stopped:
            handle.cancel()

    # ------------------------------------------------------------------ control
    @property
    def _stopped(self) -> bool:
        return self._cancelled or self._error is not None

    @property
    def input_done(self) -> bool:
        return self._input_done

    def fail(self, error: BaseException) -> None:
        """End the session with ``error`` (the first one wins); the listener raises it."""
        with self._cond:
            if self._error is None and not self._cancelled:
                self._error = error
            self._cond.notify_all()
        self._cancel_handles()

    def cancel(self) -> None:
        """Stop now: queued and generating sentences are dropped in the engine (thread-safe)."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()
        self._cancel_handles()

    def _cancel_handles(self) -> None:
        with self._cond:
            handles = list(self._handles)
        for h in handles:
            h.cancel()

    # ------------------------------------------------------------------ listening side
    def _next_handle(self, index: int) -> SynthesisHandle | None:
        """Sentence ``index``'s handle once submitted; None after the last one."""
        waiting_since = time.monotonic()
        with self._cond:
            while True:
                if self._error is not None:
                    raise self._error
                if self._cancelled:
                    raise Cancelled("the text stream was cancelled")
                if index < len(self._handles):
                    return self._handles[index]
                if self._input_done:
                    return None
                now = time.monotonic()
                if now - max(self._last_input, waiting_since) > self.limits.idle_timeout_s:
                    raise InputTimeout(f"no text for {self.limits.idle_timeout_s:g} s")
                if now - self.t0 > self.limits.max_session_s:
                    raise InputTimeout(f"the text stream ran past {self.limits.max_session_s:g} s")
                self._cond.wait(POLL_S)

    def audio(self) -> Iterator[AudioChunk]:
        """Chunks of every sentence in order (``index`` = the sentence's place in the stream). The last
        chunk has ``is_last``; when the end of the text is only known after the last sentence's audio,
        it is an empty chunk."""
        from fastsovits.api import AudioChunk

        index, ended = 0, False
        try:
            while (handle := self._next_handle(index)) is not None:
                try:
                    for chunk in handle:
                        final = chunk.sentence is not None
                        with self._cond:
                            last = final and self._input_done and index == len(self._handles) - 1
                        ended = last
                        sentence = replace(chunk.sentence, index=index) if chunk.sentence is not None else None
                        yield AudioChunk(chunk.samples, chunk.sample_rate, index=index, is_last=last, sentence=sentence)
                except Cancelled:
                    if self._error is not None:
                        raise self._error from None
                    raise
                index += 1
                with self._cond:
                    self._played = index
                    self._cond.notify_all()
            if not ended:
                yield AudioChunk(np.zeros(0, np.float32), self.tts.sample_rate, index=max(0, index - 1), is_last=True)
        finally:
            if not ended:
                self.cancel()


class TextStream(Iterator["AudioChunk"]):
    """``TTS.stream_text`` over a plain iterable: a thread reads the text, the caller iterates the audio."""

    def __init__(self, session: TextStreamSession, chunks: Iterable[str]) -> None:
        self.session = session
        self._audio = session.audio()
        self._reader = threading.Thread(target=self._read, args=(iter(chunks),), name="fastsovits-text-in", daemon=True)
        self._reader.start()

    def _read(self, chunks: Iterator[str]) -> None:
        try:
            for delta in chunks:
                self.session.wait_for_room()
                if self.session._stopped:
                    return
                self.session.push(delta)
            self.session.finish()
        except BaseException as e:  # noqa: BLE001 - the listener raises it
            self.session.fail(e)

    @property
    def sentences(self) -> list[str]:
        return self.session.sentences

    def __iter__(self) -> TextStream:
        return self

    def __next__(self) -> AudioChunk:
        return next(self._audio)

    def cancel(self) -> None:
        self.session.cancel()

    def close(self) -> None:
        self._audio.close()  # type: ignore[attr-defined]  # a generator: its finally cancels the session


class AudioPump:
    """Iterates a session's audio in a thread of its own and hands the chunks to an event loop."""

    END = object()

    def __init__(self, session: TextStreamSession) -> None:
        self.session = session
        self._loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue = asyncio.Queue()
        self._thread = threading.Thread(target=self._run, name="fastsovits-audio-out", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        try:
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody listens
            pass

    def _run(self) -> None:
        audio = self.session.audio()
        try:
            for chunk in audio:
                self._put(chunk)
            self._put(self.END)
        except BaseException as e:  # noqa: BLE001 - the listener raises it
            self._put(e)
        finally:
            audio.close()  # type: ignore[attr-defined]

    async def get(self) -> AudioChunk | None:
        item = await self.queue.get()
        if item is self.END:
            return None
        if isinstance(item, BaseException):
            raise item
        return item


async def wait_for_room(session: TextStreamSession) -> None:
    while not session.has_room():
        await asyncio.sleep(POLL_S)


async def _stream_async(session: TextStreamSession, chunks: AsyncIterable[str]) -> AsyncIterator[AudioChunk]:
    async def read() -> None:
        try:
            async for delta in chunks:
                await wait_for_room(session)
                await asyncio.to_thread(session.push, delta)
            await asyncio.to_thread(session.finish)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # noqa: BLE001 - the listener raises it
            session.fail(e)

    reader = asyncio.create_task(read())
    pump = AudioPump(session)
    try:
        while (chunk := await pump.get()) is not None:
            yield chunk
    finally:
        reader.cancel()
        session.cancel()


def stream_text(
    tts: TTS,
    chunks: Iterable[str] | AsyncIterable[str],
    reference: Reference,
    language: str,
    params: SynthesisParams | None = None,
    limits: TextStreamLimits | None = None,
) -> TextStream | AsyncIterator[AudioChunk]:
    """See :meth:`fastsovits.api.TTS.stream_text`."""
    session = TextStreamSession(tts, reference, language, params, limits)
    if isinstance(chunks, AsyncIterable):
        return _stream_async(session, chunks)
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Iterable):
        raise InvalidInput("stream_text takes an iterable of text deltas (for one whole string, use synthesize)")
    return TextStream(session, chunks)
