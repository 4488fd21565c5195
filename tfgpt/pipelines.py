"""``tfgpt.pipeline``: HF's ``pipeline("text-generation", ...)`` in process, strings in, strings out.

The model and tokenizer may be objects or a folder / hub id (loaded with ``TFAutoModelForCausalLM`` and
``OpenAIGPTTokenizer``). A call tokenizes the prompts, generates for a batch of them at a time with
left padding (``generate`` keeps every row as if generated alone) and decodes as HF's
``TextGenerationPipeline`` does: the new text is the decoded sequence after the decoded prompt, and
``return_full_text=True`` (the default) puts the prompt string in front of it.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

DEFAULT_MAX_NEW_TOKENS = 256  # HF's text-generation pipeline default, when no length is configured


def _load_model(model):
    from tfgpt.models.auto import TFAutoModelForCausalLM

    if isinstance(model, (str, os.PathLike)):
        return TFAutoModelForCausalLM.from_pretrained(os.fspath(model))
    if not callable(getattr(model, "generate", None)) or not hasattr(model, "config"):
        raise TypeError(f"model must be a tfgpt model with an LM head, a folder or a hub id, "
                        f"got {type(model).__name__}")
    return model


def _load_tokenizer(tokenizer, model_source):
    from tfgpt.tokenizers.tokenization import OpenAIGPTTokenizer

    if tokenizer is None:
        if model_source is None:
            raise ValueError("tokenizer is required when model is an object; pass tokenizer= (an "
                             "OpenAIGPTTokenizer, a folder or a hub id)")
        tokenizer = model_source
    if isinstance(tokenizer, (str, os.PathLike)):
        return OpenAIGPTTokenizer.from_pretrained(os.fspath(tokenizer))
    for method in ("encode", "decode"):
        if not callable(getattr(tokenizer, method, None)):
            raise TypeError(f"tokenizer must have encode and decode (an OpenAIGPTTokenizer), "
                            f"got {type(tokenizer).__name__}")
    return tokenizer


class TextGenerationPipeline:
    """Generate continuations of strings; called as ``pipe(text_or_texts, **options)``.

    A string gives a list of ``{"generated_text": str}`` (``num_return_sequences`` of them); a list of
    strings gives one such list per string. Options: ``return_full_text`` (default True: prompt +
    new text), ``return_text`` / ``return_tensors`` (``{"generated_token_ids": [...]}`` instead of
    text: the prompt's ids and the new ones), ``clean_up_tokenization_spaces``, ``prefix`` (text put
    before every prompt, left out of the returned text), ``add_special_tokens``, ``batch_size``
    (prompts per ``generate`` call) and any ``generate`` option (``max_new_tokens``, ``do_sample``,
    ``num_beams``, ``penalty_alpha`` ...).
    """

    task = "text-generation"

    def __init__(self, model, tokenizer, batch_size: int = 1, **defaults):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.defaults = dict(defaults)  # call options and generate options every call starts from

    def __repr__(self):
        return f"{type(self).__name__}(model={type(self.model).__name__}, tokenizer={type(self.tokenizer).__name__})"

    def __call__(self, text_inputs: Union[str, Sequence[str]], **kwargs):
        return self._run(text_inputs, **{**self.defaults, **kwargs})

    def _run(self, text_inputs: Union[str, Sequence[str]], return_full_text: Optional[bool] = None,
                 return_text: Optional[bool] = None, return_tensors: Optional[bool] = None,
                 clean_up_tokenization_spaces: Optional[bool] = None, prefix: str = "",
                 add_special_tokens: bool = True, batch_size: Optional[int] = None, **generate_kwargs):
        single = isinstance(text_inputs, str)
        texts = [text_inputs] if single else list(text_inputs) if isinstance(text_inputs, (list, tuple)) else None
        if texts is None or not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"text_inputs must be a string or a non-empty list of strings, got {text_inputs!r}")
        given = {"return_text": return_text, "return_full_text": return_full_text, "return_tensors": return_tensors}
        for a, b in (("return_text", "return_full_text"), ("return_full_text", "return_tensors"),
                     ("return_text", "return_tensors")):
            if given[a] is not None and given[b] is not None:
                raise ValueError(f"{a} is mutually exclusive with {b}")
        if not isinstance(prefix, str):
            raise TypeError(f"prefix must be a string, got {type(prefix).__name__}")
        full_text = True if return_full_text is None else bool(return_full_text)
        batch = self.batch_size if batch_size is None else _positive_int(batch_size, "batch_size")
        options = generate_kwargs
        if "input_ids" in options or "attention_mask" in options:
            raise ValueError("pass the prompts as text; input_ids / attention_mask are built by the pipeline")
        n = int(options.get("num_return_sequences", 1))

        prompts = [list(self.tokenizer.encode(prefix + t, add_special_tokens=add_special_tokens)) for t in texts]
        for text, ids in zip(texts, prompts):
            if not ids:
                raise ValueError(f"the prompt {text!r} has no tokens; generation needs at least one")
        results: List[List[Dict[str, Any]]] = []
        for start in range(0, len(prompts), batch):
            chunk = prompts[start:start + batch]
            sequences = self._generate(chunk, options)  # (len(chunk) * n, W + new), left-padded prompts
            width = max(len(ids) for ids in chunk)
            for i, ids in enumerate(chunk):
                text = texts[start + i]
                records = []
                for row in sequences[i * n:(i + 1) * n]:
                    new = self._new_tokens(row[width:], options)
                    if return_tensors:
                        records.append({"generated_token_ids": ids + new})
                        continue
                    records.append({"generated_text": self._text(ids, new, text, full_text,
                                                                 clean_up_tokenization_spaces)})
                results.append(records)
        return results[0] if single else results

    def _generate(self, prompts: List[List[int]], options: Dict[str, Any]) -> np.ndarray:
        options = dict(options)
        if "max_new_tokens" not in options and "max_length" not in options and not self._configured_length():
            room = self.model.config.n_positions - max(len(p) for p in prompts)
            options["max_new_tokens"] = max(1, min(DEFAULT_MAX_NEW_TOKENS, room))
        out = self.model.generate(prompts if len({len(p) for p in prompts}) > 1 else np.array(prompts), **options)
        return np.asarray(out)

    def _configured_length(self) -> bool:
        """Whether the model's own generation config sets a length (then generate applies it)."""
        gc = getattr(self.model, "generation_config", None)
        if gc is None:
            return False
        return getattr(gc, "max_new_tokens", None) is not None or getattr(gc, "max_length", 20) != 20

    def _new_tokens(self, tokens, options) -> List[int]:
        """The generated ids of one row up to and including its first eos (later ones are padding)."""
        eos = options.get("eos_token_id", getattr(self.model.config, "eos_token_id", None))
        eos = set() if eos is None else {int(e) for e in np.ravel(eos)}
        out = []
        for t in tokens:
            out.append(int(t))
            if int(t) in eos:
                break
        return out

    def _text(self, ids, new, text, full_text, clean_up) -> str:
        """HF's postprocess: the decoded sequence minus the decoded prompt (prefix included), the prompt
        string (without the prefix) in front."""
        decode = lambda x: self.tokenizer.decode(x, skip_special_tokens=True,  # noqa: E731
                                                 clean_up_tokenization_spaces=clean_up)
        continuation = decode(ids + new)[len(decode(ids)):]
        return text + continuation if full_text else continuation


SUPPORTED_TASKS = {"text-generation": TextGenerationPipeline}


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def pipeline(task: str, model=None, tokenizer=None, **kwargs) -> TextGenerationPipeline:
    """HF's ``pipeline(task, model=..., tokenizer=...)`` for the tasks tfgpt implements.

    ``model``: a tfgpt LM-head model, or a folder / hub id; ``tokenizer``: an ``OpenAIGPTTokenizer``,
    a folder / hub id, or None to load it from the model's folder. Other keyword arguments
    (``batch_size``, the call options and ``generate`` options) become the pipeline's defaults. An unknown task raises
    a ValueError naming it.
    """
    if task not in SUPPORTED_TASKS:
        raise ValueError(f"Unknown task {task!r}: tfgpt implements {sorted(SUPPORTED_TASKS)}")
    if model is None:
        raise ValueError(f"pipeline({task!r}) needs model= (a tfgpt model, a folder or a hub id)")
    source = os.fspath(model) if isinstance(model, (str, os.PathLike)) else None
    return SUPPORTED_TASKS[task](_load_model(model), _load_tokenizer(tokenizer, source), **kwargs)
