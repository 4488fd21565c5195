"""The building blocks of GPT-1: Conv1D, embeddings, causal self-attention with a static KV cache,
the MLP and the post-LN transformer block.

Shapes in comments: B batch, S query length, T key length (S, or the cache length when decoding),
E n_embd, H heads, D head dim (E // H).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from tensorflow.compiler.tf2xla.python.xla import dynamic_update_slice

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


class Conv1D(keras.layers.Layer):
    """GPT's "Conv1D": a dense layer with weight [nx, nf] (in, out) and bias [nf]; y = x @ W + b."""

    def __init__(self, nf, nx, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.nf = nf
        self.nx = nx
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        self.weight = self.add_weight(
            name="weight", shape=(self.nx, self.nf), initializer=_normal(self.initializer_range)
        )
        self.bias = self.add_weight(name="bias", shape=(self.nf,), initializer="zeros")
        self.built = True

    def call(self, x):
        w = tf.cast(self.weight, self.compute_dtype)
        b = tf.cast(self.bias, self.compute_dtype)
        # tensordot keeps the batch dims as they are: (..., nx) @ (nx, nf) -> (..., nf)
        return tf.tensordot(x, w, axes=[[-1], [0]]) + b

    def get_config(self):
        return {**super().get_config(), "nf": self.nf, "nx": self.nx,
                "initializer_range": self.initializer_range}


class TokenEmbedding(keras.layers.Layer):
    """Token table [vocab, E], used for lookup and, transposed, as the tied LM head."""

    def __init__(self, vocab_size, hidden_size, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        self.weight = self.add_weight(
            name="weight", shape=(self.vocab_size, self.hidden_size),
            initializer=_normal(self.initializer_range),
        )
        self.built = True

    def call(self, ids):
        return tf.cast(tf.gather(self.weight, ids), self.compute_dtype)

    def attend(self, x):
        """Logits over the vocabulary: (..., E) @ (E, vocab) -> (..., vocab)."""
        w = tf.cast(self.weight, x.dtype)
        return tf.matmul(x, w, transpose_b=True)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "hidden_size": self.hidden_size, "initializer_range": self.initializer_range}


class PositionEmbedding(keras.layers.Layer):
    """Learned position table [n_positions, E]."""

    def __init__(self, n_positions, hidden_size, initializer_range=0.02, **kwargs):
        super().__init__(**kwargs)
        self.n_positions = n_positions
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range

    def build(self, input_shape=None):
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.n_positions, self.hidden_size),
            initializer=_normal(self.initializer_range),
        )
        self.built = True

    def call(self, position_ids):
        return tf.cast(tf.gather(self.embeddings, position_ids), self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "n_positions": self.n_positions,
                "hidden_size": self.hidden_size, "initializer_range": self.initializer_range}


class Attention(keras.layers.Layer):
    """Causal multi-head self-attention with a fused c_attn projection and an optional KV cache.

    Without a cache the keys are this call's own tokens (T = S). With ``cache`` [B, 2, H, T, D] the
    call's keys and values are written at ``cache_index`` and the queries attend over the whole cache
    (T = cache length); ``causal`` [S, T] and ``padding_bias`` [B, 1, 1, T] say which keys are visible.
    """

    def __init__(self, n_embd, n_head, attn_pdrop=0.1, resid_pdrop=0.1, initializer_range=0.02,
                 **kwargs):
        super().__init__(**kwargs)
        self.n_embd = n_embd
        self.n_head = n_head
        self.head_dim = n_embd // n_head
        self.c_attn = Conv1D(3 * n_embd, n_embd, initializer_range, name="c_attn", dtype=self.dtype_policy)
        self.c_proj = Conv1D(n_embd, n_embd, initializer_range, name="c_proj", dtype=self.dtype_policy)
        policy = self.dtype_policy
        self.attn_dropout = keras.layers.Dropout(attn_pdrop, name="attn_dropout", dtype=policy)
        self.resid_dropout = keras.layers.Dropout(resid_pdrop, name="resid_dropout", dtype=policy)

    def build(self, input_shape=None):
        self.c_attn.build()
        self.c_proj.build()
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
        if cache is not None:
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
        self.c_fc = Conv1D(n_state, n_embd, initializer_range, name="c_fc", dtype=self.dtype_policy)
        self.c_proj = Conv1D(n_embd, n_state, initializer_range, name="c_proj", dtype=self.dtype_policy)
        self.dropout = keras.layers.Dropout(resid_pdrop, name="dropout", dtype=self.dtype_policy)

    def build(self, input_shape=None):
        self.c_fc.build()
        self.c_proj.build()
        self.built = True

    def call(self, x, training=False):
        h = self.act(self.c_fc(x))  # (B, S, 4E)
        return self.dropout(self.c_proj(h), training=training)  # (B, S, E)


class Block(keras.layers.Layer):
    """Post-LN transformer block: n = LN1(x + attn(x)); h = LN2(n + mlp(n))."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        e = config.n_embd
        self.attn = Attention(e, config.n_head, config.attn_pdrop, config.resid_pdrop,
                              config.initializer_range, name="attn", dtype=self.dtype_policy)
        self.ln_1 = keras.layers.LayerNormalization(epsilon=config.layer_norm_epsilon, name="ln_1",
                                                    dtype=self.dtype_policy)
        self.mlp = MLP(4 * e, e, config.afn, config.resid_pdrop, config.initializer_range, name="mlp",
                       dtype=self.dtype_policy)
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
