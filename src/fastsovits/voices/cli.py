"""``fastsovits voices list|add|rm|export|import``: the voice store from the command line.

Wire it into ``fastsovits.cli.build_parser`` with ``add_voices_parser(sub)``; the parser's
``func`` is :func:`cmd_voices`. The store is the server's: ``--data-dir`` (or
``$FASTSOVITS_DATA_DIR``, else the user data folder). ``add`` stores the clip, its text and
language after the same checks as an upload; a model computes the features on first use.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fastsovits.errors import InvalidInput

DATA_DIR_HELP = (
    "folder of the voice store (default: $FASTSOVITS_DATA_DIR, else ~/.local/share/fastsovits or the "
    "platform's user data folder)"
)


def add_voices_parser(subparsers) -> argparse.ArgumentParser:
    """Add ``voices`` and its commands to a ``add_subparsers()`` object; returns the ``voices`` parser."""
    vp = subparsers.add_parser(
        "voices",
        help="list, add, remove, export and import stored voices (the server's voice store)",
        description="The voice store the server keeps uploaded voices in (SQLite, in the data folder).",
    )
    vp.add_argument("--data-dir", help=DATA_DIR_HELP)
    cmds = vp.add_subparsers(dest="voices_command", required=True, metavar="COMMAND")
    ls = cmds.add_parser(
        "list", help="the stored voices (name, language, text)", description="the stored voices (name, language, text)"
    )
    ls.add_argument("--json", action="store_true", help="one JSON object per voice instead of a table")
    add = cmds.add_parser(
        "add",
        help="store a voice: a 3-10 s mono clip, its transcript and language",
        description="store a voice: a 3-10 s mono clip, its transcript and language",
    )
    add.add_argument("name", help="1-64 letters, digits, '_', '-', '.'")
    add.add_argument("audio", help="the reference clip (wav, flac, ogg, mp3), 3 to 10 seconds")
    add.add_argument("--text", help="what the clip says (leave out for a style-only voice)")
    add.add_argument("--language", help="the text's language: zh, en, ja, ko, yue, auto, ...")
    add.add_argument(
        "--aux",
        action="append",
        metavar="FILE",
        help="an extra clip averaged into the voice's style (repeat)",
    )
    add.add_argument("--model", help="the server model the voice is bound to (default: the server's default)")
    add.add_argument("--replace", action="store_true", help="replace a stored voice of the same name")
    rm = cmds.add_parser("rm", help="remove stored voices", description="remove stored voices")
    rm.add_argument("names", nargs="+", metavar="NAME", help="the voices to remove")
    ex = cmds.add_parser(
        "export",
        help="write voices (clips, texts, languages) to a zip file",
        description="write voices (clips, texts, languages) to a zip file",
    )
    ex.add_argument("names", nargs="*", metavar="NAME", help="voices to export (default: all)")
    ex.add_argument("-o", "--out", required=True, help="the zip file to write")
    im = cmds.add_parser(
        "import",
        help="store the voices of a zip file written by 'voices export'",
        description="store the voices of a zip file written by 'voices export'",
    )
    im.add_argument("archive", help="the zip file")
    im.add_argument("--replace", action="store_true", help="replace stored voices of the same names")
    for cmd in (ls, add, rm, ex, im):  # also after the command: "voices list --data-dir DIR"
        cmd.add_argument("--data-dir", default=argparse.SUPPRESS, help=DATA_DIR_HELP)
    vp.set_defaults(func=cmd_voices)
    return vp


def _read(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise InvalidInput(f"audio file {path!r} does not exist")
    return p.read_bytes()


def cmd_voices(a: argparse.Namespace) -> int:
    """The handler of ``fastsovits voices ...``; returns the exit status."""
    from fastsovits.voices.store import NewVoice, VoiceStore

    store = VoiceStore.open(a.data_dir)
    cmd = a.voices_command
    if cmd == "list":
        voices = store.list()
        for v in voices:
            if a.json:
                print(
                    json.dumps(
                        {
                            "name": v.name,
                            "language": v.language,
                            "text": v.text,
                            "model": v.model,
                            "aux": v.aux,
                            "created": v.created,
                            "models_with_features": len(v.features),
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                created = time.strftime("%Y-%m-%d %H:%M", time.localtime(v.created))
                print(f"{v.name:24} {v.language or '-':8} {created}  {v.text or '(style only)'}")
        if not voices and not a.json:
            print(f"no voices in {store.path}", file=sys.stderr)
        return 0
    if cmd == "add":
        from fastsovits.voices.validate import VoiceLimits, check_voice

        clips = [_read(a.audio)] + [_read(x) for x in a.aux or []]
        name, text, language = check_voice(a.name, a.text, a.language, clips, VoiceLimits())
        s = store.add(NewVoice(name, clips[0], text, language, tuple(clips[1:]), a.model), replace=a.replace)
        print(f"stored voice {s.name} in {store.path}")
        return 0
    if cmd == "rm":
        for name in a.names:
            store.remove(name)
            print(f"removed voice {name}")
        return 0
    from fastsovits.voices.archive import export_voices, import_voices

    if cmd == "export":
        names = export_voices(store, a.out, a.names)
        print(f"exported {len(names)} voice(s) to {a.out}")
        return 0
    from fastsovits.voices.validate import VoiceLimits

    result = import_voices(store, a.archive, VoiceLimits(), replace=a.replace)
    print(f"imported {len(result.added)} new voice(s), replaced {len(result.replaced)}")
    return 0
