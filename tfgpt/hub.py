"""Resolve a local folder or a Hugging Face hub id to a local folder.

Hub downloads go through huggingface_hub's cache (``HF_HOME`` / ``HF_HUB_CACHE``), so a model fetched
once is reused offline. ``HF_HUB_OFFLINE=1`` (or ``local_files_only=True``) never touches the network.
"""

from __future__ import annotations

import os
from typing import Iterable, Optional


class HubError(OSError):
    """A hub id could not be resolved to local files."""


def resolve_dir(
    path_or_id: str | os.PathLike,
    allow_patterns: Optional[Iterable[str]] = None,
    *,
    revision: Optional[str] = None,
    cache_dir: Optional[str] = None,
    local_files_only: Optional[bool] = None,
    token: Optional[str] = None,
) -> str:
    """Return a local folder for ``path_or_id``.

    A path that exists is returned as is. Anything else is treated as a hub id ("owner/name") and
    downloaded (only files matching ``allow_patterns``) into the huggingface_hub cache.
    """
    path = os.fspath(path_or_id)
    if os.path.isdir(path):
        return path
    if os.path.exists(path):
        raise NotADirectoryError(f"{path!r} is a file; pass the folder that holds the model files")
    if path.count("/") > 1 or path.startswith((".", "~")) or os.sep in path.rstrip("/").split("/", 1)[0]:
        raise FileNotFoundError(f"no such folder: {path!r}")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:  # pragma: no cover - huggingface_hub is an install requirement
        raise HubError(
            f"{path!r} is not a local folder and huggingface_hub is not installed to download it"
        ) from e
    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on")
    try:
        return snapshot_download(
            repo_id=path,
            revision=revision,
            cache_dir=cache_dir,
            allow_patterns=list(allow_patterns) if allow_patterns else None,
            local_files_only=local_files_only,
            token=token,
        )
    except Exception as e:  # huggingface_hub raises several unrelated types for "not available"
        where = cache_dir or os.environ.get("HF_HUB_CACHE") or "the huggingface_hub cache"
        raise HubError(
            f"could not get {path!r}: it is not a local folder, and the hub copy is not in {where} "
            f"and could not be downloaded ({type(e).__name__}: {e}). Pass a local folder that holds "
            f"the files, or run once with network access (HF_HUB_OFFLINE unset) to fill the cache."
        ) from e
