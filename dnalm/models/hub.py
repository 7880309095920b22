"""Resolve a model or dataset reference (local folder or Hugging Face hub id) without hanging offline."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

from huggingface_hub import try_to_load_from_cache


def is_local(reference: str) -> bool:
    """True when ``reference`` names an existing local file or folder."""
    return Path(reference).expanduser().exists()


def looks_like_path(reference: str) -> bool:
    """A reference that can only be a local path: absolute, ``./``, ``../``, ``~``, or more than one ``/``.

    A hub id is ``name`` or ``owner/name``; anything else is a folder the user meant, so a missing one is a
    missing folder, not a model to download.
    """
    text = str(reference)
    return (text.startswith(("/", "./", "../", "~", ".\\")) or text.count("/") > 1 or "\\" in text
            or text in (".", ".."))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face endpoint answers a TCP connection (False at once when offline mode is set).

    ``transformers`` retries an unreachable hub for about half a minute; a quick probe lets dnalm fail in
    seconds with a message about local copies instead.
    """
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes"}:
        return False
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def cached_on_disk(repo_id: str, filename: str = "config.json", revision: str | None = None,
                   repo_type: str = "model") -> bool:
    """True when ``filename`` of ``repo_id`` is already in the local Hugging Face cache."""
    try:
        hit = try_to_load_from_cache(repo_id, filename, revision=revision, repo_type=repo_type)
    except Exception:  # malformed ids raise validation errors; they are simply not cached
        return False
    return isinstance(hit, str)
