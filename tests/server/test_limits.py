"""Every client-controlled cost is refused before the work: clip length from the header, clip count and size,
string lengths, JSON nesting; and every refusal is in the error shape.

The refusals are measured by the server's peak RSS (``VmHWM``, reset through ``/proc/<pid>/clear_refs``)
and by wall time; the bounds asserted are generous (the work refused would cost hundreds of MB or seconds).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.server.conftest import REF_TEXT, reference_clip, wav_bytes

PEAK_GROWTH_MB = 100  # the refused work: a 1 h 48 kHz clip decodes to 660 MiB of float32
REFUSAL_S = 5.0


def long_flac(seconds: int, rate: int = 48000) -> bytes:
    """A FLAC of silence: a few hundred KB that decode to ``seconds`` of samples."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, 1, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros(rate * 60, np.float32)
        for _ in range(seconds // 60):
            f.write(block)
    return buf.getvalue()


@pytest.fixture(scope="module")
def hour_flac(server_files: Path) -> str:
    (server_files / "refs" / "hour.flac").write_bytes(long_flac(3600))
    return "hour.flac"


class Peak:
    """The server's peak RSS growth over a block (MiB)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def _hwm(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
        raise AssertionError("no VmHWM")

    def __enter__(self) -> Peak:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # peak RSS := current RSS
        self.start, self.t0 = self._hwm(), time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.monotonic() - self.t0
        self.growth_mb = self._hwm() - self.start


def _refused(r, status: int, *kinds: str) -> None:
    assert r.status_code == status, r.text[:500]
    body = r.json()
    assert body["error"]["type"] in kinds and body["error"]["code"] == status and body["message"]


def test_long_clip_refused_from_its_header(server, client, hour_flac) -> None:
    data = (Path(server.log.name).parent / "refs" / hour_flac).read_bytes()
    requests = {
        "tts": lambda: client.get("/tts", params={"text": "Hi.", "text_lang": "en", "ref_audio_path": hour_flac}),
        "set_refer_audio": lambda: client.get("/set_refer_audio", params={"refer_audio_path": hour_flac}),
        "voices": lambda: client.post(
            "/v1/voices",
            files={"audio": ("a.flac", data, "audio/flac")},
            data={"name": "long", "text": REF_TEXT, "language": "en"},
        ),
    }
    for name, call in requests.items():
        with Peak(server.proc.pid) as peak:
            r = call()
        _refused(r, 413, "PayloadTooLarge", "ClipTooLong")  # the voice routes name the clip's own error
        assert "3600" in r.json()["message"], r.text
        print(f"{name}: refused a {len(data)}-byte 1 h FLAC in {peak.seconds:.3f} s, peak RSS +{peak.growth_mb} MiB")
        assert peak.growth_mb < PEAK_GROWTH_MB and peak.seconds < REFUSAL_S, name


def test_aux_clips_counted_before_any_is_read(server, client) -> None:
    body = {"text": "Hi.", "text_lang": "en", "ref_audio_path": "ref.wav", "aux_ref_audio_paths": ["ref.wav"] * 2000}
    with Peak(server.proc.pid) as peak:
        r = client.post("/tts", json=body)
    _refused(r, 413, "PayloadTooLarge")
    assert "aux_ref_audio_paths" in r.json()["message"]
    print(f"2000 aux clips refused in {peak.seconds:.3f} s, peak RSS +{peak.growth_mb} MiB")
    assert peak.growth_mb < PEAK_GROWTH_MB and peak.seconds < REFUSAL_S
    r = client.get(
        "/tts",
        params={"text": "Hi.", "text_lang": "en", "ref_audio_path": "ref.wav", "aux_ref_audio_paths": ["ref.wav"] * 9},
    )  # one over the default 8
    _refused(r, 413, "PayloadTooLarge")


def test_clip_file_size_checked_before_reading(server_files, client) -> None:
    big = server_files / "refs" / "big.wav"
    with open(big, "wb") as f:
        f.truncate(17 * 2**20)  # over the 16 MiB default; sparse, so the test writes nothing
    r = client.get(
        "/tts",
        params={"text": "Hi.", "text_lang": "en", "ref_audio_path": "ref.wav", "aux_ref_audio_paths": ["big.wav"]},
    )
    _refused(r, 413, "PayloadTooLarge")
    assert str(server_files) not in r.text


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"text_lang": "e" * 2000}, 413, "PayloadTooLarge"),
        ({"ref_audio_path": "a" * 2000}, 413, "PayloadTooLarge"),
        ({"prompt_text": "word " * 500, "prompt_lang": "en"}, 400, "TextTooLong"),
        ({"top_k": True}, 400, "InvalidParameter"),
        ({"temperature": True}, 400, "InvalidParameter"),
    ],
)
def test_tts_fields_bounded(client, params, status, kind) -> None:
    r = client.post("/tts", json={"text": "Hi.", "text_lang": "en", "voice": "ref", **params})
    _refused(r, status, kind)


def test_openai_fields_bounded(client) -> None:
    base = {"model": "tts-1", "input": "Hi.", "voice": "ref"}
    _refused(client.post("/v1/audio/speech", json={**base, "instructions": "x" * 3000}), 400, "TextTooLong")
    _refused(client.post("/v1/audio/speech", json={**base, "voice": {"id": "v" * 2000}}), 413, "PayloadTooLarge")
    _refused(client.post("/v1/audio/speech", json={**base, "voice": {"id": 5}}), 400, "InvalidParameter")
    _refused(client.post("/v1/audio/speech", json={**base, "speed": True}), 400, "InvalidParameter")
    _refused(client.post("/v1/audio/speech", json={**base, "model": "m" * 2000}), 413, "PayloadTooLarge")


def test_parse_failures_in_the_error_shape(client) -> None:
    json_type = {"content-type": "application/json"}
    deep = b'{"model": "tts-1", "input": "Hi.", "voice": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    cases = [
        client.post("/v1/audio/speech", content=b'{"input": "\xff\xfe"}', headers=json_type),
        client.post("/v1/audio/speech", content=deep, headers=json_type),
        client.post("/tts", content=b'{"text": ' + b"[" * 20 + b"]" * 20 + b"}", headers=json_type),
        client.post(
            "/v1/audio/speech",
            content=b"--x\r\nnot a form",
            headers={"content-type": "multipart/form-data; boundary=x"},
        ),
        client.post("/v1/voices", content=b"--x\r\nnot a form", headers={"content-type": "multipart/form-data"}),
        client.get("/no/such/route"),
        client.put("/tts"),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, r.text
        assert "detail" not in r.json(), r.text
        assert r.json()["error"]["type"] and r.json()["message"], r.text
    assert cases[0].status_code == 400 and "UTF-8" in cases[0].json()["message"]
    assert cases[1].status_code == 400 and "nests" in cases[1].json()["message"]
    assert cases[-2].status_code == 404 and cases[-1].status_code == 405


def test_no_object_reprs_in_messages(client) -> None:
    r = client.post(
        "/v1/voices",
        files={"audio": ("a.wav", b"RIFF\x00\x00garbage" * 10, "audio/wav")},
        data={"name": "bad", "text": REF_TEXT, "language": "en"},
    )
    assert r.status_code == 400 and r.json()["error"]["type"] == "ReferenceAudioError"
    assert "<" not in r.json()["message"] and "0x" not in r.json()["message"], r.text


@pytest.mark.parametrize(
    ("clip", "kind"),
    [
        (wav_bytes(reference_clip()[:32000], 32000), "ReferenceAudioError"),  # 1 s: under the 3-10 s rule
        (wav_bytes(np.tile(reference_clip(), 4)[: 32000 * 12], 32000), "ReferenceAudioError"),  # 12 s: over it
        (b"RIFF\x00\x00garbage" * 10, "ReferenceAudioError"),  # not audio
        (wav_bytes(np.stack([reference_clip()] * 2, axis=1), 32000), "ReferenceAudioError"),  # stereo
    ],
)
def test_set_refer_audio_validates_as_uploads_and_keeps_a_working_default(server_files, client, clip, kind) -> None:
    (server_files / "refs" / "candidate.wav").write_bytes(clip)
    r = client.get("/set_refer_audio", params={"refer_audio_path": "candidate.wav"})
    _refused(r, 400, kind)
    r = client.get("/tts", params={"text": "Still the old default.", "text_lang": "en"})
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
