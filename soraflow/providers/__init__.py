"""Video providers: one protocol, one implementation per API dialect on its official SDK."""

from .base import TERMINAL, Download, ModelInfo, VideoJob, VideoProvider
from .google_veo import GoogleVeoProvider
from .openai_videos import OpenAIVideosProvider, classify, make_provider

__all__ = [
    "TERMINAL",
    "Download",
    "GoogleVeoProvider",
    "ModelInfo",
    "OpenAIVideosProvider",
    "VideoJob",
    "VideoProvider",
    "classify",
    "make_provider",
]
