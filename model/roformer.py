"""RoFormer-Sim (SimBERTv2): RoFormer encoder, UniLM attention, linear CLS pooler, tied LM head.

Architecture (Su et al. 2021, https://kexue.fm/archives/8454; RoFormer https://arxiv.org/abs/2104.09864):
word + segment embeddings with LayerNorm (no absolute positions), then post-LN blocks whose queries
and keys are rotated by sinusoidal rotary position embeddings (RoPE, interleaved pairs, exactly as
``transformers.RoFormerModel``), GELU (erf) feed-forward. Heads: ``pooled = W·h_CLS + b``
(bert4keras ``with_pool='linear'``) and ``logits = E·LayerNorm(gelu(W·h + b)) + bias`` (decoder
tied to the word embeddings E). Attention runs through
``torch.nn.functional.scaled_dot_product_attention`` with one boolean mask that expresses
padding and, with ``unilm=True``, the UniLM seq2seq mask.

Weights are read and written in the Hugging Face layout (``config.json`` + ``model.safetensors`` or
``pytorch_model.bin``; keys ``roformer.embeddings.*``, ``roformer.encoder.layer.N.*``,
``roformer.pooler.dense.*``, ``cls.predictions.*``), see ``hf_state_dict`` / ``load_hf_state_dict``.

Incremental decoding (UniLM generation) with the key/value cache::

    out = model(prompt_ids, prompt_segments, prompt_mask, unilm=True, use_cache=True,
                return_logits=False)                       # [CLS] a [SEP], segment 0
    cache, mask = out.past_key_values, prompt_mask
    for _ in range(steps):
        logits = model.lm_head(out.last_hidden_state[:, -1])  # (B, V)
        token = logits.argmax(-1, keepdim=True)                # (B, 1), segment 1
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        out = model(token, torch.ones_like(token), mask, past_key_values=cache,
                    use_cache=True, return_logits=False)
        cache = out.past_key_values

Left-padded prompts need nothing more (RoPE only sees relative positions); right-padded prompts
pass ``position_ids`` (B, 1) = each row's length + step.
"""

from __future__ import annotations

import json
import pickle
import re
import shutil
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

WEIGHTS_SAFETENSORS = "model.safetensors"
WEIGHTS_BIN = "pytorch_model.bin"
CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.txt"

KVCache = tuple[tuple[Tensor, Tensor], ...]


@dataclass
class RoFormerSimConfig:
    """Hyper-parameters of the encoder; ``dropout`` applies to hidden states, ``attention_dropout``
    to attention probabilities (the reference recipe trains with 0.2 for both)."""

    vocab_size: int = 12000
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position: int = 512
    type_vocab_size: int = 2
    dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0
    embedding_size: int | None = None  # None: same as hidden_size (then no embeddings_project)

    PRESETS = {
        "base": dict(hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072),
        "small": dict(hidden_size=384, num_layers=6, num_heads=6, intermediate_size=1536),
        "tiny": dict(
            vocab_size=128, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
            max_position=128,
        ),
    }

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of "
                f"num_heads ({self.num_heads})"
            )
        if (self.hidden_size // self.num_heads) % 2:
            raise ValueError("rotary embeddings need an even head size (hidden_size / num_heads)")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def embed_size(self) -> int:
        return self.embedding_size or self.hidden_size

    @classmethod
    def preset(cls, name: str, **overrides) -> RoFormerSimConfig:
        """``preset("base"|"small"|"tiny", **overrides)``; base/small use the 12k-char vocab."""
        if name not in cls.PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose from {sorted(cls.PRESETS)}")
        return cls(**{**cls.PRESETS[name], **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> RoFormerSimConfig:
        """Our field names, or a Hugging Face RoFormer ``config.json`` dict (other keys ignored)."""
        if "num_hidden_layers" in d:
            return cls.from_hf_dict(d)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown RoFormerSimConfig fields: {unknown}")
        return cls(**d)

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, path: str | Path) -> RoFormerSimConfig:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    def to_hf_dict(self) -> dict:
        """A ``config.json`` that ``transformers.RoFormerConfig`` reads."""
        d = {"model_type": "roformer", "hidden_act": "gelu", "rotary_value": False,
             "pooler_activation": "linear"}
        d.update({hf: getattr(self, ours) for ours, hf in _HF_CONFIG_NAMES.items()})
        d["embedding_size"] = self.embed_size
        return d

    @classmethod
    def from_hf_dict(cls, d: dict) -> RoFormerSimConfig:
        if d.get("rotary_value"):
            raise ValueError("config.json: rotary_value=true is not supported")
        if d.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"config.json: hidden_act {d['hidden_act']!r} unsupported (only gelu)")
        kw = {ours: d[hf] for ours, hf in _HF_CONFIG_NAMES.items() if d.get(hf) is not None}
        if d.get("embedding_size") not in (None, d.get("hidden_size")):
            kw["embedding_size"] = d["embedding_size"]
        return cls(**kw)


_HF_CONFIG_NAMES = {
    "vocab_size": "vocab_size",
    "hidden_size": "hidden_size",
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "intermediate_size": "intermediate_size",
    "max_position": "max_position_embeddings",
    "type_vocab_size": "type_vocab_size",
    "dropout": "hidden_dropout_prob",
    "attention_dropout": "attention_probs_dropout_prob",
    "layer_norm_eps": "layer_norm_eps",
    "initializer_range": "initializer_range",
    "pad_token_id": "pad_token_id",
}


# ---------------------------------------------------------------------------------------------
# masks and rotary position embedding


def unilm_mask(token_type_ids: Tensor) -> Tensor:
    """UniLM seq2seq visibility (B, L, L): ``j`` visible to ``i`` iff cumsum(s)[j] <= cumsum(s)[i].

    With segments 0 for ``[CLS] a [SEP]`` and 1 for ``b [SEP]`` this makes segment a fully
    bidirectional and segment b left-to-right (each b token sees a and the b tokens up to itself).
    Source: bert4keras ``UniLM_Mask`` (Dong et al. 2019, https://arxiv.org/abs/1905.03197).
    """
    s = token_type_ids.cumsum(dim=1)  # (B, L)
    return s[:, None, :] <= s[:, :, None]  # (B, Lq, Lk)


def attention_bias(
    attention_mask: Tensor | None,
    token_type_ids: Tensor | None,
    unilm: bool,
    q_len: int,
    past_len: int = 0,
    device: torch.device | None = None,
) -> Tensor | None:
    """Boolean SDPA mask (B, 1, Lq, past+Lq), True = may attend; None when everything is visible.

    Key j is visible to query i iff j is not padding (``attention_mask[b, j] != 0``) and, with
    ``unilm``, the UniLM rule holds. With a cache (``past_len > 0``) the new queries see every
    cached key and, among themselves, only earlier or equal positions (causal): this is the UniLM
    rule for tokens appended to segment b during generation. A query row with no visible key (an
    all-padding sequence) is opened completely to avoid NaNs; such rows carry no information.
    """
    mask = None
    if past_len:
        k_len = past_len + q_len
        q_pos = torch.arange(past_len, k_len, device=device)
        mask = (torch.arange(k_len, device=device)[None, :] <= q_pos[:, None])[None]  # (1, Lq, Lk)
    elif unilm and token_type_ids is not None:  # no segment ids = all segment a = bidirectional
        mask = unilm_mask(token_type_ids)  # (B, L, L)
    if attention_mask is not None:
        keys = attention_mask.bool()[:, None, :]  # (B, 1, Lk)
        mask = keys if mask is None else mask & keys
        mask = mask | ~mask.any(dim=-1, keepdim=True)
    return None if mask is None else mask[:, None]  # (B, 1, Lq, Lk)


def sinusoidal_table(n_pos: int, dim: int) -> tuple[Tensor, Tensor]:
    """sin and cos of ``pos · 10000^(-2i/dim)`` for i < dim/2, each (n_pos, dim/2), in float64.

    The same angles as ``transformers`` ``RoFormerSinusoidalPositionalEmbedding`` (computed in
    float64 there too, so fp32 results match to the last bit).
    """
    inv_freq = 10000.0 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    angles = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return angles.sin(), angles.cos()


def apply_rotary(x: Tensor, sin: Tensor, cos: Tensor) -> Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) by angle θ_i·pos (RoPE, Su et al. 2021).

    x: (..., L, nh, hs); sin, cos: (L, 1, hs/2) or (B, L, 1, hs/2) broadcasting against x.
    (x0, x1) -> (x0·cos − x1·sin, x1·cos + x0·sin), as HF RoFormer's
    ``apply_rotary_position_embeddings``.
    """
    x0, x1 = x.unflatten(-1, (-1, 2)).unbind(-1)  # each (..., L, nh, hs/2)
    return torch.stack((x0 * cos - x1 * sin, x1 * cos + x0 * sin), dim=-1).flatten(-2)


class Rotary(nn.Module):
    """Caches the sin/cos table per (device, dtype); ``forward`` picks rows for the positions."""

    def __init__(self, max_position: int, head_size: int) -> None:
        super().__init__()
        self.max_position, self.head_size = max_position, head_size
        self._tables: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def forward(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """positions: (L,) or (B, L) -> sin, cos of shape (L, 1, hs/2) or (B, L, 1, hs/2)."""
        key = (positions.device, dtype)
        if key not in self._tables:
            sin, cos = sinusoidal_table(self.max_position, self.head_size)
            self._tables[key] = (sin.to(positions.device, dtype), cos.to(positions.device, dtype))
        sin, cos = self._tables[key]
        return sin[positions].unsqueeze(-2), cos[positions].unsqueeze(-2)


# ---------------------------------------------------------------------------------------------
# modules


class Embeddings(nn.Module):
    def __init__(self, cfg: RoFormerSimConfig) -> None:
        super().__init__()
        self.word = nn.Embedding(cfg.vocab_size, cfg.embed_size)
        self.token_type = nn.Embedding(cfg.type_vocab_size, cfg.embed_size)
        self.norm = nn.LayerNorm(cfg.embed_size, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None) -> Tensor:
        x = self.word(input_ids)  # (B, L, E)
        if token_type_ids is None:
            x = x + self.token_type.weight[0]
        else:
            x = x + self.token_type(token_type_ids)
        return self.drop(self.norm(x))


class SelfAttention(nn.Module):
    """Multi-head self-attention with fused q/k/v projection, RoPE on q and k, SDPA."""

    def __init__(self, cfg: RoFormerSimConfig) -> None:
        super().__init__()
        self.nh, self.hs = cfg.num_heads, cfg.head_size
        self.qkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)  # rows: query, key, value
        self.proj = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attention_dropout = cfg.attention_dropout
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None,
        sin: Tensor,
        cos: Tensor,
        past: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        B, L, H = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.nh, self.hs).unbind(2)  # each (B, L, nh, hs)
        q = apply_rotary(q, sin, cos).transpose(1, 2)  # (B, nh, L, hs)
        k = apply_rotary(k, sin, cos).transpose(1, 2)  # (B, nh, L, hs)
        v = v.transpose(1, 2)  # (B, nh, L, hs)
        if past is not None:
            k = torch.cat((past[0], k), dim=2)  # (B, nh, T+L, hs)
            v = torch.cat((past[1], v), dim=2)
        p = self.attention_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, nh, L, hs)
        y = y.transpose(1, 2).reshape(B, L, H)
        return self.drop(self.proj(y)), (k, v)


class Block(nn.Module):
    """Post-LN transformer block: x = LN(x + attn(x)); x = LN(x + mlp(x))."""

    def __init__(self, cfg: RoFormerSimConfig) -> None:
        super().__init__()
        self.attn = SelfAttention(cfg)
        self.norm1 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.up = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.down = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.norm2 = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, mask, sin, cos, past=None):
        a, kv = self.attn(x, mask, sin, cos, past)
        x = self.norm1(x + a)  # (B, L, H)
        x = self.norm2(x + self.drop(self.down(F.gelu(self.up(x)))))  # (B, L, H)
        return x, kv


class LMHead(nn.Module):
    """logits = decoder(LayerNorm(gelu(dense(h)))), decoder weight tied to the word embeddings."""

    def __init__(self, cfg: RoFormerSimConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.embed_size)
        self.norm = nn.LayerNorm(cfg.embed_size, eps=cfg.layer_norm_eps)
        self.decoder = nn.Linear(cfg.embed_size, cfg.vocab_size)
        self.decoder.weight = word_embeddings.weight  # tied (V, E)

    def forward(self, h: Tensor) -> Tensor:
        """h: (..., H) -> logits (..., V)."""
        return self.decoder(self.norm(F.gelu(self.dense(h))))


@dataclass
class RoFormerSimOutput:
    last_hidden_state: Tensor  # (B, L, H)
    pooled: Tensor  # (B, H)
    logits: Tensor | None = None  # (B, L, V) when return_logits
    hidden_states: tuple[Tensor, ...] | None = None  # embeddings + every layer, each (B, L, H)
    past_key_values: KVCache | None = None  # per layer (k, v), each (B, nh, T, hs)


class RoFormerSim(nn.Module):
    """RoFormer encoder + linear pooler + tied LM head (RoFormer-Sim / SimBERTv2)."""

    def __init__(self, cfg: RoFormerSimConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.embeddings_project = None
        if cfg.embed_size != cfg.hidden_size:
            self.embeddings_project = nn.Linear(cfg.embed_size, cfg.hidden_size)
        self.rotary = Rotary(cfg.max_position, cfg.head_size)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.pooler = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.lm_head = LMHead(cfg, self.embeddings.word)
        self.vocab_file: Path | None = None
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        attention_mask: Tensor | None = None,
        unilm: bool = False,
        *,
        return_logits: bool = True,
        output_hidden_states: bool = False,
        past_key_values: KVCache | None = None,
        use_cache: bool = False,
        position_ids: Tensor | None = None,
    ) -> RoFormerSimOutput:
        """Encode a batch.

        input_ids, token_type_ids: (B, L) int; attention_mask: (B, past+L), 1 = real token.
        ``unilm``: apply the UniLM seq2seq mask from ``token_type_ids`` (ignored with a cache).
        ``return_logits=False`` skips the LM head (``self.lm_head(h)`` computes it on demand).
        ``past_key_values`` (from an earlier call with ``use_cache=True``): the new tokens attend to
        every cached position (minus padding per ``attention_mask``) and causally to each other;
        their rotary positions continue from the cache length unless ``position_ids`` (L,) or
        (B, L) is given. ``pooled`` is computed from the first new token.
        """
        B, L = input_ids.shape
        past_len = past_key_values[0][0].shape[2] if past_key_values is not None else 0
        if position_ids is None:
            position_ids = torch.arange(past_len, past_len + L, device=input_ids.device)
            max_pos = past_len + L - 1
        else:
            max_pos = int(position_ids.max()) if position_ids.numel() else 0
        if max_pos >= self.config.max_position:
            raise ValueError(
                f"position {max_pos} exceeds max_position={self.config.max_position} "
                "(sequence too long for this model)"
            )
        x = self.embeddings(input_ids, token_type_ids)  # (B, L, E)
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)  # (B, L, H)
        dtype = _compute_dtype(x)
        mask = attention_bias(attention_mask, token_type_ids, unilm, L, past_len, x.device)
        if mask is not None:  # additive once here, not converted from bool inside every layer
            mask = torch.zeros(mask.shape, dtype=dtype, device=x.device).masked_fill_(
                ~mask, torch.finfo(dtype).min
            )
        sin, cos = self.rotary(position_ids, dtype)
        hidden_states = [x] if output_hidden_states else None
        cache = []
        for i, block in enumerate(self.layers):
            past = past_key_values[i] if past_key_values is not None else None
            x, kv = block(x, mask, sin, cos, past)
            if use_cache:
                cache.append(kv)
            if hidden_states is not None:
                hidden_states.append(x)
        return RoFormerSimOutput(
            last_hidden_state=x,
            pooled=self.pooler(x[:, 0]),
            logits=self.lm_head(x) if return_logits else None,
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
            past_key_values=tuple(cache) if use_cache else None,
        )

    # -----------------------------------------------------------------------------------------
    # Hugging Face weight layout

    def hf_state_dict(self) -> dict[str, Tensor]:
        """Our weights under ``transformers`` RoFormer names (the tied decoder is omitted).

        Also writes ``roformer.encoder.embed_positions.weight`` (HF's sinusoidal table) so that
        ``transformers.RoFormerModel.from_pretrained`` finds every key it expects.
        """
        sd = self.state_dict()
        out = {}
        for ours, hf in _key_map(self.config).items():
            if ours.endswith(".qkv.weight") or ours.endswith(".qkv.bias"):
                for name, part in zip(hf, sd[ours].chunk(3, dim=0), strict=True):
                    out[name] = part.clone()  # own storage: safetensors refuses shared views
            else:
                out[hf] = sd[ours]
        sin, cos = sinusoidal_table(self.config.max_position, self.config.head_size)
        out[_EMBED_POSITIONS] = torch.cat((sin, cos), dim=1).to(sd[_WORD].dtype)
        return out

    def load_hf_state_dict(self, state: dict[str, Tensor], strict: bool = True) -> list[str]:
        """Load a HF RoFormer state dict (``RoFormerForCausalLM``/``ForMaskedLM``/``Model``, with or
        without the ``roformer.`` prefix). Raises ``KeyError`` listing missing and unexpected keys;
        with ``strict=False`` missing pooler/LM-head weights keep their initialisation and unknown
        keys are ignored, with a warning. Returns the HF keys that were missing or ignored."""
        state = _normalise_hf_keys(state)
        ignored = {_EMBED_POSITIONS, *_TIED}
        _check_tied(state)
        ours = {}
        missing = []
        for name, hf in _key_map(self.config).items():
            names = _as_tuple(hf)
            absent = [n for n in names if n not in state]
            if absent:
                missing += absent
                continue
            parts = [state[n] for n in names]
            ours[name] = torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]
        used = {n for hf in _key_map(self.config).values() for n in _as_tuple(hf)}
        unexpected = sorted(set(state) - used - ignored)
        heads_only = all(n.startswith(("roformer.pooler.", "cls.")) for n in missing)
        if (missing or unexpected) and (strict or not heads_only):
            raise KeyError(
                f"checkpoint does not match RoFormerSim({self.config.num_layers} layers): "
                f"missing keys {sorted(missing)}; unexpected keys {unexpected}"
            )
        self.load_state_dict(ours, strict=False)
        if missing or unexpected:
            warnings.warn(
                f"RoFormerSim: kept initial weights for missing keys {sorted(missing)}; "
                f"ignored unexpected keys {unexpected}",
                stacklevel=2,
            )
        return sorted(missing) + unexpected

    def save_pretrained(self, directory: str | Path, vocab_file: str | Path | None = None) -> None:
        """Write ``config.json``, ``model.safetensors`` (HF keys) and ``vocab.txt`` (copied from
        ``vocab_file`` or the vocabulary this model was loaded with, when there is one)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(
            json.dumps(self.config.to_hf_dict(), indent=2) + "\n", encoding="utf-8"
        )
        weights = str(directory / WEIGHTS_SAFETENSORS)
        save_file(self.hf_state_dict(), weights, metadata={"format": "pt"})
        vocab = Path(vocab_file) if vocab_file is not None else self.vocab_file
        if vocab is not None:
            if not vocab.is_file():
                raise FileNotFoundError(f"vocab_file not found: {vocab}")
            target = directory / VOCAB_FILE
            if not (target.exists() and target.samefile(vocab)):
                shutil.copyfile(vocab, target)

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, strict: bool = True, **config_overrides
    ) -> RoFormerSim:
        """Load a folder written by ``save_pretrained`` or a HF RoFormer(-Sim) checkpoint folder
        (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``; ``vocab.txt`` optional,
        remembered as ``model.vocab_file``). ``config_overrides`` replace config fields (e.g.
        ``dropout=0.2``)."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{directory}: no {CONFIG_FILE} (not a model folder?)")
        hf = json.loads(config_path.read_text(encoding="utf-8"))
        cfg = RoFormerSimConfig.from_hf_dict(hf)
        cfg = RoFormerSimConfig(**{**cfg.to_dict(), **config_overrides})
        state = _read_weights(directory)
        model = cls(cfg)
        model.load_hf_state_dict(state, strict=strict)
        vocab = directory / VOCAB_FILE
        model.vocab_file = vocab if vocab.is_file() else None
        return model


def _compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype matmuls produce: the autocast dtype inside autocast, else the tensor's own."""
    if torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def _as_tuple(name: str | tuple[str, ...]) -> tuple[str, ...]:
    return name if isinstance(name, tuple) else (name,)


_WORD = "embeddings.word.weight"
_EMBED_POSITIONS = "roformer.encoder.embed_positions.weight"
_TIED = {  # tied HF key -> the key it must equal
    "cls.predictions.decoder.weight": "roformer.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}


def _key_map(cfg: RoFormerSimConfig) -> dict[str, str | tuple[str, ...]]:
    """Our parameter name -> HF name (a tuple of three for the fused q/k/v projection)."""
    m = {
        _WORD: "roformer.embeddings.word_embeddings.weight",
        "embeddings.token_type.weight": "roformer.embeddings.token_type_embeddings.weight",
    }
    pairs = [("embeddings.norm", "roformer.embeddings.LayerNorm")]
    if cfg.embed_size != cfg.hidden_size:
        pairs.append(("embeddings_project", "roformer.embeddings_project"))
    for i in range(cfg.num_layers):
        ours, hf = f"layers.{i}", f"roformer.encoder.layer.{i}"
        for p in ("weight", "bias"):
            m[f"{ours}.attn.qkv.{p}"] = tuple(
                f"{hf}.attention.self.{n}.{p}" for n in ("query", "key", "value")
            )
        pairs += [
            (f"{ours}.attn.proj", f"{hf}.attention.output.dense"),
            (f"{ours}.norm1", f"{hf}.attention.output.LayerNorm"),
            (f"{ours}.up", f"{hf}.intermediate.dense"),
            (f"{ours}.down", f"{hf}.output.dense"),
            (f"{ours}.norm2", f"{hf}.output.LayerNorm"),
        ]
    pairs += [
        ("pooler", "roformer.pooler.dense"),
        ("lm_head.dense", "cls.predictions.transform.dense"),
        ("lm_head.norm", "cls.predictions.transform.LayerNorm"),
    ]
    for ours, hf in pairs:
        m[f"{ours}.weight"] = f"{hf}.weight"
        m[f"{ours}.bias"] = f"{hf}.bias"
    m["lm_head.decoder.bias"] = "cls.predictions.bias"
    return m


_BASE_PREFIXES = re.compile(r"^(embeddings|embeddings_project|encoder|pooler)\.")


def _normalise_hf_keys(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """Add the ``roformer.`` prefix to keys saved from a bare ``RoFormerModel``."""
    return {("roformer." + k if _BASE_PREFIXES.match(k) else k): v for k, v in state.items()}


def _check_tied(state: dict[str, Tensor]) -> None:
    """The decoder is tied to the word embeddings: refuse a checkpoint where they differ."""
    for tied, source in _TIED.items():
        if tied in state and source in state and not torch.equal(state[tied], state[source]):
            raise ValueError(f"checkpoint: {tied} differs from {source}; RoFormerSim ties them")


def _read_weights(directory: Path) -> dict[str, Tensor]:
    safetensors_path, bin_path = directory / WEIGHTS_SAFETENSORS, directory / WEIGHTS_BIN
    if safetensors_path.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(safetensors_path))
        except SafetensorError as err:
            raise ValueError(f"{safetensors_path}: truncated or corrupt weights ({err})") from err
    if bin_path.is_file():
        try:
            return torch.load(bin_path, map_location="cpu", weights_only=True)
        except (RuntimeError, EOFError, pickle.UnpicklingError) as err:
            raise ValueError(f"{bin_path}: truncated or corrupt weights ({err})") from err
    raise FileNotFoundError(f"{directory}: neither {WEIGHTS_SAFETENSORS} nor {WEIGHTS_BIN} found")

