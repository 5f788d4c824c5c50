"""Voices shared by every replica: one small interface, a Ray-actor implementation, and the ingress registry.

``VoiceStore`` is all the cluster needs from a store (put, get, delete, list); a persisted store
(e.g. SQLite on a shared volume) can implement it and replace ``RayVoiceStore`` without any other
change. ``RayVoiceStore`` keeps the voices in one named Ray actor (in memory: they live as long
as the Ray cluster; voices from ``--voices`` are put back at every start).
"""

from __future__ import annotations

from typing import Protocol

from fastsovits.server.voices import Voice, VoiceRegistry

STORE_ACTOR = "fastsovits-voices"


class VoiceStore(Protocol):
    def put(self, voice: Voice) -> None: ...

    def get(self, name: str) -> Voice | None: ...

    def delete(self, name: str) -> None: ...

    def list(self) -> list[Voice]: ...


class _VoiceTable:
    """The actor's state: voices by name (the ingress validates them before they arrive)."""

    def __init__(self) -> None:
        self.voices: dict[str, Voice] = {}

    def put(self, voice: Voice) -> None:
        self.voices[voice.name] = voice

    def get(self, name: str) -> Voice | None:
        return self.voices.get(name)

    def delete(self, name: str) -> None:
        self.voices.pop(name, None)

    def list(self) -> list[Voice]:
        return list(self.voices.values())


class RayVoiceStore:
    """``VoiceStore`` over a named actor in ``namespace`` (created by the first user, found by the others)."""

    def __init__(self, namespace: str) -> None:
        import ray

        self._ray = ray
        actor = ray.remote(num_cpus=0, max_restarts=0)(_VoiceTable)
        self._actor = actor.options(
            name=STORE_ACTOR, namespace=namespace, get_if_exists=True, lifetime="detached"
        ).remote()

    def put(self, voice: Voice) -> None:
        self._ray.get(self._actor.put.remote(voice))

    def get(self, name: str) -> Voice | None:
        return self._ray.get(self._actor.get.remote(name))

    def delete(self, name: str) -> None:
        self._ray.get(self._actor.delete.remote(name))

    def list(self) -> list[Voice]:
        return self._ray.get(self._actor.list.remote())

    def kill(self) -> None:
        self._ray.kill(self._actor)


class SharedVoiceRegistry(VoiceRegistry):
    """The ingress's ``VoiceRegistry``: a local copy, written through to the store, refreshed on a miss or a list."""

    def __init__(self, store: VoiceStore) -> None:
        super().__init__()  # no SQLite store: the voices live in the shared store below
        self.shared = store
        for voice in store.list():
            super().add(voice, replace=True)

    def add(self, voice: Voice, replace: bool = False) -> Voice:
        super().add(voice, replace=replace)
        self.shared.put(voice)
        return voice

    def _fetch(self, name: str) -> bool:
        voice = self.shared.get(name) if isinstance(name, str) else None
        if voice is not None:
            super().add(voice, replace=True)
        return voice is not None

    def get(self, name: str) -> Voice:
        if not super().__contains__(name):
            self._fetch(name)
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or (isinstance(name, str) and self._fetch(name))

    def remove(self, name: str) -> Voice:
        if not super().__contains__(name):
            self._fetch(name)
        voice = super().remove(name)
        self.shared.delete(name)
        return voice

    def list(self) -> list[Voice]:
        stored = {v.name: v for v in self.shared.list()}
        for name in [v.name for v in super().list() if v.name not in stored]:
            super().remove(name)  # deleted through another ingress replica
        for voice in stored.values():
            super().add(voice, replace=True)
        return super().list()
