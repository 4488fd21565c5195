"""Upload a model, tokenizer or config to the Hugging Face hub, as HF's ``push_to_hub`` does.

The object is written with its own ``save_pretrained`` into a temporary folder, the repo is created if
needed (``HfApi.create_repo(exist_ok=True)``) and the folder goes up in one commit
(``HfApi.upload_folder``). The hub endpoint is huggingface_hub's (``HF_ENDPOINT``), the token its usual
one (``HF_TOKEN`` or the stored login) unless ``token`` is passed.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from typing import Any, Iterable, Optional, Union

DEFAULT_MAX_SHARD_SIZE = "5GB"  # HF's push_to_hub default
DEFAULT_SAFE_SERIALIZATION = True


def default_commit_message(obj: Any) -> str:
    """HF's default commit message for ``obj``: "Upload model", "Upload config", "Upload tokenizer"."""
    name = type(obj).__name__
    for part, message in (("Model", "Upload model"), ("Config", "Upload config"),
                          ("Tokenizer", "Upload tokenizer")):
        if part in name:
            return message
    return f"Upload {name}"


def push_folder(
    folder: Union[str, os.PathLike],
    repo_id: str,
    *,
    commit_message: Optional[str] = None,
    commit_description: Optional[str] = None,
    private: Optional[bool] = None,
    token: Optional[Union[bool, str]] = None,
    revision: Optional[str] = None,
    create_pr: bool = False,
    allow_patterns: Optional[Iterable[str]] = None,
):
    """Upload the files of ``folder`` (those matching ``allow_patterns``, default all) to ``repo_id``.

    Creates the repo (``private`` as given) and the branch ``revision`` when missing, then commits the
    files in one go (a pull request with ``create_pr=True``). Returns huggingface_hub's ``CommitInfo``.
    """
    from huggingface_hub import HfApi

    if not isinstance(repo_id, str) or not repo_id.strip():
        raise ValueError(f"repo_id must be a non-empty string such as 'user/model', got {repo_id!r}")
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"folder {os.fspath(folder)!r} is not a directory")
    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id, private=private, exist_ok=True, token=token).repo_id
    if revision is not None and not revision.startswith("refs/pr/"):
        api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=os.fspath(folder),
        commit_message=commit_message or "Upload folder using huggingface_hub",
        commit_description=commit_description,
        token=token,
        revision=revision,
        create_pr=create_pr,
        allow_patterns=list(allow_patterns) if allow_patterns is not None else None,
    )


def _save_kwargs(obj: Any, max_shard_size, safe_serialization) -> dict:
    """The sharding/serialisation options ``obj.save_pretrained`` takes by name; a non-default value it
    cannot take raises TypeError (it would otherwise be dropped)."""
    params = inspect.signature(obj.save_pretrained).parameters
    out = {}
    for name, value, default in (("max_shard_size", max_shard_size, DEFAULT_MAX_SHARD_SIZE),
                                 ("safe_serialization", safe_serialization, DEFAULT_SAFE_SERIALIZATION)):
        if name in params:
            out[name] = value
        elif value != default:
            raise TypeError(f"{type(obj).__name__}.save_pretrained has no {name} option; "
                            f"push_to_hub cannot apply {name}={value!r}")
    return out


def push_to_hub(
    obj: Any,
    repo_id: str,
    *,
    commit_message: Optional[str] = None,
    commit_description: Optional[str] = None,
    private: Optional[bool] = None,
    token: Optional[Union[bool, str]] = None,
    revision: Optional[str] = None,
    create_pr: bool = False,
    safe_serialization: bool = DEFAULT_SAFE_SERIALIZATION,
    max_shard_size: Union[int, str] = DEFAULT_MAX_SHARD_SIZE,
    use_temp_dir: Optional[bool] = None,
):
    """Save ``obj`` (anything with ``save_pretrained(dir)``) to a temporary folder and upload it to
    ``repo_id`` in one commit; HF's ``push_to_hub`` arguments and defaults (safetensors, 5GB shards).

    Returns huggingface_hub's ``CommitInfo`` (its ``commit_url``, ``oid``, ``pr_url``).
    """
    if not callable(getattr(obj, "save_pretrained", None)):
        raise TypeError(f"push_to_hub needs an object with save_pretrained(dir), got {type(obj).__name__}")
    if use_temp_dir is False:
        raise ValueError("use_temp_dir=False is not supported: push_to_hub always saves to a temporary "
                         "folder; call save_pretrained(dir) and push_folder(dir, repo_id) to keep a copy")
    save_kwargs = _save_kwargs(obj, max_shard_size, safe_serialization)
    with tempfile.TemporaryDirectory(prefix="tfgpt-push-") as work_dir:
        obj.save_pretrained(work_dir, **save_kwargs)
        return push_folder(
            work_dir,
            repo_id,
            commit_message=commit_message or default_commit_message(obj),
            commit_description=commit_description,
            private=private,
            token=token,
            revision=revision,
            create_pr=create_pr,
        )
