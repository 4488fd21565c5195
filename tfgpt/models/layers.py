"""The building blocks of GPT-1 on Keras' own layers (Dense for GPT's "Conv1D", ReversibleEmbedding for
the tied token table and LM head, Embedding, LayerNormalization), causal self-attention with a static KV cache,
the MLP and the post-LN transformer block.

Shapes in comments: B batch, S query length, T key length (S, or the cache length when decoding),
E n_embd, H heads, D head dim (E // H).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

from tfgpt import validation

# Score given to masked positions (causal future, padding), as HF's TF and PyTorch GPT-1 use. Scores
# are held in float32 whatever the compute dtype, so the constant is safe under mixed precision.
MASK_VALUE = -10000.0


def gelu_tanh(x):
    """GELU with the tanh approximation (OpenAI's code, HF PyTorch's "gelu" for GPT-1)."""
    x = tf.convert_to_tensor(x)
    c = tf.cast(math.sqrt(2.0 / math.pi), x.dtype)
    return 0.5 * x * (1.0 + tf.tanh(c * (x + tf.cast(0.044715, x.dtype) * tf.pow(x, 3))))


def gelu_exact(x):
    """GELU with erf (what HF's TF classes compute for GPT-1)."""
    return tf.nn.gelu(x, approximate=False)


ACT_FNS = {
    "gelu": gelu_tanh,
    "gelu_new": gelu_tanh,
    "gelu_pytorch_tanh": gelu_tanh,
    "gelu_exact": gelu_exact,
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
}


def get_activation(name):
    try:
        return ACT_FNS[name]
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACT_FNS)}") from None


def _normal(stddev):
    return keras.initializers.RandomNormal(stddev=stddev)


def projection(units, initializer_range, name, dtype):
    """GPT's "Conv1D" as a Keras Dense: kernel [in, out] (HF's layout, no transpose), bias [out]."""
    return keras.layers.Dense(units, kernel_initializer=_normal(initializer_range), name=name,
                              dtype=dtype)


def token_embedding(vocab_size, n_embd, initializer_range, dtype):
    """The token table [vocab, E]; ``reverse=True`` is the tied, bias-free LM head (E -> vocab)."""
    return keras.layers.ReversibleEmbedding(
        vocab_size, n_embd, tie_weights=True, embeddings_initializer=_normal(initializer_range),
        name="tokens_embed", dtype=dtype)


def position_embedding(n_positions, n_embd, initializer_range, dtype):
    """The learned position table [n_positions, E]."""
    return keras.layers.Embedding(n_positions, n_embd, embeddings_initializer=_normal(initializer_range),
                                  name="positions_embed", dtype=dtype)


@keras.saving.register_keras_serializable(package="tfgpt")
class Dropout(keras.layers.Dropout):
    """Keras' Dropout (keep where uniform >= rate, scale by 1 / (1 - rate), training only) that draws
    its mask with ThreeFry while compiled for XLA.

    XLA on CPU generates Keras' default uniforms (Philox) about 3x slower than ThreeFry (a GPT-1
    training step's masks: 94 against 33 ms). TensorFlow's own kernels have no ThreeFry, so outside
    XLA (and with a ``noise_shape``) this is Keras' Dropout unchanged.
    """

    def call(self, inputs, training=False):
        if not (training and 0.0 < self.rate < 1.0) or self.noise_shape is not None or not validation.in_xla():
            return super().call(inputs, training=training)
        seed = tf.convert_to_tensor(self.seed_generator.next())
        if seed.dtype != tf.int32:  # stateless ops under XLA take int32 seeds
            seed = tf.cast(tf.math.floormod(tf.cast(seed, tf.int64), tf.int32.max - 1), tf.int32)
        inputs = tf.convert_to_tensor(inputs)
        uniform = tf.random.stateless_uniform(tf.shape(inputs), seed, alg="threefry")  # same shape as inputs
        scaled = inputs * tf.cast(1.0 / (1.0 - self.rate), inputs.dtype)
        return tf.where(uniform >= self.rate, scaled, tf.zeros_like(inputs))


def remat_tensor_arguments(layer_call):
    """``keras.RematScope`` for a call that takes None or Python values and may return None.

    TensorFlow's rematerialization (``tf.recompute_grad``) takes positional tensors only and must
    return tensors; the other arguments are bound around it and the Nones put back afterwards.
    Dropout inside a rematerialized call draws a new mask when recomputed (as for any Keras layer).
    """

    def call(*args, **kwargs):
        keys = list(kwargs)
        values = list(args) + [kwargs[k] for k in keys]
        # float tensors are differentiated through; ids, masks and indices are bound as constants
        where = [i for i, v in enumerate(values) if tf.is_tensor(v) and v.dtype.is_floating]
        seen = {}

        def tensors_only(*tensors):
            vals = list(values)
            for i, t in zip(where, tensors):
                vals[i] = t
            out = layer_call(*vals[:len(args)], **dict(zip(keys, vals[len(args):])))
            flat = tf.nest.flatten(out)  # None is a leaf here
            seen["structure"], seen["none"] = out, [o is None for o in flat]
            return [o for o in flat if o is not None]

        results = iter(keras.remat(tensors_only)(*[values[i] for i in where]))
        flat = [None if none else next(results) for none in seen["none"]]
        return tf.nest.pack_sequence_as(seen["structure"], flat)

    return call


def no_remat():
    """A scope in which layers are built without rematerialization. Under ``keras.RematScope`` the
    transformer block is the unit that is recomputed; its own layers (and the embeddings and heads)
    are built in this scope so they are not rematerialized a second time, one by one."""
    return keras.RematScope(mode=None)


class RematByTensors:
    """Mixin for a layer whose call takes optional (None) arguments: under ``keras.RematScope`` it
    is rematerialized through ``remat_tensor_arguments``."""

    def rematerialized_call(self, layer_call, *args, **kwargs):
        wrapped = super().rematerialized_call(layer_call, *args, **kwargs)
        return layer_call if wrapped is layer_call else remat_tensor_arguments(layer_call)


class Attention(keras.layers.Layer):
    """Causal multi-head self-attention with a fused c_attn projection and an optional KV cache.

    Without a cache the keys are this call's own tokens (T = S). With ``cache`` [B, 2, H, T, D] the
    call's keys and values are written at ``cache_index`` and the queries attend over the whole cache
    (T = cache length); ``causal`` [S, T] and ``padding_bias`` [B, 1, 1, T] say which keys are visible.
    ``cache`` may also be a (keys, values) pair of [B, H, T, D] tensors (returned as a pair): XLA then
    updates both in place and the attention matmuls read them as they are, where the single tensor
    costs a copy of its key and value halves per call (the whole cache, every decode step).
    """

    def __init__(self, n_embd, n_head, attn_pdrop=0.1, resid_pdrop=0.1, initializer_range=0.02,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_embd = n_embd
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        policy = self.dtype_policy
        self.c_attn = projection(3 * n_embd, initializer_range, "c_attn", policy)  # E -> 3E
        self.c_proj = projection(n_embd, initializer_range, "c_proj", policy)  # E -> E
        self.attn_dropout = Dropout(attn_pdrop, name="attn_dropout", dtype=policy)
        self.resid_dropout = Dropout(resid_pdrop, name="resid_dropout", dtype=policy)

    def build(self, input_shape=None):
        self.c_attn.build((None, None, self.n_embd))
        self.c_proj.build((None, None, self.n_embd))
        self.built = True

    def _split_heads(self, x):
        b, s = tf.shape(x)[0], tf.shape(x)[1]
        x = tf.reshape(x, [b, s, self.n_head, self.head_dim])  # (B, S, H, D)
        return tf.transpose(x, [0, 2, 1, 3])  # (B, H, S, D)

    def call(self, x, causal, padding_bias=None, head_mask=None, cache=None, cache_index=None,
             training=False):
        qkv = self.c_attn(x)  # (B, S, 3E)
        q, k, v = tf.split(qkv, 3, axis=-1)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # (B, H, S, D)
        if isinstance(cache, (tuple, list)):  # (keys, values): the dots read the cache buffers directly
            zero = tf.zeros([], tf.int32)
            start = [zero, zero, tf.cast(cache_index, tf.int32), zero]
            cache = tuple(dynamic_update_slice(c, tf.cast(x, c.dtype), start) for c, x in zip(cache, (k, v)))
            k, v = tf.cast(cache[0], q.dtype), tf.cast(cache[1], q.dtype)  # (B, H, T, D)
        elif cache is not None:
            kv = tf.stack([k, v], axis=1)  # (B, 2, H, S, D)
            zero = tf.zeros([], tf.int32)
            start = [zero, zero, zero, tf.cast(cache_index, tf.int32), zero]
            cache = dynamic_update_slice(cache, tf.cast(kv, cache.dtype), start)
            k = tf.cast(cache[:, 0], q.dtype)  # (B, H, T, D)
            v = tf.cast(cache[:, 1], q.dtype)
        q = q * tf.cast(1.0 / math.sqrt(self.head_dim), q.dtype)
        scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32)  # (B, H, S, T)
        scores = tf.where(causal, scores, MASK_VALUE)
        if padding_bias is not None:
            scores = scores + tf.cast(padding_bias, tf.float32)  # Keras may autocast it
        probs = tf.nn.softmax(scores, axis=-1)
        if head_mask is not None:
            probs = probs * tf.cast(head_mask, probs.dtype)
        probs_c = self.attn_dropout(tf.cast(probs, v.dtype), training=training)
        a = tf.matmul(probs_c, v)  # (B, H, S, D)
        a = tf.transpose(a, [0, 2, 1, 3])
        a = tf.reshape(a, [tf.shape(a)[0], tf.shape(a)[1], self.n_embd])  # (B, S, E)
        a = self.resid_dropout(self.c_proj(a), training=training)
        return a, probs, cache

    def get_config(self):
        return {**super().get_config(), "n_embd": self.n_embd, "n_head": self.n_head}


class MLP(keras.layers.Layer):
    """Position-wise feed-forward: c_fc (E -> 4E), activation, c_proj (4E -> E), dropout."""

    def __init__(self, n_state, n_embd, afn="gelu", resid_pdrop=0.1, initializer_range=0.02,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_state = n_state
        self.n_embd = n_embd
        self.afn = afn
        self.act = get_activation(afn)
        self.c_fc = projection(n_state, initializer_range, "c_fc", self.dtype_policy)  # E -> 4E
        self.c_proj = projection(n_embd, initializer_range, "c_proj", self.dtype_policy)  # 4E -> E
        self.dropout = Dropout(resid_pdrop, name="dropout", dtype=self.dtype_policy)

    def build(self, input_shape=None):
        self.c_fc.build((None, None, self.n_embd))
        self.c_proj.build((None, None, self.n_state))
        self.built = True

    def call(self, x, training=False):
        h = self.act(self.c_fc(x))  # (B, S, 4E)
        return self.dropout(self.c_proj(h), training=training)  # (B, S, E)


class Block(RematByTensors, keras.layers.Layer):
    """Post-LN transformer block: n = LN1(x + attn(x)); h = LN2(n + mlp(n)).

    Under ``keras.RematScope`` the block is rematerialized as one unit.
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        e = config.n_embd
        with no_remat():
            self.attn = Attention(e, config.n_head, config.attn_pdrop, config.resid_pdrop,
                                  config.initializer_range, name="attn", dtype=self.dtype_policy)
            self.ln_1 = keras.layers.LayerNormalization(epsilon=config.layer_norm_epsilon, name="ln_1",
                                                        dtype=self.dtype_policy)
            self.mlp = MLP(4 * e, e, config.afn, config.resid_pdrop, config.initializer_range,
                           name="mlp", dtype=self.dtype_policy)
            self.ln_2 = keras.layers.LayerNormalization(epsilon=config.layer_norm_epsilon, name="ln_2",
                                                        dtype=self.dtype_policy)
        self.n_embd = e

    def build(self, input_shape=None):
        shape = (None, None, self.n_embd)
        self.attn.build()
        self.ln_1.build(shape)
        self.mlp.build()
        self.ln_2.build(shape)
        self.built = True

    def call(self, x, causal, padding_bias=None, head_mask=None, cache=None, cache_index=None,
             training=False):
        a, probs, cache = self.attn(x, causal, padding_bias=padding_bias, head_mask=head_mask,
                                    cache=cache, cache_index=cache_index, training=training)
        n = self.ln_1(x + a)
        h = self.ln_2(n + self.mlp(n, training=training))
        return h, probs, cache
