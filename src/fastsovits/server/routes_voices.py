"""``POST/GET/DELETE /v1/voices``: register a reference clip once, then name it in any request.

A voice is validated when it is created (decoded, mono, 16-48 kHz, 3-10 s, its text readable in
its language) by encoding it on its model, so a bad clip is a 4xx now, not in a later request.
"""

from __future__ import annotations

import base64
import binascii

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from fastsovits.errors import InvalidParameter
from fastsovits.server.schemas import VoiceCreate
from fastsovits.server.voices import Voice, check_clip, check_name

router = APIRouter()


def _b64(data: str, field: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidParameter(f"{field} must be base64 of an audio file") from None


async def _read_body(request: Request) -> VoiceCreate | tuple:
    kind = request.headers.get("content-type", "")
    if kind.startswith("multipart/form-data"):
        form = await request.form()
        audio = form.get("audio")
        if audio is None or isinstance(audio, str):
            raise InvalidParameter("multipart field 'audio' must be a file")
        clips = [await audio.read()] + [await a.read() for a in form.getlist("aux") if not isinstance(a, str)]
        fields = {k: form.get(k) for k in ("name", "text", "language", "model")}
        replace = str(form.get("replace", "false")).lower() in ("1", "true", "yes")
        return fields, clips, replace
    try:
        body = VoiceCreate.model_validate_json(await request.body())
    except ValidationError as e:
        err = e.errors()[0]
        raise InvalidParameter(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    clips = [_b64(body.audio, "audio")] + [_b64(a, "aux") for a in body.aux]
    return {"name": body.name, "text": body.text, "language": body.language, "model": body.model}, clips, body.replace


@router.post("/v1/voices", status_code=201)
async def create_voice(request: Request):
    st = request.app.state.fastsovits
    fields, clips, replace = await _read_body(request)
    name = check_name(fields["name"] or "")
    if fields["model"]:
        st.models.spec(fields["model"])
    if fields["text"] and len(fields["text"]) > st.config.max_text_chars:
        raise InvalidParameter(f"text has {len(fields['text'])} characters; at most {st.config.max_text_chars}")
    for clip in clips:
        await to_thread.run_sync(check_clip, clip, st.config.max_audio_seconds)
    language = (fields["language"] or "").lower() or None
    voice = Voice(name, clips[0], fields["text"] or None, language, tuple(clips[1:]), fields["model"] or None)
    if name in st.voices and not replace:
        st.voices.add(voice)  # raises Conflict before any model work
    await st.service.reference(voice)
    st.voices.add(voice, replace=replace)
    return JSONResponse(voice.info(), status_code=201)


@router.get("/v1/voices")
async def list_voices(request: Request):
    st = request.app.state.fastsovits
    return {"object": "list", "data": [v.info() for v in st.voices.list()], "default": st.voices.default}


@router.get("/v1/voices/{name}")
async def get_voice(request: Request, name: str):
    return request.app.state.fastsovits.voices.get(name).info()


@router.delete("/v1/voices/{name}")
async def delete_voice(request: Request, name: str):
    request.app.state.fastsovits.voices.remove(name)
    return {"id": name, "object": "voice", "deleted": True}
