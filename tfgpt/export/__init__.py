"""SavedModel (TF Serving layout) and TFLite export."""

from tfgpt.export.core import (  # noqa: F401
    resolve_version_dir,
    cache_lengths_tf,
    ServingModule,
    export_saved_model,
    TFLiteModule,
    export_tflite,
)
