"""tf.data pipelines: packed LM windows, classification batches, multiple choice; the default corpus."""

from tfgpt.data.classification import (  # noqa: F401
    classification_dataset,
    holdout_every,
    read_class_files,
    read_lines,
    read_tsv,
)
from tfgpt.data.collate import (  # noqa: F401
    DataCollatorWithPadding,
    default_data_collator,
    prepare_tf_dataset,
)
from tfgpt.data.corpus import (  # noqa: F401
    DATASETS_SUBDIR,
    TINY_SHAKESPEARE_NAME,
    TINY_SHAKESPEARE_URL,
    CorpusUnavailableError,
    default_corpus_path,
    get_tiny_shakespeare,
    keras_cache_dir,
)
from tfgpt.data.lm import (  # noqa: F401
    AUTOTUNE,
    SPLITS,
    count_batches,
    count_tokens,
    lm_dataset,
    lm_datasets,
    min_tokens_per_pass,
    pack_windows,
    token_chunks,
)
from tfgpt.data.multiple_choice import (  # noqa: F401
    copa_examples,
    multiple_choice_dataset,
    parse_id_ranges,
    read_copa,
)
from tfgpt.data.tokens import (  # noqa: F401
    GPT1_SPECIAL_TOKENS,
    NEWLINE_TOKEN,
    add_gpt1_special_tokens,
    as_graph_tokenizer,
    pad_ragged,
    token_id,
    tokenize_batch,
)
