"""Checks a new voice passes before anything is stored or encoded, cheapest first.

1. ``check_fields``: the name's pattern, the text's length, the language, the number of clips.
2. ``probe_clips``: each clip's header (libsndfile reads it without decoding): mono, 16-48 kHz,
   the reference 3-10 s, each auxiliary clip at most ``max_clip_seconds``, all auxiliary clips
   together at most ``max_aux_seconds``. A few kB of compressed silence that claims hours is
   refused here, before a sample is decoded.
3. ``decode_clips``: decode, never more frames than the header-checked bound allows (a header that
   lies cannot make the decoder run longer), and check the decoded length and samples again.

The server, the CLI and the WebUI call :func:`check_voice` (all three) with the same limits.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fastsovits.errors import InvalidParameter, ReferenceAudioError, TextTooLong, UnsupportedLanguage
from fastsovits.models.ssl import MAX_SAMPLES_16K, MIN_SAMPLES_16K

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MIN_RATE, MAX_RATE = 16000, 48000  # below 16 kHz the SSL model gets less than it needs; above: not a speech clip
REF_MIN_SECONDS, REF_MAX_SECONDS = MIN_SAMPLES_16K / 16000, MAX_SAMPLES_16K / 16000  # the official 3-10 s rule


class ClipTooLong(ReferenceAudioError):
    """A clip (or all auxiliary clips together) longer than the limits allow: HTTP 413."""

    status = 413


@dataclass(frozen=True)
class VoiceLimits:
    """What one new voice may hold; the one source of these bounds (server options override them)."""

    max_text_chars: int = 500  # the reference's transcript (a 10 s clip holds far fewer characters)
    max_aux_clips: int = 8  # auxiliary clips averaged into the style vector
    max_clip_seconds: float = 30.0  # any one auxiliary clip
    max_aux_seconds: float = 60.0  # all auxiliary clips together


@dataclass(frozen=True)
class ClipInfo:
    seconds: float
    sample_rate: int
    frames: int
    format: str


def known_languages() -> tuple[str, ...]:
    """Every language mode some model version reads (a model's own version is checked when it encodes)."""
    from fastsovits.text.frontend import MODES

    return tuple(sorted({mode for modes in MODES.values() for mode in modes}))


def check_name(name: object) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidParameter(
            f"voice name {name!r} must be 1-64 characters of letters, digits, '_', '-', '.' "
            "starting with a letter or digit"
        )
    return name


def check_fields(
    name: object, text: str | None, language: str | None, n_aux: int, limits: VoiceLimits
) -> tuple[str, str | None, str | None]:
    """-> (name, text or None, language lower-cased or None); raises before any audio is looked at."""
    check_name(name)
    if n_aux > limits.max_aux_clips:
        raise InvalidParameter(f"{n_aux} auxiliary clips; a voice takes at most {limits.max_aux_clips}")
    text = text or None
    if text is not None and len(text) > limits.max_text_chars:
        raise TextTooLong(f"the voice's text has {len(text)} characters; at most {limits.max_text_chars}")
    if text is not None and not text.strip():
        text = None
    language = (language or "").strip().lower() or None
    if language is not None and language not in known_languages():
        raise UnsupportedLanguage(f"language {language!r} is not one of {list(known_languages())}")
    if text is not None and language is None:
        raise InvalidParameter("a voice with a text needs the text's language")
    return name, text, language  # type: ignore[return-value]


def _libsndfile_message(e: Exception) -> str:
    return str(getattr(e, "error_string", "") or "unknown format").strip()


def probe_clip(data: bytes, what: str) -> ClipInfo:
    """Duration, rate and format of an audio file from its header (nothing decoded)."""
    import soundfile as sf

    if not data:
        raise ReferenceAudioError(f"{what} is empty")
    try:
        info = sf.info(io.BytesIO(data))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise ReferenceAudioError(f"{what} is not an audio file this server reads ({_libsndfile_message(e)})") from None
    if info.channels != 1:
        raise ReferenceAudioError(f"{what} has {info.channels} channels; send a mono clip")
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise ReferenceAudioError(f"{what}'s sample rate {info.samplerate} Hz is outside [{MIN_RATE}, {MAX_RATE}]")
    if not 0 < info.frames < 2**40:
        raise ReferenceAudioError(f"{what} does not state its length")
    return ClipInfo(info.frames / info.samplerate, int(info.samplerate), int(info.frames), str(info.format))


def probe_clips(clips: Sequence[bytes], limits: VoiceLimits) -> list[ClipInfo]:
    """Header checks of the reference (``clips[0]``) and the auxiliary clips; nothing is decoded."""
    if not clips:
        raise ReferenceAudioError("a voice needs its reference clip")
    infos = []
    for i, clip in enumerate(clips):
        what = "the reference audio" if i == 0 else f"auxiliary clip {i}"
        info = probe_clip(clip, what)
        if info.seconds > limits.max_clip_seconds:
            raise ClipTooLong(
                f"{what} lasts {info.seconds:.1f} s; this server accepts at most {limits.max_clip_seconds:g} s"
            )
        if i == 0 and not REF_MIN_SECONDS <= info.seconds <= REF_MAX_SECONDS:
            raise ReferenceAudioError(
                f"the reference audio lasts {info.seconds:.2f} s; it must last "
                f"{REF_MIN_SECONDS:g} to {REF_MAX_SECONDS:g} seconds"
            )
        infos.append(info)
    total = sum(info.seconds for info in infos[1:])
    if total > limits.max_aux_seconds:
        raise ClipTooLong(f"the auxiliary clips last {total:.1f} s together; at most {limits.max_aux_seconds:g} s")
    return infos


def decode_clips(clips: Sequence[bytes], infos: Sequence[ClipInfo]) -> None:
    """Decode each clip (at most its header's frames + 1) and check what came out."""
    import soundfile as sf

    for i, (clip, info) in enumerate(zip(clips, infos)):
        what = "the reference audio" if i == 0 else f"auxiliary clip {i}"
        try:
            samples, _ = sf.read(io.BytesIO(clip), frames=info.frames + 1, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
            raise ReferenceAudioError(f"{what} cannot be decoded ({_libsndfile_message(e)})") from None
        if len(samples) > info.frames:
            raise ReferenceAudioError(f"{what} holds more audio than its header states")
        seconds = len(samples) / info.sample_rate
        if i == 0 and seconds < REF_MIN_SECONDS:
            raise ReferenceAudioError(
                f"the reference audio decodes to {seconds:.2f} s; it must last "
                f"{REF_MIN_SECONDS:g} to {REF_MAX_SECONDS:g} seconds"
            )
        if len(samples) == 0:
            raise ReferenceAudioError(f"{what} has no samples")
        if not np.isfinite(samples).all():
            raise ReferenceAudioError(f"{what} contains NaN or infinite samples")


def check_voice(
    name: object, text: str | None, language: str | None, clips: Sequence[bytes], limits: VoiceLimits
) -> tuple[str, str | None, str | None]:
    """All three steps; -> (name, text, language) normalised. Decodes at most the bounded durations."""
    fields = check_fields(name, text, language, max(len(clips) - 1, 0), limits)
    decode_clips(clips, probe_clips(clips, limits))
    return fields
