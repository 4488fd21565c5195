"""The default LM corpus: tiny-shakespeare, downloaded once into the Keras cache (never when offline)."""

from __future__ import annotations

import os
from typing import Optional

from tfgpt.io import env_flag, keras_cache_dir

# The tiny-shakespeare corpus (karpathy/char-rnn), the default LM corpus of ``tfgpt train``.
TINY_SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
TINY_SHAKESPEARE_NAME = "tinyshakespeare.txt"
DATASETS_SUBDIR = os.path.join("datasets", "tfgpt")


class CorpusUnavailableError(FileNotFoundError):
    """The default corpus is neither cached nor downloadable."""


def default_corpus_path(cache_dir: Optional[str] = None) -> str:
    """The cached tiny-shakespeare path: ``{KERAS_HOME or ~/.keras}/datasets/tfgpt/tinyshakespeare.txt``."""
    return os.path.join(keras_cache_dir(cache_dir), DATASETS_SUBDIR, TINY_SHAKESPEARE_NAME)


def get_tiny_shakespeare(cache_dir: Optional[str] = None, offline: Optional[bool] = None) -> str:
    """Path to tiny-shakespeare, downloaded once with ``keras.utils.get_file`` into the Keras cache.

    ``offline`` (default: ``TFGPT_OFFLINE=1`` in the environment) never touches the network. When the
    file is neither cached nor downloadable, raises CorpusUnavailableError saying how to pass a file.
    """
    import keras

    path = default_corpus_path(cache_dir)
    if os.path.isfile(path):
        return path
    if offline is None:
        offline = env_flag("TFGPT_OFFLINE")
    how = (f"Pass your own text file(s) instead (lm_datasets([path], ...)), or put a copy of "
           f"tiny-shakespeare at {path}.")
    if offline:
        raise CorpusUnavailableError(f"tiny-shakespeare is not in the Keras cache and offline mode is "
                                     f"on (TFGPT_OFFLINE). {how}")
    try:
        return keras.utils.get_file(TINY_SHAKESPEARE_NAME, origin=TINY_SHAKESPEARE_URL,
                                    cache_dir=keras_cache_dir(cache_dir), cache_subdir=DATASETS_SUBDIR)
    except Exception as e:  # urllib raises several unrelated types when offline
        raise CorpusUnavailableError(
            f"could not download tiny-shakespeare from {TINY_SHAKESPEARE_URL} "
            f"({type(e).__name__}: {e}). {how}") from e

