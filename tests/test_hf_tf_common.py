"""HF transformers' TF model tests for GPT-1 (``TFOpenAIGPTModelTest`` and the ``TFModelTesterMixin``
tests it runs), rebuilt as behaviour tests of tfgpt with HF's model-tester sizes: batch 13, sequence 7,
vocabulary 99, 32 wide, 2 layers, 4 heads, 512 positions, pad id 98, 4 choices.

Each test names the HF test it stands for. Where HF only checks that a call does not fail, the test
here also compares values (round trips, dict / keyword / list agreement, fixed inputs).
"""

import copy
import inspect
import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt

BATCH, SEQ, VOCAB, HIDDEN, LAYERS, HEADS, CHOICES = 13, 7, 99, 32, 2, 4, 4
TYPE_VOCAB, NUM_LABELS, SEQ_LABELS = 16, 3, 2

ALL = (tfgpt.TFOpenAIGPTModel, tfgpt.TFOpenAIGPTLMHeadModel, tfgpt.TFOpenAIGPTDoubleHeadsModel,
       tfgpt.TFOpenAIGPTForSequenceClassification)
GENERATIVE = (tfgpt.TFOpenAIGPTLMHeadModel,)
IDS = [cls.__name__ for cls in ALL]


def make_config(**overrides):
    """HF's TFOpenAIGPTModelTester config."""
    kwargs = dict(vocab_size=VOCAB, n_embd=HIDDEN, n_layer=LAYERS, n_head=HEADS, n_positions=512,
                  pad_token_id=VOCAB - 1)
    kwargs.update(overrides)
    return tfgpt.OpenAIGPTConfig(**kwargs)


def ids_tensor(shape, vocab, rng):
    return tf.constant(rng.integers(0, vocab, size=shape), tf.int32)


def random_attention_mask(shape, rng):
    mask = rng.integers(0, 2, size=shape)
    mask[:, 0] = 1
    return tf.constant(mask, tf.int32)


def common_inputs(seed=0):
    """HF's prepare_config_and_inputs_for_common: input_ids, token_type_ids, attention_mask [13, 7].

    Ids avoid the pad id, so sequence classification pools the last position as HF's tester expects.
    """
    rng = np.random.default_rng(seed)
    return {"input_ids": ids_tensor([BATCH, SEQ], VOCAB - 1, rng),
            "token_type_ids": ids_tensor([BATCH, SEQ], TYPE_VOCAB, rng),
            "attention_mask": random_attention_mask([BATCH, SEQ], rng)}


def with_labels(inputs, cls):
    """HF's _prepare_for_class(return_labels=True): LM labels [B, S], class labels [B]."""
    out = dict(inputs)
    if cls is tfgpt.TFOpenAIGPTLMHeadModel:
        out["labels"] = tf.zeros((BATCH, SEQ), tf.int32)
    elif cls is tfgpt.TFOpenAIGPTForSequenceClassification:
        out["labels"] = tf.zeros((BATCH,), tf.int32)
    return out


def build(cls, config=None, seed=0):
    keras.utils.set_random_seed(seed)
    return cls(make_config() if config is None else config)


def first(outputs):
    """The first output (HF's assert_outputs_same): a tensor, a dict's first value, or item 0."""
    if isinstance(outputs, tf.Tensor):
        return outputs.numpy()
    if type(outputs) is dict:  # a functional model's output
        return next(iter(outputs.values())).numpy()
    return outputs[0].numpy()


def assert_same(a, b, atol=1e-5):
    a, b = first(a), first(b)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, atol=atol)


# --- TFOpenAIGPTModelTest's own tests -------------------------------------------------------------------

def test_openai_gpt_model():
    """create_and_check_openai_gpt_model: dict, list and tensor inputs."""
    x = common_inputs()
    model = build(tfgpt.TFOpenAIGPTModel)
    from_dict = model({"input_ids": x["input_ids"], "attention_mask": x["attention_mask"],
                       "token_type_ids": x["token_type_ids"]})
    from_list = model([x["input_ids"], x["attention_mask"]])
    plain = model(x["input_ids"])
    assert plain.last_hidden_state.shape == (BATCH, SEQ, HIDDEN)
    np.testing.assert_allclose(from_list.last_hidden_state.numpy(),
                               model(x["input_ids"], attention_mask=x["attention_mask"]).last_hidden_state.numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(from_dict.last_hidden_state.numpy(),
                               model(**x).last_hidden_state.numpy(), atol=1e-6)
    assert np.abs(from_dict.last_hidden_state.numpy() - plain.last_hidden_state.numpy()).max() > 1e-3


def test_openai_gpt_lm_head():
    x = common_inputs()
    result = build(tfgpt.TFOpenAIGPTLMHeadModel)(x)
    assert result.logits.shape == (BATCH, SEQ, VOCAB)


def test_openai_gpt_double_head():
    """[B, C, S] inputs with mc_token_ids [B, C]: logits [B, C, S, V] and mc_logits [B, C] (num_labels=1)."""
    x = common_inputs()
    rng = np.random.default_rng(1)
    mc_token_ids = ids_tensor([BATCH, CHOICES], SEQ, rng)
    tile = lambda t: tf.tile(tf.expand_dims(t, 1), (1, CHOICES, 1))  # noqa: E731
    config = make_config()
    model = build(tfgpt.TFOpenAIGPTDoubleHeadsModel, config)
    assert config.num_labels == 1 and model.config.num_labels == 1
    result = model({"input_ids": tile(x["input_ids"]), "mc_token_ids": mc_token_ids,
                    "attention_mask": tile(x["attention_mask"]), "token_type_ids": tile(x["token_type_ids"])})
    assert result.logits.shape == (BATCH, CHOICES, SEQ, VOCAB)
    assert result.mc_logits.shape == (BATCH, CHOICES)
    # identical choices with the same mc position score the same
    same = model({"input_ids": tile(x["input_ids"]), "mc_token_ids": tf.fill([BATCH, CHOICES], 3)})
    np.testing.assert_allclose(same.mc_logits.numpy(), np.repeat(same.mc_logits.numpy()[:, :1], CHOICES, 1),
                               atol=1e-5)


def test_openai_gpt_sequence_classification_model():
    x = common_inputs()
    config = make_config()
    config.num_labels = NUM_LABELS
    labels = ids_tensor([BATCH], SEQ_LABELS, np.random.default_rng(2))
    result = build(tfgpt.TFOpenAIGPTForSequenceClassification, config)({**x, "labels": labels})
    assert result.logits.shape == (BATCH, NUM_LABELS)
    expected = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels, result.logits))
    np.testing.assert_allclose(result.loss.numpy(), expected.numpy(), atol=1e-6)


def test_model_common_attributes_openai():
    """The model file's own version: LM head's output embeddings are a layer, every get_bias is None."""
    for cls in ALL:
        model = build(cls)
        assert isinstance(model.get_input_embeddings(), keras.layers.Layer)
        if cls in GENERATIVE:
            assert model.get_output_embeddings() is model.get_input_embeddings()
        else:
            assert model.get_output_embeddings() is None
        assert model.get_bias() is None


# --- TFModelTesterMixin ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_save_load(cls, tmp_path):
    x = common_inputs()
    model = build(cls)
    outputs = model(x)
    model.save_pretrained(tmp_path, saved_model=False)
    assert (tmp_path / "config.json").is_file()
    assert model.can_generate() == (tmp_path / "generation_config.json").is_file()
    assert not (tmp_path / "saved_model").exists()
    assert_same(cls.from_pretrained(tmp_path)(x), outputs)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_save_load_config(cls):
    x = common_inputs()
    model = build(cls)
    outputs = model(x)
    json.dumps(model.get_config())
    new_model = cls.from_config(model.get_config())
    from_object = cls.from_config(model.config)
    assert isinstance(from_object, cls) and from_object.config.to_dict() == model.config.to_dict()
    new_model(x)
    new_model.set_weights(model.get_weights())
    assert_same(new_model(x), outputs)


def test_saved_model_creation(tmp_path):
    """save_pretrained(saved_model=True) writes saved_model/1/, and it serves the model's outputs."""
    x = common_inputs()
    config = make_config(output_hidden_states=False, output_attentions=False)
    model = build(ALL[0], config)
    expected = model(x["input_ids"], attention_mask=x["attention_mask"]).last_hidden_state.numpy()
    model.save_pretrained(tmp_path, saved_model=True)
    saved = tmp_path / "saved_model" / "1"
    assert saved.is_dir() and (saved / "saved_model.pb").is_file()
    served = tf.saved_model.load(str(saved)).signatures["serving_default"](
        input_ids=x["input_ids"], attention_mask=x["attention_mask"])
    np.testing.assert_allclose(served["last_hidden_state"].numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_prepare_serving_output(cls):
    config = make_config(output_hidden_states=True, output_attentions=True)
    model = build(cls, config)
    outputs = model(common_inputs())
    serving = model.serving_output(outputs)
    assert set(serving) == set(outputs)
    for key, value in serving.items():
        assert isinstance(value, tf.Tensor), key
    assert serving["hidden_states"].shape[0] == LAYERS + 1
    np.testing.assert_allclose(serving["attentions"].numpy(), np.stack(outputs.attentions), atol=0)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_forward_signature(cls):
    model = build(cls)
    assert not model.config.is_encoder_decoder
    assert list(inspect.signature(model.call).parameters)[:1] == ["input_ids"]


def test_keras_save_load(tmp_path):
    """The main layer (HF's @keras_serializable) in a functional model, saved and reloaded by Keras.

    HF writes the legacy ``.h5`` format; Keras 3 saves whole models as ``.keras``.
    """
    main_layer_classes = {
        getattr(mod, name) for mod in {inspect.getmodule(cls) for cls in ALL} for name in dir(mod)
        if name.endswith("MainLayer") and getattr(getattr(mod, name), "_keras_serializable", False)}
    assert main_layer_classes == {tfgpt.TFOpenAIGPTMainLayer}
    x = common_inputs()
    keras.utils.set_random_seed(0)
    main_layer = tfgpt.TFOpenAIGPTMainLayer(make_config())
    symbolic = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in x.items()}
    model = keras.Model(symbolic, outputs=main_layer(symbolic))
    outputs = model(x)
    path = tmp_path / "keras_model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"TFOpenAIGPTMainLayer": tfgpt.TFOpenAIGPTMainLayer})
    assert isinstance(loaded, keras.Model)
    assert_same(loaded(x), outputs)


@pytest.mark.parametrize("cls", ALL[:2], ids=IDS[:2])
def test_compile_tf_model(cls, tmp_path):
    """Functional model over input_signature's free shapes; predict on dummy_inputs; save it (.keras)."""
    model = build(cls)
    functional_inputs = {key: keras.Input(shape=spec.shape[1:], dtype=spec.dtype, name=key)
                         for key, spec in model.input_signature.items() if key in model.dummy_inputs}
    hidden = model(functional_inputs)[0]
    functional = keras.Model(inputs=functional_inputs, outputs=hidden)
    out = functional.predict(model.dummy_inputs, verbose=0)
    np.testing.assert_allclose(out, first(model(model.dummy_inputs)), atol=1e-5)
    functional.save(tmp_path / "functional.keras")


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_keyword_and_dict_args(cls):
    model = build(cls)
    x = common_inputs()
    assert np.abs(first(model(x)) - first(model(**copy.deepcopy(x)))).sum() < 1e-6


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_attention_outputs(cls):
    config = make_config(return_dict=True)
    x = common_inputs()

    def check(outputs):
        attentions = outputs.attentions
        assert len(attentions) == LAYERS
        assert list(attentions[0].shape[-3:]) == [HEADS, SEQ, SEQ]
        np.testing.assert_allclose(attentions[0].numpy().sum(-1), 1.0, atol=1e-5)  # rows are softmaxes

    config.output_hidden_states = False
    outputs = build(cls, config)({**x, "output_attentions": True})
    out_len = len(outputs)
    assert config.output_hidden_states is False
    check(outputs)
    # through the config
    config.output_attentions = True
    by_config = build(cls, config)(x)
    check(by_config)
    np.testing.assert_allclose(by_config.attentions[1].numpy(), outputs.attentions[1].numpy(), atol=1e-6)
    # attentions come last, after the hidden states
    config.output_hidden_states = True
    outputs = build(cls, config)({**x, "output_attentions": True})
    assert len(outputs) == out_len + 1
    assert list(outputs.keys())[-2:] == ["hidden_states", "attentions"]
    check(outputs)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_hidden_states_output(cls):
    config = make_config()
    x = common_inputs()
    by_input = build(cls, config)({**x, "output_hidden_states": True})
    config.output_hidden_states = True
    by_config = build(cls, config)(x)
    for outputs in (by_input, by_config):
        assert config.output_attentions is False and outputs.attentions is None
        assert len(outputs.hidden_states) == LAYERS + 1
        assert list(outputs.hidden_states[0].shape[-2:]) == [SEQ, HIDDEN]
    np.testing.assert_allclose(by_input.hidden_states[-1].numpy(), by_config.hidden_states[-1].numpy(), atol=1e-6)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_model_common_attributes(cls):
    model = build(cls)
    assert isinstance(model.get_input_embeddings(), keras.layers.Layer)
    assert model.get_lm_head() is None
    if cls in GENERATIVE:  # HF's TF_MODEL_FOR_CAUSAL_LM_MAPPING
        assert isinstance(model.get_output_embeddings(), keras.layers.Layer)
    else:
        assert model.get_output_embeddings() is None
    assert model.get_bias() is None


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_determinism(cls):
    model = build(cls)
    x = common_inputs()
    np.testing.assert_array_equal(first(model(x, training=False)), first(model(x, training=False)))


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_model_outputs_equivalence(cls):
    model = build(cls)

    def check(inputs, **kwargs):
        as_tuple = model(inputs, return_dict=False, **kwargs)
        as_dict = model(inputs, return_dict=True, **kwargs).to_tuple()
        assert isinstance(as_tuple, tuple) and len(as_tuple) == len(as_dict)
        for a, b in zip(tf.nest.flatten(as_tuple), tf.nest.flatten(as_dict)):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
        return as_tuple

    x = common_inputs()
    assert len(check(x)) == (2 if cls is tfgpt.TFOpenAIGPTDoubleHeadsModel else 1)
    assert len(check(x, output_hidden_states=True)[-1]) == LAYERS + 1
    assert len(check(x, output_attentions=True)[-1]) == LAYERS
    if "labels" in inspect.signature(model.call).parameters and cls is not tfgpt.TFOpenAIGPTDoubleHeadsModel:
        labelled = with_labels(x, cls)
        assert check(labelled)[0].shape == ()  # the loss comes first
        check(labelled, output_hidden_states=True)
        check(labelled, output_hidden_states=True, output_attentions=True)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_inputs_embeds(cls):
    model = build(cls)
    x = common_inputs()
    inputs = dict(x)
    input_ids = inputs.pop("input_ids")
    inputs["inputs_embeds"] = model.get_input_embeddings()(input_ids)
    np.testing.assert_allclose(first(model(inputs)), first(model(x)), atol=1e-5)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_numpy_arrays_inputs(cls):
    model = build(cls)
    x = {k: v.numpy() for k, v in common_inputs().items()}
    assert_same(model(x), model(**x))
    assert_same(model(x), model({k: tf.constant(v) for k, v in x.items()}))


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_valid_input_signature_and_dummies(cls):
    model = build(cls)
    call_args = inspect.signature(model.call).parameters
    assert set(model.input_signature) <= set(call_args)
    assert set(model.dummy_inputs) <= set(call_args)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
@pytest.mark.parametrize("size", [VOCAB - 10, VOCAB + 10, None])
def test_resize_token_embeddings(cls, size):
    """Below pad_token_id (98) too, as HF: no error; kept rows unchanged; the LM head stays tied."""
    config = make_config()
    model = build(cls, copy.deepcopy(config))
    old = model.get_input_embeddings().embeddings.numpy()
    model.resize_token_embeddings(size)
    new = model.get_input_embeddings().embeddings.numpy()
    expected = size if size is not None else VOCAB
    assert new.shape == (expected, HIDDEN) and model.config.vocab_size == expected
    keep = min(expected, VOCAB)
    np.testing.assert_array_equal(new[:keep], old[:keep])
    if model.get_output_embeddings() is not None:
        assert model.get_output_embeddings().embeddings.shape == (expected, HIDDEN)
    assert model.get_bias() is None
    ids = tf.constant([[0, 1, expected - 1]], tf.int32)
    if cls is tfgpt.TFOpenAIGPTLMHeadModel:
        assert model(ids).logits.shape == (1, 3, expected)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_save_load_after_resize_token_embeddings(cls, tmp_path):
    config = make_config()
    model = build(cls, copy.deepcopy(config))
    model.build_in_name_scope()
    model.resize_token_embeddings(VOCAB + 10)
    x = common_inputs()
    x["input_ids"] = ids_tensor([BATCH, SEQ], 10, np.random.default_rng(3)) + VOCAB  # new rows only
    outputs = model(**x)
    model.save_pretrained(tmp_path, saved_model=False)
    restored = cls.from_pretrained(tmp_path)
    assert restored.config.vocab_size == VOCAB + 10
    assert_same(restored(**x), outputs)


def test_embeddings_out_of_bounds_raise_exception():
    """HF checks this on GPU (InvalidArgumentError); tfgpt raises a ValueError naming input_ids."""
    x = common_inputs()
    x["input_ids"] = x["input_ids"] * int(1e6)
    for cls in ALL:
        with pytest.raises(ValueError, match="input_ids"):
            build(cls)(**x)


@pytest.mark.parametrize("cls", [tfgpt.TFOpenAIGPTLMHeadModel, tfgpt.TFOpenAIGPTForSequenceClassification],
                         ids=["lm", "seqcls"])
def test_loss_computation(cls):
    """The loss by keywords, with masked labels, by dict and by a tuple in signature order."""
    model = build(cls)
    x = common_inputs()
    prepared = with_labels(x, cls)
    by_kwargs = model(prepared.pop("input_ids"), **prepared).loss
    assert by_kwargs.shape == ()  # HF's TF heads return shape [1]; tfgpt's loss is a scalar
    by_dict = model(with_labels(x, cls))[0]
    np.testing.assert_allclose(by_dict.numpy(), by_kwargs.numpy(), atol=1e-6)
    if cls is tfgpt.TFOpenAIGPTLMHeadModel:
        labels = np.asarray(with_labels(x, cls)["labels"]).copy()
        labels[0] = -100
        masked = model({**x, "labels": labels})[0]
        assert not np.isnan(masked.numpy())
        logits = model(x).logits.numpy()[1:, :-1]  # rows 1.. predict token 0 at every step
        expected = -tf.nn.log_softmax(logits)[..., 0].numpy().mean()
        np.testing.assert_allclose(masked.numpy(), expected, atol=1e-5)
    # the tuple: every parameter's default, the inputs and labels at their places, the last one dropped
    signature = inspect.signature(model.call).parameters
    names = list(signature)
    values = [signature[n].default for n in names]
    labelled = with_labels(x, cls)
    for key in ("input_ids", "labels"):
        values[names.index(key)] = labelled[key]
    by_tuple = model(tuple(values[:-1]))[0]
    expected_plain = model(x["input_ids"], labels=labelled["labels"]).loss
    np.testing.assert_allclose(by_tuple.numpy(), expected_plain.numpy(), atol=1e-6)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_keras_fit(cls):
    """fit() with labels inside the inputs and as y give the same validation loss (lr 0)."""
    model = build(cls)
    prepared = with_labels(common_inputs(), cls)
    outputs = model(prepared)
    if outputs.get("loss") is None:
        return
    weights = model.get_weights()
    is_classifier = cls.__name__.endswith(("ForSequenceClassification", "LMHeadModel"))
    metrics = [keras.metrics.SparseCategoricalAccuracy()] if is_classifier else []
    sample_weight = tf.convert_to_tensor([0.5] * BATCH, tf.float32)
    model.compile(optimizer=keras.optimizers.SGD(0.0), run_eagerly=True, metrics=metrics)
    h1 = model.fit(prepared, validation_data=prepared, sample_weight=sample_weight, steps_per_epoch=1,
                   validation_steps=1, shuffle=False, verbose=0)
    val1 = h1.history["val_loss"][0]
    assert not np.isnan(val1)
    np.testing.assert_allclose(val1, float(outputs.loss), rtol=1e-4)
    labels = {"labels": prepared["labels"]}
    features = {k: v for k, v in prepared.items() if k != "labels"}
    model.set_weights(weights)
    h2 = model.fit(features, labels, validation_data=(features, labels), sample_weight=sample_weight,
                   steps_per_epoch=1, validation_steps=1, shuffle=False, verbose=0)
    val2 = h2.history["val_loss"][0]
    np.testing.assert_allclose(val1, val2, atol=1e-2, rtol=1e-3)
    assert h1.history.keys() == h2.history.keys()
    for key in h1.history:
        if not key.startswith("val_"):
            assert "val_" + key in h1.history
    if metrics:
        assert any(k.endswith("accuracy") for k in h1.history)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_int_support(cls):
    model = build(cls)
    prepared = with_labels(common_inputs(), cls)
    as64 = model(**{k: tf.cast(v, tf.int64) for k, v in prepared.items()})
    as32 = model(**{k: tf.cast(v, tf.int32) for k, v in prepared.items()})
    assert_same(as64, as32, atol=0)
    for key, tensor in model.dummy_inputs.items():
        assert isinstance(tensor, tf.Tensor) and tensor.dtype == tf.int32, key
    for key, spec in model.input_signature.items():
        assert spec.dtype == tf.int32, key


def test_load_with_mismatched_shapes(tmp_path, caplog):
    x = common_inputs()
    model = build(tfgpt.TFOpenAIGPTForSequenceClassification)
    model(**x)
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="score"):
        tfgpt.TFAutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=42)
    with pytest.raises(ValueError, match="tokens_embed"):
        tfgpt.TFAutoModel.from_pretrained(tmp_path, vocab_size=10)
    with caplog.at_level(logging.WARNING, logger="tfgpt.checkpoints.loading"):
        new_model = tfgpt.TFAutoModelForSequenceClassification.from_pretrained(
            tmp_path, num_labels=42, ignore_mismatched_sizes=True)
    assert "the shapes did not match" in caplog.text
    assert new_model(**x).logits.shape[1] == 42
    # the transformer still carries the saved weights
    np.testing.assert_array_equal(new_model.get_input_embeddings().embeddings.numpy(),
                                  model.get_input_embeddings().embeddings.numpy())
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tfgpt.checkpoints.loading"):
        without_prefix = tfgpt.TFAutoModel.from_pretrained(tmp_path, vocab_size=10, ignore_mismatched_sizes=True)
    assert "the shapes did not match" in caplog.text
    assert without_prefix.config.vocab_size == 10
    out = without_prefix(ids_tensor((2, 8), 10, np.random.default_rng(4)))
    assert out.last_hidden_state.shape == (2, 8, HIDDEN)
    np.testing.assert_array_equal(without_prefix.transformer.positions_embed.embeddings.numpy(),
                                  model.transformer.positions_embed.embeddings.numpy())


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_model_main_input_name(cls):
    assert cls.main_input_name == list(inspect.signature(cls.call).parameters)[1] == "input_ids"


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_headmasking(cls):
    """HF's test_headmasking: head 0 of the first layer and all but the last head of the last layer
    masked give zero attention there and not elsewhere; a mask of ones changes nothing."""
    config = make_config(output_hidden_states=True)
    model = build(cls, config)
    x = common_inputs()
    head_mask = np.ones((LAYERS, HEADS), np.float32)
    head_mask[0, 0] = 0.0
    head_mask[-1, :-1] = 0.0
    outputs = model(**x, head_mask=tf.constant(head_mask), output_attentions=True, return_dict=True)
    attentions = [a.numpy() for a in outputs.attentions]
    assert not any(np.isnan(a).any() for a in attentions)
    assert abs(attentions[0][..., 0, :, :].sum()) < 1e-6
    assert attentions[0][..., -1, :, :].sum() != 0.0
    assert abs(attentions[-1][..., -2, :, :].sum()) < 1e-6
    assert attentions[-1][..., -1, :, :].sum() != 0.0
    ones = model(**x, head_mask=tf.ones((LAYERS, HEADS)), return_dict=True)
    assert_same(ones, model(**x, return_dict=True), atol=1e-6)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_mixed_precision(cls):
    """HF's test_mixed_precision: models build and run under the global mixed_float16 policy; the
    outputs stay float32 and near the float32 model's."""
    x = common_inputs()
    reference = first(build(cls)(x))
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build(cls)
        out = model(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.transformer.compute_dtype == "float16"
    value = first(out)
    if cls is not tfgpt.TFOpenAIGPTModel:  # heads return float32 logits
        assert value.dtype == np.float32
    np.testing.assert_allclose(value.astype(np.float32), reference, atol=5e-2)


def test_train_pipeline_custom_model(tmp_path):
    """HF's test_train_pipeline_custom_model: the main layer inside a user's functional model with a
    Dense head trains with fit() and reloads (``.keras``) with the same outputs."""
    x = common_inputs()
    keras.utils.set_random_seed(0)
    main_layer = tfgpt.TFOpenAIGPTMainLayer(make_config())
    symbolic = {name: keras.Input(t.shape[1:], dtype=t.dtype, name=name) for name, t in x.items()}
    hidden = main_layer(symbolic)[0]
    outputs = keras.layers.Dense(NUM_LABELS, activation="softmax", name="outputs")(hidden)
    model = keras.Model(inputs=symbolic, outputs=[outputs])
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["binary_accuracy"])
    targets = np.ones((BATCH, SEQ, NUM_LABELS), np.float32)
    data = tf.data.Dataset.from_tensor_slices((x, targets)).batch(1)
    history = model.fit(data, epochs=2, shuffle=False, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    path = tmp_path / "keras_model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"TFOpenAIGPTMainLayer": tfgpt.TFOpenAIGPTMainLayer})
    assert isinstance(loaded, keras.Model)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_xla_fit(cls):
    """HF's test_xla_fit: fit() with jit_compile=True, labels in the inputs or as y, reports the
    model's own loss (lr 0)."""
    model = build(cls)
    prepared = with_labels(common_inputs(), cls)
    outputs = model(prepared)
    if outputs.get("loss") is None:
        return
    model.compile(optimizer=keras.optimizers.SGD(0.0), jit_compile=True)
    history = model.fit(prepared, validation_data=prepared, steps_per_epoch=1, validation_steps=1,
                        shuffle=False, verbose=0)
    assert np.isfinite(history.history["loss"][0])  # with dropout: not the eval loss
    np.testing.assert_allclose(history.history["val_loss"][0], float(outputs.loss), rtol=1e-4)
    labels = {"labels": prepared["labels"]}
    features = {k: v for k, v in prepared.items() if k != "labels"}
    history = model.fit(features, labels, validation_data=(features, labels), steps_per_epoch=1,
                        validation_steps=1, shuffle=False, verbose=0)
    np.testing.assert_allclose(history.history["val_loss"][0], float(outputs.loss), rtol=1e-4)
