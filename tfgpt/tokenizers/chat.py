"""Chat templates: HF's ``apply_chat_template`` rendering and the files that hold templates.

A template is Jinja source (rendered in a sandbox, with ``trim_blocks`` / ``lstrip_blocks``, loop
controls, a ``tojson`` filter, ``raise_exception`` and ``strftime_now`` as HF provides them). A
tokenizer holds one template (a string) or several by name (a dict; ``"default"`` is used when no name
is given). Saved as HF saves them: ``chat_template.jinja`` for the one (or the default) template,
``additional_chat_templates/<name>.jinja`` for the others; HF's older ``chat_template`` entry in
``tokenizer_config.json`` (a string or a list of ``{"name", "template"}``) is read too, the ``.jinja``
file taking priority. Jinja2 is needed only when a template is rendered.
"""

from __future__ import annotations

import functools
import json
import os
from datetime import datetime
from typing import Dict, List, Optional, Union

from tfgpt.io import atomic_write_text

CHAT_TEMPLATE_FILE = "chat_template.jinja"
ADDITIONAL_TEMPLATES_DIR = "additional_chat_templates"
Template = Union[str, Dict[str, str]]


def check_template(value, what: str = "chat_template") -> Optional[Template]:
    """A template setting as a string, a dict name -> string, or None (HF's list form becomes a dict)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        out = {}
        for i, item in enumerate(value):
            if not (isinstance(item, dict) and isinstance(item.get("name"), str)
                    and isinstance(item.get("template"), str)):
                raise ValueError(f"{what}[{i}] must be {{'name': str, 'template': str}}, got {item!r:.60}")
            out[item["name"]] = item["template"]
        return out
    if isinstance(value, dict):
        for name, source in value.items():
            if not isinstance(name, str) or not isinstance(source, str):
                raise ValueError(f"{what} must map template names to template strings; {name!r} maps to "
                                 f"{type(source).__name__}")
        return dict(value)
    raise TypeError(f"{what} must be a string, a dict of named templates or None, got {type(value).__name__}")


def select_template(own: Optional[Template], chat_template: Optional[str]) -> str:
    """The template source to render: ``chat_template`` (a name of ``own``'s or the source itself),
    else ``own`` (its "default" when it holds several)."""
    if isinstance(own, dict):
        if chat_template is not None and chat_template in own:
            return own[chat_template]
        if chat_template is None:
            if "default" not in own:
                raise ValueError("This tokenizer has multiple chat templates but no 'default' one; pass "
                                 f"chat_template= one of the names {sorted(own)}")
            return own["default"]
    if chat_template is not None:
        if not isinstance(chat_template, str):
            raise TypeError(f"chat_template must be a string (a template or a name), got {type(chat_template).__name__}")
        return chat_template
    if own is None:
        raise ValueError("Cannot use chat template functions because tokenizer.chat_template is not set and no "
                         "template argument was passed! For information about writing templates and setting the "
                         "tokenizer.chat_template attribute, please see the documentation at "
                         "https://huggingface.co/docs/transformers/main/en/chat_templating")
    return own


@functools.lru_cache(maxsize=32)
def compile_template(source: str):
    """The Jinja template of ``source`` in HF's sandboxed environment (cached by source)."""
    try:
        import jinja2
        from jinja2 import nodes
        from jinja2.ext import Extension, loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as err:
        raise ImportError("apply_chat_template needs jinja2 (pip install jinja2)") from err

    class GenerationBlock(Extension):
        """``{% generation %}...{% endgeneration %}`` (HF's assistant-mask marker) renders its body."""

        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

        def _render(self, caller):
            return caller()

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def _final_text(message) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, (list, tuple)):  # HF's multimodal form: the last text part
        texts = [part.get("text") for part in content if isinstance(part, dict) and "text" in part]
        content = texts[-1] if texts else None
    if not isinstance(content, str):
        raise ValueError("continue_final_message needs the final message's content to be text")
    return content


def render(source: str, conversations: List[list], add_generation_prompt: bool = False,
           continue_final_message: bool = False, tools=None, documents=None, **template_kwargs) -> List[str]:
    """Each conversation (a list of ``{"role", "content"}`` messages) rendered by the template ``source``.

    ``continue_final_message`` cuts the text after the last message's content, so the model
    continues it (HF); it cannot be combined with ``add_generation_prompt``.
    """
    if continue_final_message and add_generation_prompt:
        raise ValueError("continue_final_message and add_generation_prompt are not compatible. Use "
                         "continue_final_message when you want the model to continue the final message, and "
                         "add_generation_prompt when you want to add a header that will prompt it to start a "
                         "new assistant message instead.")
    if tools is not None and not isinstance(tools, (list, tuple)):
        raise TypeError(f"tools must be a list of JSON schemas (dicts), got {type(tools).__name__}")
    if tools is not None and not all(isinstance(t, dict) for t in tools):
        raise TypeError("tools must be JSON schemas (dicts); tfgpt does not turn Python functions into schemas")
    if documents is not None and not (isinstance(documents, (list, tuple)) and all(isinstance(d, dict) for d in documents)):
        raise TypeError("documents must be a list of dicts (e.g. {'title': ..., 'text': ...})")
    template = compile_template(source)
    out = []
    for chat in conversations:
        if hasattr(chat, "messages"):  # HF's Conversation-like objects
            chat = chat.messages
        if not isinstance(chat, (list, tuple)) or not all(isinstance(m, dict) for m in chat):
            raise TypeError("a conversation must be a list of message dicts {'role': ..., 'content': ...}")
        text = template.render(messages=list(chat), tools=tools, documents=documents,
                               add_generation_prompt=add_generation_prompt, **template_kwargs)
        if continue_final_message:
            if not chat:
                raise ValueError("continue_final_message needs at least one message")
            final = _final_text(chat[-1])
            if final not in text:
                final = final.strip()  # templates that trim the messages
            if final not in text:
                raise ValueError("continue_final_message: the final message's content does not appear in the "
                                 "rendered chat, so it cannot be continued")
            text = text[: text.rindex(final) + len(final)]
        out.append(text)
    return out


def read_templates(directory: str, from_config: Optional[Template] = None) -> Optional[Template]:
    """The chat template(s) saved in ``directory``: ``chat_template.jinja`` (over ``from_config``, the
    tokenizer_config.json entry) and ``additional_chat_templates/*.jinja``."""
    templates: Optional[Template] = from_config
    path = os.path.join(directory, CHAT_TEMPLATE_FILE)
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            main = f.read()
        templates = dict(templates, default=main) if isinstance(templates, dict) else main
    extra_dir = os.path.join(directory, ADDITIONAL_TEMPLATES_DIR)
    if os.path.isdir(extra_dir):
        extra = {}
        for name in sorted(os.listdir(extra_dir)):
            if name.endswith(".jinja"):
                with open(os.path.join(extra_dir, name), encoding="utf-8") as f:
                    extra[name[: -len(".jinja")]] = f.read()
        if extra:
            base = templates if isinstance(templates, dict) else (
                {"default": templates} if templates is not None else {})
            templates = dict(base, **extra)
    return templates


def write_templates(directory: str, templates: Optional[Template]) -> List[str]:
    """Write ``templates`` into ``directory`` as HF does; returns the written paths."""
    if templates is None:
        return []
    written = []
    if isinstance(templates, str):
        templates = {"default": templates}
    for name, source in templates.items():
        if name == "default":
            path = os.path.join(directory, CHAT_TEMPLATE_FILE)
        else:
            if not name or os.sep in name or (os.altsep and os.altsep in name) or name.startswith("."):
                raise ValueError(f"chat template name {name!r} cannot be a file name")
            os.makedirs(os.path.join(directory, ADDITIONAL_TEMPLATES_DIR), exist_ok=True)
            path = os.path.join(directory, ADDITIONAL_TEMPLATES_DIR, name + ".jinja")
        atomic_write_text(path, source)
        written.append(path)
    return written
