"""Characters: a display name and an uploaded clip, kept so later requests can refer to them
(POST /v1/videos/characters, multipart ``name`` + ``video``; GET /v1/videos/characters/{id}).

The answer is the reference's ``VideoCharacterResource``: ``{"id", "name", "created_at"}``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .envelope import json_response, not_found
from ..uploads import UploadedVideo, uploaded_video
from .validation import missing, read_fields, require_key, validated_text

if TYPE_CHECKING:
    from ..state import SimulatorState

CHARACTER_FIELDS = ("name", "video")
NAME_MAX = 80


@dataclass(frozen=True)
class Character:
    id: str
    name: str
    created_at: int
    video: UploadedVideo

    def resource(self) -> dict:
        return {"id": self.id, "name": self.name, "created_at": self.created_at}


@dataclass
class CharacterStore:
    """Every character the simulator accepted; thread-safe."""

    wall: Callable[[], float] = time.time
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _characters: dict[str, Character] = field(default_factory=dict)

    def add(self, *, name: str, video: UploadedVideo) -> Character:
        character = Character(id=f"char_{uuid.uuid4().hex}", name=name, created_at=int(self.wall()), video=video)
        with self._lock:
            self._characters[character.id] = character
        return character

    def get(self, character_id: str) -> Character | None:
        with self._lock:
            return self._characters.get(character_id)

    def all(self) -> list[Character]:
        with self._lock:
            return list(self._characters.values())

    def clear(self) -> None:
        with self._lock:
            self._characters.clear()


def character_routes(state: "SimulatorState") -> list[Route]:
    async def create_character(request: Request) -> Response:
        require_key(request)
        fields = await read_fields(request, CHARACTER_FIELDS)
        name = validated_text(fields, "name", NAME_MAX)
        if fields.get("video") is None:
            raise missing("video")
        video = await uploaded_video(fields["video"], state.uploads_dir)
        character = state.characters.add(name=name, video=video)
        state.stats.created("character")
        return json_response(character.resource())

    async def get_character(request: Request) -> Response:
        require_key(request)
        character_id = request.path_params["character_id"]
        character = state.characters.get(character_id)
        if character is None:
            raise not_found("Character", character_id, param="character_id")
        return json_response(character.resource())

    return [
        Route("/v1/videos/characters", create_character, methods=["POST"]),
        Route("/v1/videos/characters/{character_id}", get_character, methods=["GET"]),
    ]

