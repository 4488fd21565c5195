"""Deployment exports: a TF Serving SavedModel (``saved_model``: token ids -> logits, string prompts ->
text through tfgpt.generation's compiled programs) and a TFLite file (``tflite``) for on-device
decoding."""

from tfgpt.export.saved_model import (  # noqa: F401
    ServingModule,
    export_saved_model,
    forward_function,
    resolve_version_dir,
)
from tfgpt.export.tflite import TFLiteModule, export_tflite  # noqa: F401
