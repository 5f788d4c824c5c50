"""A new voice's checks: each bound refused with an input just over it, from the header, before decoding."""

from __future__ import annotations

import pytest
import soundfile as sf

from fastsovits.errors import InvalidParameter, ReferenceAudioError, TextTooLong, UnsupportedLanguage
from fastsovits.voices import validate
from fastsovits.voices.validate import ClipTooLong, VoiceLimits, check_fields, check_voice
from tests.voices.conftest import audio_bytes

LIMITS = VoiceLimits()


@pytest.fixture()
def no_decoding(monkeypatch):
    """Any decode of samples fails the test: the refusals below come from headers alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("audio was decoded")

    monkeypatch.setattr(sf, "read", refuse)


def test_a_good_voice_passes() -> None:
    clips = [audio_bytes(3.5), audio_bytes(5.0, 16000, "FLAC"), audio_bytes(2.0, 48000, "OGG")]
    assert check_voice("ok-voice_1.x", "Hello there.", " EN ", clips, LIMITS) == ("ok-voice_1.x", "Hello there.", "en")
    assert check_voice("style", None, None, clips[:1], LIMITS) == ("style", None, None)


@pytest.mark.parametrize("name", ["", "-lead", "a/b", "../x", "x" * 65, "sp ace", None, 3])
def test_name_pattern(name) -> None:
    with pytest.raises(InvalidParameter):
        check_fields(name, None, None, 0, LIMITS)


def test_fields_just_over_their_bounds() -> None:
    check_fields("v", "x" * LIMITS.max_text_chars, "en", LIMITS.max_aux_clips, LIMITS)
    with pytest.raises(TextTooLong):
        check_fields("v", "x" * (LIMITS.max_text_chars + 1), "en", 0, LIMITS)
    with pytest.raises(InvalidParameter, match="auxiliary clips"):
        check_fields("v", None, None, LIMITS.max_aux_clips + 1, LIMITS)
    with pytest.raises(UnsupportedLanguage):
        check_fields("v", "hi", "xx", 0, LIMITS)
    with pytest.raises(InvalidParameter, match="language"):
        check_fields("v", "hi", None, 0, LIMITS)


def test_reference_duration_from_the_header(no_decoding) -> None:
    for seconds in (2.99, 10.02):
        with pytest.raises(ReferenceAudioError, match="3 to 10 seconds"):
            validate.probe_clips([audio_bytes(seconds)], LIMITS)
    validate.probe_clips([audio_bytes(3.0)], LIMITS)


def test_hours_of_compressed_silence_are_refused_unread(no_decoding) -> None:
    hour = audio_bytes(3600, 16000, "FLAC", silent=True)
    assert len(hour) < 2**20  # a small upload that would decode to GBs of samples
    with pytest.raises(ClipTooLong, match="auxiliary clip 1 lasts 3600"):
        validate.probe_clips([audio_bytes(3.5), hour], LIMITS)
    with pytest.raises(ClipTooLong, match="reference audio lasts 3600"):
        validate.probe_clips([hour], LIMITS)


def test_auxiliary_durations_just_over(no_decoding) -> None:
    each = audio_bytes(LIMITS.max_clip_seconds + 0.05, 16000, "FLAC", silent=True)
    with pytest.raises(ClipTooLong, match="auxiliary clip 1"):
        validate.probe_clips([audio_bytes(3.5), each], LIMITS)
    n = 4
    part = audio_bytes(LIMITS.max_aux_seconds / n + 0.05, 16000, "FLAC", silent=True)
    with pytest.raises(ClipTooLong, match="together"):
        validate.probe_clips([audio_bytes(3.5)] + [part] * n, LIMITS)
    ok = audio_bytes(LIMITS.max_aux_seconds / n - 0.05, 16000, "FLAC", silent=True)
    validate.probe_clips([audio_bytes(3.5)] + [ok] * n, LIMITS)


def test_format_channels_rate(no_decoding) -> None:
    with pytest.raises(ReferenceAudioError, match="channels"):
        validate.probe_clips([audio_bytes(3.5, channels=2)], LIMITS)
    with pytest.raises(ReferenceAudioError, match="sample rate"):
        validate.probe_clips([audio_bytes(3.5, 8000)], LIMITS)
    with pytest.raises(ReferenceAudioError) as e:
        validate.probe_clips([b"RIFF not really audio" * 10], LIMITS)
    assert "BytesIO" not in str(e.value) and "0x" not in str(e.value)
    with pytest.raises(ReferenceAudioError, match="empty"):
        validate.probe_clips([b""], LIMITS)


def test_decoding_stops_at_the_header_bound() -> None:
    clip = audio_bytes(4.0)
    infos = validate.probe_clips([clip], LIMITS)
    validate.decode_clips([clip], infos)
    lying = [validate.ClipInfo(3.0, 32000, 3 * 32000, "WAV")]  # a header that understates the length
    with pytest.raises(ReferenceAudioError, match="more audio than its header"):
        validate.decode_clips([clip], lying)
