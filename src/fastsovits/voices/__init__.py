"""The persisted voice store shared by the server, the WebUI and the CLI.

    from fastsovits.voices import VoiceStore, NewVoice, VoiceLimits, check_voice

    store = VoiceStore.open()                     # $FASTSOVITS_DATA_DIR or the user data folder
    name, text, lang = check_voice("alice", "Hello, I am Alice.", "en", [clip], VoiceLimits())
    store.add(NewVoice(name, clip, text, lang))
    ref = reference_for(store, tts, "alice", identity)   # features stored once per model, then reused

Nothing here imports torch or opens a file at import time.
"""

from fastsovits.voices.store import (
    DATA_DIR_ENV,
    STORE_FILE,
    NewVoice,
    StoredVoice,
    VoiceExists,
    VoiceNotFound,
    VoiceStore,
    VoiceSummary,
    default_data_dir,
)

__all__ = [
    "DATA_DIR_ENV",
    "STORE_FILE",
    "NewVoice",
    "StoredVoice",
    "VoiceExists",
    "VoiceNotFound",
    "VoiceStore",
    "VoiceSummary",
    "default_data_dir",
]
