"""Checkpoint readers and writers: HF safetensors / tf_model.h5 (sharded or not), torch .bin, OpenAI's original release, hub ids, push_to_hub.

``names`` is the one weight-name table (PyTorch name, TF name, variable, transform); ``readers`` turn
each format into a PyTorch-style state dict, ``original`` reads OpenAI's release, ``loading`` finds,
reads and assigns (``from_pretrained``, ``load_state_dict``), ``writers`` write HF's layouts
(``save_pretrained``), ``convert`` is ``tfgpt convert``, ``hub`` fetches hub ids.
"""

from tfgpt.checkpoints.formats import (  # noqa: F401
    ORIGINAL_NAMES_NAME,
    ORIGINAL_SHAPES_NAME,
    SAFE_WEIGHTS_INDEX_NAME,
    SAFE_WEIGHTS_NAME,
    TF2_WEIGHTS_INDEX_NAME,
    TF2_WEIGHTS_NAME,
    WEIGHTS_INDEX_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    CheckpointNotFoundError,
)
from tfgpt.checkpoints.names import (  # noqa: F401
    HF_TF_MODEL_NAMES,
    IGNORED_NAMES,
    IGNORED_SUFFIXES,
    WeightName,
    is_tf_name,
    model_table,
    tf_to_pt_name,
    weight_table,
)
from tfgpt.checkpoints.readers import LazyTensor, as_array, to_pt_state  # noqa: F401
from tfgpt.checkpoints.original import original_release_dims, read_original_release  # noqa: F401
from tfgpt.checkpoints.loading import (  # noqa: F401
    check_config_shapes,
    find_checkpoint,
    from_pretrained,
    load_state_dict,
    read_checkpoint,
    resolve_checkpoint_dir,
)
from tfgpt.checkpoints.writers import HDF5_OBJECT_HEADER_LIMIT, parse_size, save_pretrained  # noqa: F401
from tfgpt.checkpoints.convert import convert, convert_original_release, model_class  # noqa: F401
from tfgpt.checkpoints.push import push_folder, push_to_hub  # noqa: F401,E402
