"""The core model family: HF parity on the fixtures, input conventions, masks, losses, Keras plumbing."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt
from conftest import HF_FIXTURES, tiny_config
from tfgpt.models.modeling import positions_from_mask


def golden(name):
    return np.load(HF_FIXTURES / name / "golden.npz")


@pytest.fixture(scope="module")
def lm_model():
    return tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF_FIXTURES / "lm")


# --- configuration -----------------------------------------------------------------------------------

def test_config_defaults_and_aliases():
    cfg = tfgpt.OpenAIGPTConfig()
    assert (cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_layer, cfg.n_head) == (40478, 512, 768, 12, 12)
    assert cfg.afn == "gelu" and cfg.layer_norm_epsilon == 1e-5 and cfg.summary_type == "cls_index"
    assert cfg.num_labels == 2 and cfg.pad_token_id is None
    cfg = tfgpt.OpenAIGPTConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=3,
                                max_position_embeddings=100)
    assert (cfg.n_embd, cfg.n_head, cfg.n_layer, cfg.n_positions) == (64, 4, 3, 100)
    assert (cfg.hidden_size, cfg.num_attention_heads, cfg.num_hidden_layers,
            cfg.max_position_embeddings) == (64, 4, 3, 100)


@pytest.mark.parametrize("kwargs, field", [
    (dict(n_embd=30, n_head=4), "n_embd"),
    (dict(afn="tanhh"), "afn"),
    (dict(n_layer=0), "n_layer"),
    (dict(vocab_size=-3), "vocab_size"),
    (dict(n_head=0), "n_head"),
    (dict(attn_pdrop=1.5), "attn_pdrop"),
    (dict(summary_type="middle"), "summary_type"),
])
def test_config_invalid_values_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        tfgpt.OpenAIGPTConfig(**kwargs)


def test_config_json_round_trip_keeps_unknown_keys(tmp_path):
    cfg = tfgpt.OpenAIGPTConfig.from_pretrained(HF_FIXTURES / "seqcls")
    assert cfg.num_labels == 3 and cfg.pad_token_id == 999 and cfg.architectures == [
        "OpenAIGPTForSequenceClassification"]
    cfg.save_pretrained(tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["model_type"] == "openai-gpt" and data["transformers_version"] == "4.57.6"
    assert data["id2label"] == {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}
    again = tfgpt.OpenAIGPTConfig.from_pretrained(tmp_path)
    assert again == cfg and again.to_dict() == cfg.to_dict()
    assert tfgpt.OpenAIGPTConfig.from_dict(cfg.to_dict(), num_labels=5).num_labels == 5


# --- numerics against HF ---------------------------------------------------------------------------------

def test_lm_parity_with_hf(lm_model):
    g = golden("lm")
    out = lm_model(g["input_ids"], attention_mask=g["attention_mask"], token_type_ids=g["token_type_ids"],
                   labels=g["labels"], output_hidden_states=True, output_attentions=True)
    np.testing.assert_allclose(out.logits.numpy(), g["logits"], atol=1e-4)
    np.testing.assert_allclose(out.loss.numpy(), g["loss"], atol=1e-4)
    assert out.loss.shape == ()
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    np.testing.assert_allclose(np.stack(out.hidden_states), g["hidden_states"], atol=1e-4)
    np.testing.assert_allclose(np.stack(out.attentions), g["attentions"], atol=1e-4)
    plain = lm_model(g["input_ids"]).logits.numpy()
    np.testing.assert_allclose(plain, g["logits_plain"], atol=1e-4)


def test_base_model_parity_last_hidden_state():
    g = golden("lm")
    model = tfgpt.TFOpenAIGPTModel.from_pretrained(HF_FIXTURES / "lm")
    out = model(g["input_ids"], attention_mask=g["attention_mask"], token_type_ids=g["token_type_ids"])
    np.testing.assert_allclose(out.last_hidden_state.numpy(), g["last_hidden_state"], atol=1e-4)


def test_exact_gelu_reproduces_hf_tf_classes():
    g = golden("lm")
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF_FIXTURES / "lm", afn="gelu_exact")
    out = model(g["input_ids"], attention_mask=g["attention_mask"], token_type_ids=g["token_type_ids"])
    np.testing.assert_allclose(out.logits.numpy(), g["hf_tf_logits_exact_gelu"], atol=1e-4)
    assert np.abs(out.logits.numpy() - g["logits"]).max() > 1e-4  # the two GELUs really differ


def test_double_heads_parity_with_hf():
    g = golden("double_heads")
    model = tfgpt.TFOpenAIGPTDoubleHeadsModel.from_pretrained(HF_FIXTURES / "double_heads")
    out = model(g["input_ids"], mc_token_ids=g["mc_token_ids"], labels=g["labels"], mc_labels=g["mc_labels"])
    np.testing.assert_allclose(out.logits.numpy(), g["logits"], atol=1e-4)
    np.testing.assert_allclose(out.mc_logits.numpy(), g["mc_logits"], atol=1e-4)
    np.testing.assert_allclose(out.loss.numpy(), g["loss"], atol=1e-4)
    np.testing.assert_allclose(out.mc_loss.numpy(), g["mc_loss"], atol=1e-4)
    default = model(g["input_ids"]).mc_logits.numpy()
    np.testing.assert_allclose(default, g["mc_logits_default_index"], atol=1e-4)


def test_sequence_classification_parity_with_hf():
    g = golden("seqcls")
    model = tfgpt.TFOpenAIGPTForSequenceClassification.from_pretrained(HF_FIXTURES / "seqcls")
    out = model(g["input_ids"], labels=g["labels"])
    assert out.logits.shape == (4, 3)
    np.testing.assert_allclose(out.logits.numpy(), g["logits"], atol=1e-4)
    np.testing.assert_allclose(out.loss.numpy(), g["loss"], atol=1e-4)


# --- padding and positions ---------------------------------------------------------------------------

def test_positions_from_mask():
    mask = tf.constant([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    np.testing.assert_array_equal(positions_from_mask(mask).numpy(),
                                  [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4]])


def test_left_padded_batch_matches_rows_alone(lm_model):
    rng = np.random.default_rng(0)
    lengths = [9, 4, 6, 1]
    width = max(lengths)
    rows = [rng.integers(0, 1000, n) for n in lengths]
    ids = np.zeros((len(rows), width), np.int32)
    mask = np.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    batch = lm_model(ids, attention_mask=mask).logits.numpy()
    for i, r in enumerate(rows):
        alone = lm_model(r[None]).logits.numpy()[0]
        np.testing.assert_allclose(batch[i, width - len(r):], alone, atol=1e-5)


def test_explicit_position_ids_override_the_mask(lm_model):
    ids = np.array([[5, 6, 7, 8]])
    shifted = np.array([[3, 4, 5, 6]])
    a = lm_model(ids, attention_mask=np.ones_like(ids), position_ids=shifted).logits.numpy()
    # explicit positions win over the ones the mask implies (0..3) ...
    np.testing.assert_allclose(a, lm_model(ids, position_ids=shifted).logits.numpy(), atol=1e-5)
    assert np.abs(a - lm_model(ids, attention_mask=np.ones_like(ids)).logits.numpy()).max() > 1e-3
    # ... and equal the same tokens at positions 3..6 behind three masked pads
    padded = np.array([[1, 1, 1, 5, 6, 7, 8]])
    b = lm_model(padded, attention_mask=np.array([[0, 0, 0, 1, 1, 1, 1]]),
                 position_ids=np.arange(7)[None]).logits.numpy()[:, 3:]
    np.testing.assert_allclose(a, b, atol=1e-5)


# --- input conventions ---------------------------------------------------------------------------------

def test_keyword_dict_list_and_dtype_inputs_agree(lm_model):
    g = golden("lm")
    ids, mask = g["input_ids"], g["attention_mask"]
    ref = lm_model(input_ids=ids, attention_mask=mask).logits.numpy()
    for out in (
        lm_model({"input_ids": ids, "attention_mask": mask}),
        lm_model([ids, mask]),
        lm_model(tf.constant(ids, tf.int32), attention_mask=tf.constant(mask, tf.int64)),
        lm_model(ids.astype(np.int64), attention_mask=mask.astype(np.int32)),
    ):
        np.testing.assert_allclose(out.logits.numpy(), ref, atol=1e-6)
    embeds = tf.gather(lm_model.get_input_embeddings().embeddings, ids)
    np.testing.assert_allclose(lm_model(inputs_embeds=embeds, attention_mask=mask).logits.numpy(), ref, atol=1e-5)


def test_input_errors_are_clear(lm_model):
    with pytest.raises(ValueError, match="unknown input 'input_idz'"):
        lm_model({"input_idz": np.array([[1, 2]])})
    with pytest.raises(ValueError, match="either input_ids or inputs_embeds"):
        lm_model(np.array([[1, 2]]), inputs_embeds=np.zeros((1, 2, 64), np.float32))
    with pytest.raises(ValueError, match="input_ids holds 1000, outside \\[0, 1000\\)"):
        lm_model(np.array([[1, 1000]]))
    with pytest.raises(ValueError, match="input_ids holds -1"):
        lm_model(np.array([[-1, 3]]))
    with pytest.raises(ValueError, match="sequence length 129 is longer than n_positions=128"):
        lm_model(np.ones((1, 129), np.int32))
    with pytest.raises(ValueError, match="attention_mask has shape \\[1, 3\\], expected \\[1, 4\\]"):
        lm_model(np.array([[1, 2, 3, 4]]), attention_mask=np.array([[1, 1, 1]]))
    with pytest.raises(ValueError, match="position_ids holds 128"):
        lm_model(np.array([[1, 2]]), position_ids=np.array([[0, 128]]))


def test_dynamic_shape_errors_inside_tf_function(lm_model):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
    def run(ids):
        return lm_model(ids).logits

    with pytest.raises(tf.errors.InvalidArgumentError, match="input_ids outside"):
        run(tf.constant([[1, 5000]]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="n_positions"):
        run(tf.ones((1, 130), tf.int32))


def test_outputs_have_attribute_key_and_tuple_access(lm_model):
    ids = np.array([[1, 2, 3]])
    out = lm_model(ids, labels=ids)
    assert out.logits is out["logits"] and out[0] is out.loss
    assert out.hidden_states is None and "hidden_states" not in out
    loss, logits = out.to_tuple()
    assert logits.shape == (1, 3, 1000)
    as_tuple = lm_model(ids, return_dict=False)
    assert isinstance(as_tuple, tuple) and as_tuple[0].shape == (1, 3, 1000)


def test_dropout_only_when_training():
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(resid_pdrop=0.5, embd_pdrop=0.5, attn_pdrop=0.5))
    ids = np.arange(10)[None]
    a, b = model(ids).logits.numpy(), model(ids).logits.numpy()
    np.testing.assert_array_equal(a, b)
    c = model(ids, training=True).logits.numpy()
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("jit", [False, True])
def test_dropout_layer_semantics(jit):
    from tfgpt.models.layers import Dropout

    layer = Dropout(0.25)
    x = tf.ones([200, 500])
    call = tf.function(lambda t, training: layer(t, training=training), jit_compile=True) if jit else layer
    np.testing.assert_array_equal(call(x, training=False).numpy(), x.numpy())
    a, b = call(x, training=True).numpy(), call(x, training=True).numpy()
    for out in (a, b):
        assert set(np.unique(out).tolist()) == {0.0, np.float32(1 / 0.75)}  # kept values scaled by 1/(1-rate)
        assert abs((out == 0).mean() - 0.25) < 0.01
    assert (a != b).any()  # a new mask per call
    assert Dropout.from_config(layer.get_config()).rate == 0.25
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True).numpy(), x.numpy())


@pytest.mark.parametrize("jit", [False, True])
def test_dropout_masks_follow_the_seed(jit):
    from tfgpt.models.layers import Dropout

    def first_mask(layer):
        run = tf.function(lambda t: layer(t, training=True), jit_compile=jit)
        return run(tf.ones([64, 300])).numpy()

    np.testing.assert_array_equal(first_mask(Dropout(0.3, seed=7)), first_mask(Dropout(0.3, seed=7)))
    assert (first_mask(Dropout(0.3, seed=7)) != first_mask(Dropout(0.3, seed=8))).any()
    keras_mask = first_mask(keras.layers.Dropout(0.3, seed=7))
    if jit:  # ThreeFry under XLA: another stream than Keras' Philox for the same seed
        assert (first_mask(Dropout(0.3, seed=7)) != keras_mask).mean() > 0.1
    else:  # Keras' own dropout
        np.testing.assert_array_equal(first_mask(Dropout(0.3, seed=7)), keras_mask)


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


ACTIVATIONS = {
    "gelu": _gelu_tanh,
    "gelu_new": _gelu_tanh,
    "gelu_exact": lambda x: 0.5 * x * (1.0 + np.vectorize(math.erf)(x / np.sqrt(2.0))),
    "relu": lambda x: np.maximum(x, 0.0),
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "swish": lambda x: x / (1.0 + np.exp(-x)),
}


@pytest.mark.parametrize("afn", sorted(ACTIVATIONS))
def test_activations(afn):
    """The MLP computes c_proj(act(c_fc(x))) with the named activation, checked against numpy."""
    keras.utils.set_random_seed(1)
    model = tfgpt.TFOpenAIGPTModel(tiny_config(afn=afn, initializer_range=0.5))
    mlp = model.transformer.h[0].mlp
    x = np.random.default_rng(0).normal(0, 1, (1, 5, 32)).astype(np.float32)
    w_fc, b_fc = mlp.c_fc.kernel.numpy(), mlp.c_fc.bias.numpy()
    w_proj, b_proj = mlp.c_proj.kernel.numpy(), mlp.c_proj.bias.numpy()
    pre = x @ w_fc + b_fc  # (1, 5, 128), spread over [-10, 10] so the activations differ
    want = ACTIVATIONS[afn](pre.astype(np.float64)) @ w_proj + b_proj
    np.testing.assert_allclose(mlp(x).numpy(), want, rtol=1e-4, atol=1e-4)
    assert np.abs(pre).max() > 3


def test_head_mask_zeroes_heads():
    model = tfgpt.TFOpenAIGPTModel(tiny_config())
    ids = np.arange(6)[None]
    out = model(ids, head_mask=np.array([1.0, 0.0, 1.0, 1.0]), output_attentions=True)
    assert np.all(out.attentions[0].numpy()[:, 1] == 0.0)
    assert not np.allclose(out.last_hidden_state.numpy(), model(ids).last_hidden_state.numpy())


# --- heads ---------------------------------------------------------------------------------------------

def test_lm_loss_ignores_minus_100_and_is_token_mean():
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    ids = np.array([[3, 4, 5, 6, 7]])
    labels = np.array([[3, 4, -100, 6, 7]])
    out = model(ids, labels=labels)
    logp = tf.nn.log_softmax(out.logits[0, :-1]).numpy()
    expected = -np.mean([logp[0, 4], logp[2, 6], logp[3, 7]])
    np.testing.assert_allclose(out.loss.numpy(), expected, rtol=1e-5)


def _sliced_lm_loss(labels, logits):
    """The LM loss as written before: logits sliced to [:, :-1], TensorFlow's sparse cross-entropy."""
    labels = tf.convert_to_tensor(labels)[:, 1:]
    keep = tf.not_equal(labels, -100)
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.where(keep, labels, 0),
                                                        logits=tf.cast(logits, tf.float32)[:, :-1])
    keep = tf.cast(keep, tf.float32)
    return tf.reduce_sum(ce * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)


def _loss_and_grad(loss_fn, labels, logits, jit):
    def run(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = loss_fn(labels, x)
        return loss, tape.gradient(loss, x)

    loss, grad = (tf.function(run, jit_compile=True) if jit else run)(tf.convert_to_tensor(logits))
    return loss.numpy(), grad.numpy()


def _numpy_lm_loss(labels, logits):
    x, target = logits[:, :-1].astype(np.float64), labels[:, 1:]
    keep = target != -100
    logp = x - x.max(-1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(-1, keepdims=True))
    safe = np.where(keep, target, 0)
    loss = -np.take_along_axis(logp, safe[..., None], -1)[..., 0][keep].mean()
    grad = np.zeros(logits.shape)
    grad[:, :-1] = (np.exp(logp) - np.eye(logits.shape[-1])[safe]) * keep[..., None] / keep.sum()
    return loss, grad


@pytest.mark.parametrize("jit", [False, True])
def test_lm_loss_and_gradient_match_numpy_and_the_sliced_formula(jit):
    from tfgpt.models.modeling import causal_lm_loss

    rng = np.random.default_rng(3)
    logits = rng.normal(scale=3.0, size=(3, 7, 50)).astype("float32")
    labels = rng.integers(0, 50, (3, 7)).astype("int32")
    labels[0, 2] = labels[1, 6] = labels[2, 0] = -100
    loss, grad = _loss_and_grad(causal_lm_loss, labels, logits, jit)
    want_loss, want_grad = _numpy_lm_loss(labels, logits)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(grad, want_grad, atol=1e-7)
    assert np.all(grad[:, -1] == 0) and np.all(grad[1, 5] == 0)  # no target / an ignored one
    old_loss, old_grad = _loss_and_grad(_sliced_lm_loss, labels, logits, jit)
    np.testing.assert_allclose(loss, old_loss, rtol=1e-6)
    np.testing.assert_allclose(grad, old_grad, atol=1e-7)
    none = np.full_like(labels, -100)
    loss, grad = _loss_and_grad(causal_lm_loss, none, logits, jit)
    assert loss == 0.0 and not grad.any()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_lm_loss_of_half_precision_logits_is_float32(dtype):
    from tfgpt.models.modeling import causal_lm_loss

    rng = np.random.default_rng(4)
    half = tf.cast(rng.normal(scale=3.0, size=(2, 6, 40)).astype("float32"), dtype)
    labels = rng.integers(0, 40, (2, 6)).astype("int32")
    loss, grad = _loss_and_grad(causal_lm_loss, labels, half, jit=True)
    assert loss.dtype == np.float32 and grad.dtype == half.dtype.as_numpy_dtype
    want_loss, want_grad = _numpy_lm_loss(labels, tf.cast(half, tf.float32).numpy())
    np.testing.assert_allclose(loss, want_loss, rtol=1e-6)
    np.testing.assert_allclose(grad.astype(np.float32), want_grad, atol=1e-3)


def test_seqcls_pools_last_non_pad_token_with_left_and_right_padding():
    cfg = tiny_config(pad_token_id=0, num_labels=3)
    model = tfgpt.TFOpenAIGPTForSequenceClassification(cfg)
    row = np.array([5, 6, 7])
    alone = model(row[None]).logits.numpy()
    right = model(np.array([[5, 6, 7, 0, 0]]), attention_mask=np.array([[1, 1, 1, 0, 0]])).logits.numpy()
    left = model(np.array([[0, 0, 5, 6, 7]]), attention_mask=np.array([[0, 0, 1, 1, 1]])).logits.numpy()
    np.testing.assert_allclose(right, alone, atol=1e-5)
    np.testing.assert_allclose(left, alone, atol=1e-5)


def test_seqcls_losses_by_problem_type():
    reg = tfgpt.TFOpenAIGPTForSequenceClassification(tiny_config(num_labels=1, pad_token_id=0))
    ids = np.array([[4, 5, 6], [7, 8, 0]])
    out = reg(ids, labels=np.array([0.5, -1.0], np.float32))
    np.testing.assert_allclose(out.loss.numpy(), np.mean((out.logits.numpy()[:, 0] - [0.5, -1.0]) ** 2), rtol=1e-5)
    multi = tfgpt.TFOpenAIGPTForSequenceClassification(
        tiny_config(num_labels=3, pad_token_id=0, problem_type="multi_label_classification"))
    y = np.array([[1, 0, 1], [0, 1, 0]], np.float32)
    out = multi(ids, labels=y)
    z = out.logits.numpy()
    bce = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    np.testing.assert_allclose(out.loss.numpy(), bce, rtol=1e-5)


def test_seqcls_without_pad_token_refuses_batches():
    model = tfgpt.TFOpenAIGPTForSequenceClassification(tiny_config(num_labels=2))
    assert model(np.array([[1, 2, 3]])).logits.shape == (1, 2)
    with pytest.raises(ValueError, match="pad_token_id"):
        model(np.array([[1, 2, 3], [4, 5, 6]]))


@pytest.mark.parametrize("summary_type", ["last", "first", "mean", "cls_index"])
def test_double_heads_summary_types(summary_type):
    model = tfgpt.TFOpenAIGPTDoubleHeadsModel(tiny_config(summary_type=summary_type, num_labels=1))
    ids = np.random.default_rng(1).integers(0, 99, (2, 3, 7))
    out = model(ids, output_hidden_states=True)
    assert out.mc_logits.shape == (2, 3) and out.logits.shape == (2, 3, 7, 99)
    h = out.hidden_states[-1].numpy()
    pick = {"last": h[..., -1, :], "first": h[..., 0, :], "mean": h.mean(-2), "cls_index": h[..., -1, :]}[summary_type]
    head = model.multiple_choice_head.summary
    expected = pick @ head.kernel.numpy() + head.bias.numpy()
    np.testing.assert_allclose(out.mc_logits.numpy(), expected[..., 0], atol=1e-5)


def test_double_heads_mc_token_ids_out_of_range():
    model = tfgpt.TFOpenAIGPTDoubleHeadsModel(tiny_config(num_labels=1))
    with pytest.raises(ValueError, match="mc_token_ids holds 7"):
        model(np.ones((1, 2, 7), np.int32), mc_token_ids=np.array([[1, 7]]))


# --- Keras plumbing ----------------------------------------------------------------------------------

def test_get_config_from_config_and_keras_file_round_trip(tmp_path):
    for cls in (tfgpt.TFOpenAIGPTModel, tfgpt.TFOpenAIGPTLMHeadModel, tfgpt.TFOpenAIGPTDoubleHeadsModel,
                tfgpt.TFOpenAIGPTForSequenceClassification):
        model = cls(tiny_config(pad_token_id=0))
        clone = cls.from_config(model.get_config())
        assert clone.config == model.config
        ids = np.array([[3, 4, 5, 6]]) if cls is not tfgpt.TFOpenAIGPTDoubleHeadsModel else np.ones((1, 2, 4), int)
        path = tmp_path / f"{cls.__name__}.keras"
        model.save(path)
        loaded = keras.models.load_model(path)
        assert type(loaded) is cls
        a, b = model(ids), loaded(ids)
        for key in a:
            np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


def test_main_layer_inside_functional_model():
    cfg = tiny_config()
    layer = tfgpt.TFOpenAIGPTMainLayer(cfg)
    ids = keras.Input(shape=(None,), dtype="int32", name="input_ids")
    mask = keras.Input(shape=(None,), dtype="int32", name="attention_mask")
    hidden = layer(ids, attention_mask=mask).last_hidden_state
    pooled = keras.layers.GlobalAveragePooling1D()(hidden)
    model = keras.Model([ids, mask], keras.layers.Dense(2)(pooled))
    x = np.array([[1, 2, 3, 4]])
    assert model([x, np.ones_like(x)]).shape == (1, 2)
    assert layer.get_config()["config"]["n_layer"] == 2


def test_resize_token_embeddings_keeps_rows_and_ties_head():
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    old = model.get_input_embeddings().embeddings.numpy().copy()
    n_weights = len(model.weights)
    model.resize_token_embeddings(103)
    emb = model.get_input_embeddings()
    assert emb.embeddings.shape == (103, 32) and model.config.vocab_size == 103
    assert len(model.weights) == n_weights
    np.testing.assert_array_equal(emb.embeddings.numpy()[:99], old)
    assert model.get_output_embeddings() is emb
    assert model(np.array([[100, 102]])).logits.shape == (1, 2, 103)


def test_predict_returns_output_structure():
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    out = model.predict({"input_ids": np.ones((5, 4), np.int32)}, batch_size=2, verbose=0)
    assert out["logits"].shape == (5, 4, 99)


def _lm_dataset(n=32, seq=16, labels_in_x=True):
    rng = np.random.default_rng(0)
    base = rng.integers(0, 20, (1, seq))
    ids = np.repeat(base, n, 0).astype(np.int32)  # learnable: one repeated sequence
    ds = tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": ids})
    if not labels_in_x:
        ds = ds.map(lambda d: ({"input_ids": d["input_ids"]}, d["labels"]))
    return ds.batch(8)


@pytest.mark.parametrize("labels_in_x", [True, False])
def test_fit_with_jit_compile_on_tf_data_loss_falls(labels_in_x):
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
    hist = model.fit(_lm_dataset(labels_in_x=labels_in_x), epochs=4, verbose=0)
    losses = hist.history["loss"]
    assert losses[-1] < losses[0] * 0.7, losses


def test_fit_double_heads_and_seqcls_with_jit():
    rng = np.random.default_rng(0)
    dh = tfgpt.TFOpenAIGPTDoubleHeadsModel(tiny_config(num_labels=1))
    ids = rng.integers(1, 99, (16, 2, 6)).astype(np.int32)
    mc = (ids[:, :, 0] > 50).argmax(-1).astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices(({"input_ids": ids, "labels": ids, "mc_labels": mc})).batch(4)
    dh.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    h = dh.fit(ds, epochs=3, verbose=0).history["loss"]
    assert h[-1] < h[0]
    sc = tfgpt.TFOpenAIGPTForSequenceClassification(tiny_config(num_labels=2, pad_token_id=0))
    x = rng.integers(1, 99, (32, 6)).astype(np.int32)
    y = (x[:, -1] > 50).astype(np.int32)
    sc.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=True)
    h = sc.fit(tf.data.Dataset.from_tensor_slices(({"input_ids": x}, y)).batch(8), epochs=5, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_forward_gives_float32_logits(policy):
    model = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config(), dtype=policy)
    ref = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    ref.set_weights(model.get_weights())
    ids = np.array([[0, 0, 3, 4, 5, 6]])
    mask = np.array([[0, 0, 1, 1, 1, 1]])
    out = model(ids, attention_mask=mask, labels=ids)
    assert out.logits.dtype == tf.float32 and out.loss.dtype == tf.float32
    assert model.transformer.h[0].attn.c_attn.compute_dtype == policy.split("_")[1]
    assert model.transformer.tokens_embed.embeddings.dtype == "float32"
    want = ref(ids, attention_mask=mask).logits.numpy()
    assert np.isfinite(out.logits.numpy()).all()
    np.testing.assert_allclose(out.logits.numpy()[:, 2:], want[:, 2:], atol=0.1 if "b" in policy else 0.02)
