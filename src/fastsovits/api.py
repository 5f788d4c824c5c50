"""The Python API: ``TTS`` owns the models and the engine; references and params are values.

    tts = TTS.from_pretrained("models/v2proplus", hubert_dir=..., bert_dir=..., sv=...)
    ref = tts.load_reference("ref.wav", "参考音频的文字。", "zh")
    audio = tts.synthesize("要合成的文字。", ref, "zh", SynthesisParams(seed=1))
    audio.save("out.wav")

Every request goes through the one batching engine, so ``synthesize_batch`` (and concurrent
``synthesize`` calls from several threads) share T2S batches. The text frontend (G2P + BERT) runs
in a worker thread: a request's first sentence is phonemized at once (so bad text fails the call
itself), the others while the first ones are already generating, in groups that share one BERT
forward.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, cast

import numpy as np
import torch

from fastsovits.engine.stats import EngineStats, MemoryReport
from fastsovits.errors import EmptyText, InvalidInput, InvalidParameter, MissingResource
from fastsovits.limits import EARLY_STOP_HZ, MAX_CLIP_SECONDS, MAX_NEW_TOKENS, TextStreamLimits
from fastsovits.params import SynthesisParams
from fastsovits.results import SentenceResult, capped_indices
from fastsovits.timestamps import SentenceAligner, SentenceTimestamps, request_timestamps

if TYPE_CHECKING:
    from fastsovits.models.sovits import Synthesizer
    from fastsovits.models.sovits_v3 import SynthesizerV3
    from fastsovits.models.ssl import SSLExtractor
    from fastsovits.models.sv import SpeakerEncoder
    from fastsovits.models.t2s import Text2Semantic
    from fastsovits.models.v3_synthesis import InContextPrompt
    from fastsovits.text.bert import BertFeatureExtractor
    from fastsovits.text_stream import TextStream

log = logging.getLogger(__name__)
T = TypeVar("T")
REFERENCE_CACHE_SIZE = 64
SPEC_RATE = 32000  # the rate of the SoVITS reference spectrogram (every version)
FRONTEND_GROUP = 8  # sentences phonemized together (one BERT forward) by the frontend worker


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate

    def to_int16(self) -> np.ndarray:
        return (np.clip(self.samples, -1.0, 1.0) * 32767).astype(np.int16)

    def save(self, path: str | Path, fmt: str | None = None) -> None:
        from fastsovits.audio.io import encode_audio

        fmt = fmt or Path(path).suffix.lstrip(".").lower() or "wav"
        Path(path).write_bytes(encode_audio(self.samples, self.sample_rate, fmt))


@dataclass(frozen=True)
class SynthesisResult(Audio):
    """The whole audio of a request, and how each of its sentences ended."""

    sentences: tuple[SentenceResult, ...] = ()
    # Start/end of each sentence in seconds (words too with params.timestamps): fastsovits/timestamps.py
    timestamps: tuple[SentenceTimestamps, ...] = ()

    @property
    def capped(self) -> list[int]:
        """Indices of sentences that ran to their token cap (usually a runaway: check them)."""
        return capped_indices(self.sentences)


@dataclass(frozen=True)
class AudioChunk(Audio):
    index: int = 0  # sentence index
    is_last: bool = False  # the last chunk of the request
    sentence: SentenceResult | None = None  # on the last chunk of each sentence: how that sentence ended


@dataclass(frozen=True)
class Reference:
    """A voice: everything the engine needs from the reference clip, computed once."""

    key: str
    prompt_semantic: torch.Tensor | None  # [T25] tokens (None: reference-free mode)
    prompt_phones: torch.Tensor | None  # [N] ids of the prompt text
    prompt_bert: torch.Tensor | None  # [1024, N]
    ge: torch.Tensor  # [1, gin, 1] style vector (several references averaged)
    in_context: InContextPrompt | None = None  # v3/v4: prompt features + reference mel for the CFM


def _audio_bytes(audio) -> bytes:
    if isinstance(audio, (bytes, bytearray)):
        return bytes(audio)
    if isinstance(audio, (str, Path)):
        return Path(audio).read_bytes() if Path(audio).is_file() else str(audio).encode()
    if isinstance(audio, tuple):
        return np.asarray(audio[0], dtype=np.float32).tobytes() + str(audio[1]).encode()
    raise InvalidInput(f"reference audio must be a path, bytes or (samples, sample_rate), got {type(audio).__name__}")


def _load(audio, sample_rate: int) -> np.ndarray:
    from fastsovits.audio.io import load_audio, resample

    if isinstance(audio, tuple):
        samples, sr = audio
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim == 2:
            samples = samples.mean(axis=1 if samples.shape[1] <= 8 else 0)
        return resample(samples, int(sr), sample_rate)
    return load_audio(audio, sample_rate, max_seconds=MAX_CLIP_SECONDS)[0]  # refused from the header when longer


_DTYPES = {
    "fp32": torch.float32,
    "float32": torch.float32,
    "fp16": torch.float16,
    "float16": torch.float16,
    "half": torch.float16,
    "bf16": torch.bfloat16,
    "bfloat16": torch.bfloat16,
}


def _as_dtype(value, int8: bool = False) -> torch.dtype:
    if int8 and (value == torch.int8 or (isinstance(value, str) and value.lower() == "int8")):
        return torch.int8
    if isinstance(value, torch.dtype) and value in _DTYPES.values():
        return value
    if isinstance(value, str) and value.lower() in _DTYPES:
        return _DTYPES[value.lower()]
    extra = " ('int8' for the t2s stage only)" if not int8 else " or 'int8'"
    raise InvalidParameter(f"dtype {value!r} is not one of {sorted(_DTYPES)} (or a torch float dtype){extra}")


def _best_cpu_float() -> torch.dtype:
    from fastsovits.runtime import cpu_has_native_bf16

    return torch.bfloat16 if cpu_has_native_bf16() else torch.float32


def stage_dtypes(dtype, device: str) -> dict[str, torch.dtype]:
    """``dtype`` of :meth:`TTS.from_pretrained` -> {"t2s": ..., "sovits": ...}.

    ``torch.int8`` for the T2S stage means weight-only int8 linears with bf16 activations
    (``models/quant.py``; CPU only). Plain ``"int8"``: that for the T2S and, for the SoVITS, bf16 on a
    CPU with bf16 units, else fp32.
    """
    auto = torch.float16 if str(device).startswith("cuda") else torch.float32
    if dtype is torch.int8 or (isinstance(dtype, str) and dtype.strip().lower() == "int8"):
        dtype = {"t2s": "int8", "sovits": _best_cpu_float()}
    if isinstance(dtype, str) and "=" in dtype:  # the CLI's per-stage form: "t2s=bf16,sovits=fp32"
        pairs = [part.split("=", 1) for part in dtype.split(",") if part.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise InvalidParameter(f"dtype {dtype!r}: write stage=dtype pairs, e.g. t2s=bf16,sovits=fp32")
        dtype = {k.strip(): v.strip() for k, v in pairs}
    if isinstance(dtype, dict):
        unknown = set(dtype) - {"t2s", "sovits"}
        if unknown:
            raise InvalidParameter(f"dtype per stage takes the keys 't2s' and 'sovits', not {sorted(unknown)}")
        out = {
            k: auto if dtype.get(k, "auto") == "auto" else _as_dtype(dtype[k], int8=k == "t2s")
            for k in ("t2s", "sovits")
        }
    else:
        one = auto if dtype == "auto" else _as_dtype(dtype)
        out = {"t2s": one, "sovits": one}
    if out["t2s"] == torch.int8 and not device_is_cpu(device):
        raise InvalidParameter(f"dtype int8 (weight-only int8 T2S) runs on CPU only, not on {device!r}")
    return out


def _module_bytes(module: torch.nn.Module) -> int:
    tensors = {id(t): t for t in [*module.parameters(), *module.buffers()]}
    return sum(t.numel() * t.element_size() for t in tensors.values())


def device_is_cpu(device) -> bool:
    return str(device).startswith("cpu")


@dataclass(frozen=True)
class _ModelFiles:
    """What ``TTS.from_pretrained`` was given to find the models."""

    path: str | Path | None
    gpt: str | Path | None
    sovits: str | Path | None
    hubert_dir: str | Path | None
    bert_dir: str | Path | None
    sv: str | Path | None
    version: str | None
    vocoder: str | Path | None
    base: str | Path | None


def _default_version(available: list[str]) -> str:
    """The version a folder loads by default: v2ProPlus where present, else the newest one there."""
    return "v2ProPlus" if "v2ProPlus" in available or not available else available[-1]


class TTS:
    def __init__(
        self,
        t2s: Text2Semantic,
        synthesizer: Synthesizer | SynthesizerV3,
        *,
        version: str,
        vocoder: torch.nn.Module | None = None,
        hubert_dir: str | Path | None = None,
        bert_dir: str | Path | None = None,
        sv: str | Path | None = None,
        device: str = "cpu",
        num_slots: int | None = None,
        max_len: int | None = None,
        early_stop_num: int = MAX_NEW_TOKENS,
        t2s_threads: int | None = None,
        decode_threads: int | None = None,
        cuda_graphs: bool | None = None,
    ) -> None:
        """``num_slots``/``max_len`` size the KV cache (None: from the free memory, see ``engine/budget.py``);
        ``early_stop_num`` is the model's own cap on tokens per sentence (its ``max_sec`` × 25).
        v3/v4 (``SynthesizerV3``) need their ``vocoder`` (v3: BigVGAN, v4: the 48 kHz generator)."""
        from fastsovits.engine.compute_gate import control_thread
        from fastsovits.engine.engine import Engine
        from fastsovits.models.sovits_v3 import SynthesizerV3
        from fastsovits.models.v3_synthesis import WINDOWS

        self.t2s, self.synthesizer, self.version, self.device = t2s, synthesizer, version, device
        self.vocoder = vocoder
        self.in_context = isinstance(synthesizer, SynthesizerV3)
        # v3/v4 speak at their vocoder's rate; the official silence between sentences still counts in
        # samples of the SoVITS rate (32 kHz), which we follow so that outputs line up with the official ones.
        if isinstance(synthesizer, SynthesizerV3):
            self.sample_rate = WINDOWS[synthesizer.config.version].sampling_rate
        else:
            self.sample_rate = synthesizer.config.sampling_rate
        self._gap_rate = SPEC_RATE if self.in_context else self.sample_rate
        self.early_stop_num = early_stop_num
        self._paths = {"hubert": hubert_dir, "bert": bert_dir, "sv": sv}
        self._ssl: SSLExtractor | None = None
        self._bert: BertFeatureExtractor | None = None
        self._sv: SpeakerEncoder | None = None
        self._lock = threading.Lock()
        self._refs: OrderedDict[str, Reference] = OrderedDict()
        self.stage_seconds = {"frontend": 0.0, "reference": 0.0}
        self.engine = Engine(
            t2s,
            synthesizer,
            vocoder=vocoder,
            num_slots=num_slots,
            max_len=max_len,
            t2s_threads=t2s_threads,
            decode_threads=decode_threads,
            cuda_graphs=cuda_graphs,
        ).start()
        # With the CPU compute thread on, the frontend only coordinates (single-threaded, no OpenMP team).
        self._frontend = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="fastsovits-frontend",
            initializer=control_thread if self.engine.gate.enabled else None,
        )

    # ----------------------------------------------------------------------------- loading
    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None = None,
        *,
        gpt: str | Path | None = None,
        sovits: str | Path | None = None,
        hubert_dir: str | Path | None = None,
        bert_dir: str | Path | None = None,
        sv: str | Path | None = None,
        version: str | None = None,
        vocoder: str | Path | None = None,
        base: str | Path | None = None,
        device: str = "auto",
        dtype="auto",
        **engine_options,
    ) -> TTS:
        """A converted folder, an official ``pretrained_models/`` folder, or official files.

        v3/v4: a folder holds the vocoder (official layout or ``fastsovits convert``); with official
        files, ``vocoder`` is v4's ``vocoder.pth`` or v3's BigVGAN folder, and a LoRA ``sovits`` file
        needs the ``base`` model it was trained from (``version`` forces "v3"/"v4" where the official
        detection cannot tell).

        ``dtype``: ``"auto"`` (fp32 on CPU, fp16 on CUDA), one dtype for both stages (``torch.bfloat16``
        or ``"bf16"``, ``"fp16"``, ``"fp32"``), or per stage: ``{"t2s": "fp16", "sovits": "fp32"}``.
        CPU only: ``"int8"`` for the T2S stage (weight-only int8 linears, bf16 activations), alone
        (``"int8"``: the SoVITS in bf16 where the CPU has bf16 units, else fp32) or per stage
        (``{"t2s": "int8", "sovits": "bf16"}``, ``"t2s=int8,sovits=bf16"``).
        """
        device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        files = _ModelFiles(path, gpt, sovits, hubert_dir, bert_dir, sv, version, vocoder, base)
        args = (files, device, dtype, engine_options)
        if device_is_cpu(device):
            # On the process's one compute thread, like every heavy CPU call (engine/compute_gate.py):
            # loading is large tensor work, and a second thread doing it would keep an OpenMP team of its own.
            from fastsovits.engine.compute_gate import ComputeGate

            return ComputeGate.shared().run(cls._load_pretrained, *args)
        return cls._load_pretrained(*args)

    @classmethod
    def _load_pretrained(cls, files: _ModelFiles, device: str, dtype, engine_options: dict) -> TTS:
        from fastsovits.checkpoints.convert import CONFIG_FILE, load_converted
        from fastsovits.checkpoints.convert_v3 import CONFIG_FILE as V3_CONFIG_FILE
        from fastsovits.checkpoints.gpt import load_gpt
        from fastsovits.checkpoints.sovits import load_sovits
        from fastsovits.checkpoints.v3_files import resolve_v3, v3_version_of

        dtypes = stage_dtypes(dtype, device)
        if device_is_cpu(device):
            from fastsovits.runtime import cpu_has_native_bf16

            native = cpu_has_native_bf16()
            if (torch.bfloat16 in dtypes.values() or dtypes["t2s"] == torch.int8) and not native:  # int8: bf16 math
                log.warning(
                    "bf16 was asked for, but this CPU has no bf16 units (AVX512_BF16/AMX): torch emulates "
                    "it, which is much slower than fp32 here (docs/engine.md, 'Precision')"
                )
            elif dtype == "auto" and native:
                log.info(
                    "this CPU has bf16 units: dtype='bf16' (--dtype bf16) is faster than the fp32 default "
                    "(measured speed and accuracy: docs/engine.md, 'Precision')"
                )
        int8 = dtypes["t2s"] == torch.int8
        t2s_float = torch.float32 if int8 else dtypes["t2s"]  # int8 is quantized from the fp32 weights
        max_sec = None
        path, gpt, sovits, version = files.path, files.gpt, files.sovits, files.version
        hubert_dir, bert_dir, sv = files.hubert_dir, files.bert_dir, files.sv
        synth: Synthesizer | SynthesizerV3
        vocoder: torch.nn.Module | None = None
        if path is not None and (Path(path) / CONFIG_FILE).is_file():
            loaded = load_converted(path, device=device)
            v3 = None
            if (Path(path) / V3_CONFIG_FILE).is_file():
                v3 = resolve_v3(path, vocoder=files.vocoder, version=version, device=device, dtype=dtypes["sovits"])
            if loaded.t2s is None or (loaded.sovits is None and v3 is None):
                raise MissingResource(f"{Path(path).name} must hold both a GPT and a SoVITS model")
            t2s = loaded.t2s.to(t2s_float)
            if v3 is not None:
                synth, vocoder = v3.model, v3.vocoder
            else:
                assert loaded.sovits is not None
                synth = loaded.sovits.to(dtypes["sovits"])
            paths = loaded.config.get("paths", {})
            hubert_dir = hubert_dir or paths.get("hubert_dir")
            bert_dir = bert_dir or paths.get("bert_dir")
            sv = sv or paths.get("sv")
            max_sec = loaded.config["gpt"].get("max_sec")
        else:
            vocoder_path = files.vocoder
            if path is not None:
                from fastsovits.checkpoints.discovery import available_versions, discover

                found = discover(path, version or _default_version(available_versions(path)))
                gpt, sovits, version = found.gpt, found.sovits, found.version
                hubert_dir, bert_dir, sv = found.hubert_dir, found.bert_dir, found.sv
                vocoder_path = vocoder_path or found.vocoder
            if gpt is None or sovits is None:
                raise MissingResource("from_pretrained needs a model folder or both gpt= and sovits=")
            t2s, _, info = load_gpt(gpt, device=device, dtype=t2s_float)
            v3_version = v3_version_of(sovits, version)
            if v3_version is not None:
                v3 = resolve_v3(
                    sovits=sovits,
                    base=files.base,
                    vocoder=vocoder_path,
                    version=v3_version,
                    device=device,
                    dtype=dtypes["sovits"],
                )
                synth, vocoder = v3.model, v3.vocoder
            else:
                synth, _, _ = load_sovits(
                    sovits,
                    version if version and version.startswith("v") else None,
                    device=device,
                    dtype=dtypes["sovits"],
                )
            max_sec = info.max_sec
        if int8:
            from fastsovits.models.quant import quantize_t2s_

            quantize_t2s_(t2s)
        early = int(EARLY_STOP_HZ * max_sec) if max_sec else MAX_NEW_TOKENS
        return cls(
            t2s,
            synth,
            version=synth.config.version,
            vocoder=vocoder,
            hubert_dir=hubert_dir,
            bert_dir=bert_dir,
            sv=sv,
            device=device,
            early_stop_num=min(early, MAX_NEW_TOKENS),
            **engine_options,
        )

    def close(self) -> None:
        self._frontend.shutdown(wait=True, cancel_futures=True)
        self.engine.close()

    def __enter__(self) -> TTS:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _component(self, name: str):
        with self._lock:
            if name == "ssl" and self._ssl is None:
                from fastsovits.models.ssl import SSLExtractor

                if not self._paths["hubert"]:
                    raise MissingResource("reference audio needs the chinese-hubert-base folder (hubert_dir=)")
                self._ssl = SSLExtractor(self._paths["hubert"], self.device)
            if name == "bert" and self._bert is None and self._paths["bert"]:
                from fastsovits.text.bert import BertFeatureExtractor

                self._bert = BertFeatureExtractor(self._paths["bert"], self.device)
            if name == "sv" and self._sv is None:
                from fastsovits.models.sv import SpeakerEncoder

                if not self._paths["sv"]:
                    raise MissingResource(f"{self.version} needs the ERes2NetV2 speaker model (sv=)")
                self._sv = SpeakerEncoder.from_checkpoint(self._paths["sv"], self.device)
        return {"ssl": self._ssl, "bert": self._bert, "sv": self._sv}[name]

    # ----------------------------------------------------------------------------- text
    def _phones_and_bert(self, text: str, language: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._phones_and_bert_batch([text], language)[0]

    def _phones_and_bert_batch(self, texts: Sequence[str], language: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
        from fastsovits.text import phonemize
        from fastsovits.text.bert import phone_features_batch

        t0 = time.perf_counter()
        phs = [phonemize(t, language, self.version) for t in texts]
        needs_bert = any(seg.lang == "zh" for p in phs for seg in p.segments)
        if needs_bert:
            bert = self._component("bert")
            # a model call: takes its turn with the T2S and decode stages (CPU: on the compute thread)
            berts = self.engine.gate.run(phone_features_batch, phs, bert)
        else:
            berts = phone_features_batch(phs, None)
        self.stage_seconds["frontend"] += time.perf_counter() - t0
        return [(torch.tensor(p.phone_ids, dtype=torch.long), b) for p, b in zip(phs, berts)]

    # ----------------------------------------------------------------------------- references
    def load_reference(
        self, audio, text: str | None = None, language: str | None = None, aux: Sequence = ()
    ) -> Reference:
        """Prompt tokens, prompt phones/BERT and the style vector of a 3-10 s clip (cached by content)."""
        h = hashlib.sha256(_audio_bytes(audio))
        for a in aux:
            h.update(_audio_bytes(a))
        h.update(f"|{text}|{language}|{self.version}".encode())
        key = h.hexdigest()
        if key in self._refs:
            self._refs.move_to_end(key)
            return self._refs[key]
        # All of the encoding (resampling, spectrograms, HuBERT, SV, style) on the compute thread (CPU).
        ref = self.engine.gate.run(self._encode_reference, key, audio, text, language, aux)
        self._refs[key] = ref
        while len(self._refs) > REFERENCE_CACHE_SIZE:
            self._refs.popitem(last=False)
        return ref

    def _encode_reference(self, key: str, audio, text: str | None, language: str | None, aux: Sequence) -> Reference:
        from fastsovits.audio.dsp import reference_spectrogram
        from fastsovits.models.ssl import check_prompt_length

        t0 = time.perf_counter()
        wav16 = _load(audio, 16000)
        check_prompt_length(len(wav16))
        if self.in_context:
            ref = self._encode_in_context(key, audio, wav16, text, language)
            self.stage_seconds["reference"] += time.perf_counter() - t0
            return ref
        prompt_semantic = prompt_phones = prompt_bert = None
        if text:
            if not language:
                raise InvalidInput("the reference text needs its language")
            ssl = self._component("ssl")
            prompt_semantic = ssl.prompt_semantic(torch.from_numpy(wav16), self.synthesizer)
            prompt_phones, prompt_bert = self._phones_and_bert(text, language)
        synth = cast("Synthesizer", self.synthesizer)  # v3/v4 voices were built above
        specs, svs = [], []
        for clip in [audio, *aux]:
            wav32 = _load(clip, SPEC_RATE)
            specs.append(reference_spectrogram(torch.from_numpy(wav32)[None]))
            if synth.config.is_pro:
                sv = self._component("sv")
                svs.append(sv.embed([torch.from_numpy(_load(clip, 16000))]))
        with torch.no_grad():
            ge = synth.style(specs, svs or None)
        ref = Reference(key, prompt_semantic, prompt_phones, prompt_bert, ge)
        self.stage_seconds["reference"] += time.perf_counter() - t0
        return ref

    def _encode_in_context(
        self, key: str, audio, wav16: np.ndarray, text: str | None, language: str | None
    ) -> Reference:
        """v3/v4: the voice's in-context window (official: the reference text is required, aux clips unused)."""
        from fastsovits.audio.dsp import reference_spectrogram
        from fastsovits.models.v3_synthesis import WINDOWS, build_prompt

        if not text or not language:
            raise InvalidInput(
                f"{self.version} models need the reference text and its language (no reference-free mode)"
            )
        ssl = self._component("ssl")
        prompt_semantic = ssl.prompt_semantic(torch.from_numpy(wav16), self.synthesizer)
        prompt_phones, prompt_bert = self._phones_and_bert(text, language)
        device = next(self.synthesizer.parameters()).device
        spec = reference_spectrogram(torch.from_numpy(_load(audio, SPEC_RATE))[None]).to(device)
        wav_mel = torch.from_numpy(_load(audio, WINDOWS[self.synthesizer.config.version].mel_rate))
        prompt = build_prompt(
            self.synthesizer,  # type: ignore[arg-type]
            prompt_semantic.view(1, 1, -1).to(device),
            prompt_phones.view(1, -1).to(device),
            spec.to(next(self.synthesizer.parameters()).dtype),
            wav_mel,
        )
        return Reference(key, prompt_semantic, prompt_phones, prompt_bert, prompt.ge, prompt)

    # ----------------------------------------------------------------------------- engine
    def stats(self) -> EngineStats:
        """The engine's snapshot (slots, rows, totals, batch-size histogram, stage busy seconds incl. the
        frontend and reference encoding)."""
        snap = self.engine.stats()
        return replace(snap, stage_seconds={**snap.stage_seconds, **self.stage_seconds})

    def memory(self) -> MemoryReport:
        """Bytes of the model weights per stage and of the KV cache."""
        snap = self.engine.stats()
        return MemoryReport(
            {
                "t2s": _module_bytes(self.t2s),
                "sovits": _module_bytes(self.synthesizer),
                **({"vocoder": _module_bytes(self.vocoder)} if self.vocoder is not None else {}),
            },
            snap.kv_cache_bytes,
            snap.num_slots,
            snap.max_len,
        )

    def add_step_listener(self, fn: Callable[[int], None]) -> None:
        """``fn(rows)`` runs on the engine thread after every T2S decode step (keep it cheap)."""
        self.engine.add_step_listener(fn)

    def run_on_compute_thread(self, fn: Callable[..., T], *args: object) -> T:
        """Run heavy torch work of your own where the engine's CPU work runs (see docs/engine.md)."""
        return self.engine.gate.run(fn, *args)

    # ----------------------------------------------------------------------------- synthesis
    def submit(
        self,
        text: str,
        reference: Reference,
        language: str,
        params: SynthesisParams | None = None,
        *,
        stream: bool | None = None,
        split: bool = True,
    ) -> SynthesisHandle:
        """Queue a request and return at once with its handle (bad input raises here).

        The text is pre-segmented now and its first sentence phonemized now; the others are
        phonemized by the frontend worker while the first ones already generate. ``stream``: token
        streaming inside sentences (default ``params.streaming_mode``). ``split=False``: ``text`` is
        one sentence as ``presegment`` returns it, synthesised as it is."""
        from fastsovits.engine.jobs import build_sentence_job
        from fastsovits.text import presegment

        params = params or SynthesisParams()
        stream = params.streaming_mode if stream is None else stream
        # v3/v4 sentences are decoded whole (their CFM window spans the sentence): they stream sentence by sentence.
        stream = stream and not self.in_context
        if not isinstance(text, str) or not text.strip():
            raise EmptyText("the text is empty")
        if not isinstance(reference, Reference):
            raise InvalidInput(f"reference must be a Reference from load_reference, got {type(reference).__name__}")
        sentences = presegment(text, language.replace("all_", ""), params.text_split_method) if split else [text]
        if not sentences:
            raise EmptyText("the text has nothing to read")
        phones, bert = self._phones_and_bert(sentences[0], language)
        first = build_sentence_job(0, phones, bert, reference, params, stream=stream, token_cap=self._token_cap)
        job = self.engine.open_job(len(sentences))
        self.engine.add_sentences(job, 0, [first])
        if len(sentences) > 1:
            self._frontend.submit(self._feed, job, sentences, reference, language, params, stream)
        aligner = SentenceAligner(self, reference, language) if params.timestamps else None
        return SynthesisHandle(job, sentences, params, self.sample_rate, stream, aligner, self._gap_rate)

    @property
    def _token_cap(self) -> int:
        return min(self.early_stop_num + 1, MAX_NEW_TOKENS)  # the official loop keeps the token past the cap

    def _feed(
        self, job, sentences: list[str], reference: Reference, language: str, params: SynthesisParams, stream: bool
    ) -> None:
        from fastsovits.engine.jobs import build_sentence_job

        try:
            for start in range(1, len(sentences), FRONTEND_GROUP):
                if job.done or job.cancelled:  # cancelled or failed: stop phonemizing
                    return
                group = sentences[start : start + FRONTEND_GROUP]
                jobs = [
                    build_sentence_job(
                        start + k, phones, bert, reference, params, stream=stream, token_cap=self._token_cap
                    )
                    for k, (phones, bert) in enumerate(self._phones_and_bert_batch(group, language))
                ]
                self.engine.add_sentences(job, start, jobs)
        except Exception as e:  # noqa: BLE001 - the job fails with it; the caller sees it from its handle
            self.engine.fail(job, e)

    def synthesize(
        self, text: str, reference: Reference, language: str, params: SynthesisParams | None = None
    ) -> SynthesisResult:
        return self.submit(text, reference, language, params, stream=False).result()

    def synthesize_batch(
        self, items: Sequence[tuple[str, Reference, str, SynthesisParams | None]]
    ) -> list[SynthesisResult]:
        """Submit every item first, so the engine batches across them; results in the given order."""
        handles = [self.submit(t, r, lang, p, stream=False) for t, r, lang, p in items]
        return [h.result() for h in handles]

    def stream(
        self, text: str, reference: Reference, language: str, params: SynthesisParams | None = None
    ) -> SynthesisHandle:
        """Audio in order, each piece yielded as soon as it is decoded.

        ``params.streaming_mode`` False: one chunk per sentence (official ``return_fragment``);
        True: pieces inside a sentence while it is generated (official token streaming; chunks of
        ``min_chunk_length`` tokens, cut at silences unless ``fixed_length_chunk``, cross-faded over
        ``overlap_length`` tokens). The ``fragment_interval`` silence follows each sentence's last
        piece, and that piece carries the sentence's :class:`SentenceResult`. The request is submitted
        at once (bad input raises here). ``cancel()`` (from any thread) or closing the iterator early
        cancels it and frees its engine slots.
        """
        return self.submit(text, reference, language, params)

    def stream_text(
        self,
        chunks: Iterable[str] | AsyncIterable[str],
        reference: Reference,
        language: str,
        params: SynthesisParams | None = None,
        limits: TextStreamLimits | None = None,
    ) -> TextStream | AsyncIterator[AudioChunk]:
        """Speech of text that is still arriving (an LLM's tokens): ``AudioChunk`` pieces in order.

        A sentence starts generating as soon as the text can close it, while later text still
        arrives (``fastsovits/text_stream.py``, ``fastsovits/text/incremental.py``). Sentence ``i``
        takes seed ``params.seed + i`` like sentence ``i`` of one-shot synthesis. An async iterable
        gives an async iterator; the bounds are ``limits`` (default ``TextStreamLimits()``)."""
        from fastsovits.text_stream import stream_text

        return stream_text(self, chunks, reference, language, params, limits)


def _normalised(piece: np.ndarray) -> np.ndarray:
    """A sentence's audio scaled into [-1, 1] when it peaks above (as the official output)."""
    peak = float(np.abs(piece).max()) if piece.size else 0.0
    return piece / peak if peak > 1.0 else piece


class SynthesisHandle(Iterator[AudioChunk]):
    """A submitted request (from :meth:`TTS.submit` or :meth:`TTS.stream`).

    Either iterate it (``AudioChunk`` pieces in order, as soon as each is decoded) or call
    ``result()`` (the whole :class:`SynthesisResult`), not both. ``cancel()`` is thread-safe: the
    engine drops the request at once and a blocked ``next()``/``result()`` raises ``Cancelled``.
    ``sentences`` holds the texts of the sentences the request was split into."""

    def __init__(
        self,
        job,
        sentences: list[str],
        params: SynthesisParams,
        sample_rate: int,
        token_streaming: bool,
        aligner: SentenceAligner | None = None,
        gap_rate: int | None = None,
    ) -> None:
        """``gap_rate``: samples per second of ``fragment_interval`` (default ``sample_rate``)."""
        self._job, self.sentences, self.params, self.sample_rate = job, list(sentences), params, sample_rate
        self._token_streaming = token_streaming
        self._aligner = aligner  # word timestamps (params.timestamps)
        self._finished: dict[int, SentenceResult] = {}  # sentences delivered so far
        self._gap = np.zeros(int((gap_rate or sample_rate) * params.fragment_interval), dtype=np.float32)
        self._chunks = self._generate()

    @property
    def request_id(self) -> str:
        return self._job.request_id

    @property
    def done(self) -> bool:
        return bool(self._job.done)

    def _sentence(self, index: int, samples: int) -> SentenceResult:
        outcome = self._job.outcomes[index]
        done = SentenceResult(
            index,
            self.sentences[index].strip(),
            outcome.stop_reason,
            len(outcome.tokens),
            outcome.phones,
            samples / self.sample_rate,
            outcome.retries,
            outcome.guard,
        )
        self._finished[index] = done
        return done

    def timestamps(self) -> tuple[SentenceTimestamps, ...]:
        """Start and end (seconds into the request's audio) of each sentence delivered so far, and of its
        words with ``params.timestamps`` (then one T2S forward per sentence runs here)."""
        tokens = {i: self._job.outcomes[i].tokens for i in self._finished}
        return request_timestamps(
            list(self._finished.values()), len(self._gap) / self.sample_rate, self.sentences, tokens, self._aligner
        )

    def _generate(self) -> Iterator[AudioChunk]:
        n = len(self.sentences)
        samples_in_sentence = 0
        try:
            for ev in self._job.events():
                if self._token_streaming:
                    samples = np.clip(ev.audio, -1.0, 1.0).astype(np.float32)
                    if ev.final:
                        samples = np.concatenate([samples, self._gap])
                else:
                    samples = np.concatenate([_normalised(ev.audio), self._gap]).astype(np.float32)
                samples_in_sentence += len(ev.audio)
                sentence = None
                if ev.final:
                    sentence = self._sentence(ev.index, samples_in_sentence)
                    samples_in_sentence = 0
                yield AudioChunk(
                    samples, self.sample_rate, index=ev.index, is_last=ev.final and ev.index == n - 1, sentence=sentence
                )
        finally:
            if not self._job.done:
                self._job.cancel()

    def __iter__(self) -> SynthesisHandle:
        return self

    def __next__(self) -> AudioChunk:
        return next(self._chunks)

    def result(self, timeout: float | None = None) -> SynthesisResult:
        """Wait for every sentence; the audio is the sentences joined with ``fragment_interval`` pauses."""
        pieces = self._job.result(timeout)
        out: list[np.ndarray] = []
        for p in pieces:
            out += [_normalised(p), self._gap]
        samples = np.concatenate(out).astype(np.float32)
        sentences = tuple(self._sentence(i, len(p)) for i, p in enumerate(pieces))
        return SynthesisResult(samples, self.sample_rate, sentences=sentences, timestamps=self.timestamps())

    def cancel(self) -> None:
        if not self._job.done:
            self._job.cancel()

    def close(self) -> None:
        self._chunks.close()  # type: ignore[attr-defined]  # a generator: its finally cancels the request


AudioStream = SynthesisHandle  # the name TTS.stream's result had before it could also give result()
