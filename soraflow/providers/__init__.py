"""Video providers: one protocol, one implementation on the openai SDK."""

from .base import TERMINAL, Download, ModelInfo, VideoJob, VideoProvider
from .openai_videos import OpenAIVideosProvider, classify, make_provider

__all__ = [
    "TERMINAL",
    "Download",
    "ModelInfo",
    "OpenAIVideosProvider",
    "VideoJob",
    "VideoProvider",
    "classify",
    "make_provider",
]
