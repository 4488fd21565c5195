"""Keras capabilities on the GPT-1 models: quantize, LoRA, RematScope, Model.export."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgpt
from conftest import HF_FIXTURES, tiny_config, tiny_model


def golden():
    return np.load(HF_FIXTURES / "lm" / "golden.npz")


def fixture_lm():
    return tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(HF_FIXTURES / "lm")


def rel_err(a, b):
    """Relative RMS error of ``a`` against the reference ``b``."""
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --- quantize ------------------------------------------------------------------------------------------

# mode -> largest relative RMS logit error on HF's fixture model; float8
# (e4m3 inputs and kernels, 3 mantissa bits) and int4 are coarser than int8
QUANT_TOLERANCE = {"int8": 0.05, "int4": 0.4, "float8": 0.2}


@pytest.mark.parametrize("mode", sorted(QUANT_TOLERANCE))
def test_quantize_keeps_logits_generate_and_keras_round_trip(mode, tmp_path):
    g = golden()
    model = fixture_lm()
    ref = model(g["input_ids"]).logits.numpy()
    before = model.generate(g["input_ids"][:1, :4], max_new_tokens=3, do_sample=False)
    model.quantize(mode)
    attn = model.transformer.h[0].attn.c_attn
    assert attn.quantization_mode == mode
    dtypes = {v.path.rsplit("/", 1)[-1]: v.dtype for v in attn.weights}
    if mode in ("int8", "int4"):
        assert dtypes["kernel"] == "int8" and "kernel_scale" in dtypes
        assert model.transformer.tokens_embed.quantization_mode == mode
    else:  # float8: float kernels with per-tensor scales and amax histories
        assert "kernel_scale" in dtypes and "inputs_amax_history" in dtypes
    out = model(g["input_ids"]).logits.numpy()
    err = rel_err(out, ref)
    print(f"{mode}: relative logit error {err:.4f}")
    assert 0.0 < err < QUANT_TOLERANCE[mode], err
    # generate recompiles on the quantized weights and decodes as many tokens
    ids = model.generate(g["input_ids"][:1, :4], max_new_tokens=3, do_sample=False)
    assert np.asarray(ids).shape == np.asarray(before).shape
    np.testing.assert_array_equal(np.asarray(ids)[:, :4], g["input_ids"][:1, :4])
    # .keras keeps the quantized layout and values
    path = tmp_path / f"{mode}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.transformer.h[1].mlp.c_fc.quantization_mode == mode
    np.testing.assert_allclose(loaded(g["input_ids"]).logits.numpy(), out, atol=1e-6)


def test_quantize_unknown_mode_and_hf_save_are_refused(tmp_path):
    model = tiny_model()
    with pytest.raises(ValueError, match="int3"):
        model.quantize("int3")
    model.quantize("int8")
    with pytest.raises(ValueError, match="quantized"):
        model.save_pretrained(tmp_path / "q")
    state = {name: var.numpy() for name, var in tiny_model().hf_weight_map().items()}
    with pytest.raises(tfgpt.checkpoints.CheckpointError, match="quantize"):
        tfgpt.checkpoints.load_state_dict(model, state)


# --- LoRA ----------------------------------------------------------------------------------------------

def lm_batch(seed=0):
    ids = np.random.default_rng(seed).integers(0, 99, (4, 12)).astype(np.int32)
    return {"input_ids": ids, "labels": ids}


def base_values(model):
    return {v.path: v.numpy().copy() for v in model.weights if "lora_kernel" not in v.path}


def test_enable_lora_trains_only_adapters(tmp_path):
    model = tiny_model()
    model.enable_lora(4)
    names = sorted(v.path.split("/", 1)[1] for v in model.trainable_weights)
    assert names == [f"transformer/h_._{i}/attn/c_attn/lora_kernel_{ab}" for i in range(2) for ab in "ab"]
    assert model.transformer.h[0].attn.c_attn.lora_kernel_a.shape == (32, 4)
    base = base_values(model)
    batch = lm_batch()
    model.compile(optimizer=keras.optimizers.Adam(3e-2))
    first = model.evaluate(batch, verbose=0)
    history = model.fit(tf.data.Dataset.from_tensors(batch).repeat(40), epochs=1, verbose=0)
    last = model.evaluate(batch, verbose=0)
    assert last < first - 0.05, (first, last, history.history["loss"][-1])
    for path, value in base_values(model).items():
        np.testing.assert_array_equal(value, base[path], err_msg=path)
    assert np.abs(model.transformer.h[0].attn.c_attn.lora_kernel_b.numpy()).max() > 0


def test_lora_targets_and_errors():
    model = tiny_model()
    model.enable_lora(2, target_layer_names=["c_proj", "c_fc"])
    assert sorted(layer.path.split("/", 2)[2] for layer in model.lora_layers()) == [
        f"h_._{i}/{p}" for i in range(2) for p in ("attn/c_proj", "mlp/c_fc", "mlp/c_proj")]
    with pytest.raises(ValueError, match="already"):
        model.enable_lora(2)
    with pytest.raises(ValueError, match="rank"):
        tiny_model().enable_lora(0)
    with pytest.raises(ValueError, match="query"):
        tiny_model().enable_lora(2, target_layer_names=["query"])
    with pytest.raises(ValueError, match="Dense"):
        tiny_model().enable_lora(2, target_layer_names=["ln_1"])
    with pytest.raises(ValueError, match="enable_lora"):
        tiny_model().save_lora_weights("x.lora.h5")


def trained_lora_model():
    model = tiny_model()
    model.enable_lora(4)
    rng = np.random.default_rng(1)
    for layer in model.lora_layers():  # adapters as after training: B no longer zero
        layer.lora_kernel_b.assign(rng.normal(0, 0.2, layer.lora_kernel_b.shape).astype("float32"))
    return model


def test_lora_round_trips_and_merges(tmp_path):
    model = trained_lora_model()
    ids = lm_batch()["input_ids"]
    ref = model(ids).logits.numpy()
    plain_ref = tiny_model()(ids).logits.numpy()
    assert np.abs(ref - plain_ref).max() > 1e-3  # the adapters change the outputs
    # .keras: Keras saves the adapters merged into the kernels
    model.save(tmp_path / "lora.keras")
    np.testing.assert_allclose(keras.models.load_model(tmp_path / "lora.keras")(ids).logits.numpy(), ref,
                               atol=1e-5)
    # adapters alone, onto a fresh copy of the same base model
    path = model.save_lora_weights(tmp_path / "adapters.lora.h5")
    fresh = tiny_model()
    fresh.load_lora_weights(path)
    assert [layer.lora_rank for layer in fresh.lora_layers()] == [4, 4]
    np.testing.assert_allclose(fresh(ids).logits.numpy(), ref, atol=1e-6)
    with pytest.raises(ValueError, match=".lora.h5"):
        model.save_lora_weights(tmp_path / "adapters.h5")
    # merged into plain weights: merge_lora(), and save_pretrained -> a plain model loads it
    merged = model.merge_lora()
    assert not merged.lora_layers()
    np.testing.assert_allclose(merged(ids).logits.numpy(), ref, atol=1e-5)
    for safe in (False, True):
        model.save_pretrained(tmp_path / f"hf-{safe}", safe_serialization=safe)
        plain = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(tmp_path / f"hf-{safe}")
        assert not plain.lora_layers()
        np.testing.assert_allclose(plain(ids).logits.numpy(), ref, atol=1e-5)


# --- RematScope ------------------------------------------------------------------------------------------

def test_remat_scope_full_gives_same_loss_and_gradients():
    batch = lm_batch(3)
    plain = tiny_model(seed=5)
    with keras.RematScope(mode="full"):
        remat = tfgpt.TFOpenAIGPTLMHeadModel(tiny_config())
    remat(batch["input_ids"])
    remat.set_weights(plain.get_weights())

    def loss_and_grads(model):
        @tf.function
        def step(ids, labels, mask):
            with tf.GradientTape() as tape:
                loss = model(ids, labels=labels, attention_mask=mask, training=True).loss
            return loss, tape.gradient(loss, model.trainable_weights)

        mask = np.ones_like(batch["input_ids"])
        mask[0, :3] = 0
        return step(batch["input_ids"], batch["labels"], mask)

    loss_a, grads_a = loss_and_grads(plain)
    loss_b, grads_b = loss_and_grads(remat)
    np.testing.assert_allclose(loss_b.numpy(), loss_a.numpy(), atol=1e-5)
    assert len(grads_a) == len(grads_b) == len(plain.trainable_weights)
    for var, a, b in zip(plain.trainable_weights, grads_a, grads_b):
        np.testing.assert_allclose(tf.convert_to_tensor(b).numpy(), tf.convert_to_tensor(a).numpy(),
                                   atol=1e-5, err_msg=var.path)
    # fit runs under the scope as well and lowers the loss
    remat.compile(optimizer=keras.optimizers.Adam(1e-2))
    first = remat.evaluate(batch, verbose=0)
    remat.fit(tf.data.Dataset.from_tensors(batch).repeat(10), verbose=0)
    assert remat.evaluate(batch, verbose=0) < first


# --- Model.export ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("head", ["lm", "double-heads"])
def test_keras_export_after_one_call(head, tmp_path):
    model = tiny_model(head)
    shape = (2, 2, 7) if head == "double-heads" else (2, 7)
    ids = np.random.default_rng(2).integers(0, 99, shape).astype(np.int32)
    model.export(tmp_path / "served", verbose=False)
    served = tf.saved_model.load(str(tmp_path / "served"))
    for x in (ids, ids[..., :3]):  # any batch size and length
        out = served.serve(tf.constant(x))
        np.testing.assert_allclose(out["logits"].numpy(), model(x).logits.numpy(), atol=1e-5)
    # a LoRA model exports its merged weights
    lora = trained_lora_model()
    lora.export(tmp_path / "lora", verbose=False)
    x = lm_batch()["input_ids"]
    served_lora = tf.saved_model.load(str(tmp_path / "lora"))  # keep it: it owns the variables
    np.testing.assert_allclose(served_lora.serve(tf.constant(x))["logits"].numpy(), lora(x).logits.numpy(),
                               atol=1e-5)
