"""Big Bird and Performer classifiers for integer-token sequences, with token selection at the input layer.

Both prepend a ``[CLS]`` token (id ``vocab_size``) to the ``N`` input tokens, embed the ``N + 1`` tokens
(word + learned position), keep ``k`` of them with an :class:`~pyramid_bert.lra.input_selection.InputTokenSelector`
(CLS always kept), run the encoder on the kept tokens only, and classify from the CLS output.

- Big Bird: Hugging Face's ``BigBirdModel`` built from a ``BigBirdConfig`` (random weights, no pre-training,
  as in LRA); we call its ``embeddings`` and ``encoder`` ourselves so the selection sits in between.
  Block-sparse attention needs a length that is a multiple of ``block_size`` and longer than
  ``(5 + 2 * num_random_blocks) * block_size``: the kept tokens are padded at the end with masked zero
  vectors up to the next multiple (:func:`~pyramid_bert.lra.input_selection.pad_to_multiple`), and
  ``attention_type="auto"`` picks "block_sparse" when the padded length is long enough, else
  "original_full" (what HF itself falls back to). The choice is made once, from ``k``, when the model is built.
  (Choose ``k`` as a multiple of the block size, :func:`keep_for_space_reduction` ``multiple=``, to avoid
  padding altogether.)
- Performer: our own FAVOR+ encoder (:mod:`pyramid_bert.lra.performer`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import BigBirdConfig, BigBirdModel

from pyramid_bert.errors import ConfigError
from pyramid_bert.lra.input_selection import INPUT_METHODS, InputTokenSelector, pad_to_multiple
from pyramid_bert.lra.performer import PerformerEncoder

BACKBONES = ("bigbird", "performer")
ATTENTION_TYPES = ("auto", "block_sparse", "original_full")


@dataclass
class LraModelConfig:
    """A from-scratch LRA classifier and its input-layer selection.

    Attributes:
        backbone: "bigbird" or "performer".
        vocab_size: token ids of the data lie in ``[0, vocab_size)``; CLS gets id ``vocab_size``.
        num_labels: classes.
        seq_len: ``N``, tokens per input sequence (CLS not counted).
        hidden, num_layers, heads, intermediate, dropout: encoder size.
        pad_id: the data's padding id (Big Bird's ``pad_token_id``), or None.
        block_size, num_random_blocks, attention_type: Big Bird only (see the module docstring).
        num_features: FAVOR+ random features per head (Performer only).
        method: input selection, one of :data:`~pyramid_bert.lra.input_selection.INPUT_METHODS`.
        keep: ``k``, tokens kept including CLS (``1 <= k <= N + 1``; None with "dense").
        m: k-center centers per round (coreset): 1 is the paper's CS-opt on LRA, None its CS-k-1.
        seed: seed of the weights, the random selection and the Performer projections.
    """

    backbone: str
    vocab_size: int
    num_labels: int
    seq_len: int
    hidden: int = 64
    num_layers: int = 2
    heads: int = 2
    intermediate: int = 128
    dropout: float = 0.1
    pad_id: int | None = None
    block_size: int = 8
    num_random_blocks: int = 2
    attention_type: str = "auto"
    num_features: int = 64
    method: str = "dense"
    keep: int | None = None
    m: int | float | None = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.method not in INPUT_METHODS:
            raise ConfigError(f"method must be one of {', '.join(INPUT_METHODS)}, got {self.method!r}")
        if self.attention_type not in ATTENTION_TYPES:
            raise ConfigError(
                f"attention_type must be one of {', '.join(ATTENTION_TYPES)}, got {self.attention_type!r}"
            )
        for name in (
            "vocab_size",
            "num_labels",
            "seq_len",
            "hidden",
            "num_layers",
            "heads",
            "intermediate",
            "block_size",
            "num_features",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if self.hidden % self.heads:
            raise ConfigError(f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        keep_valid = (
            isinstance(self.keep, int) and not isinstance(self.keep, bool) and 1 <= self.keep <= self.seq_len + 1
        )
        if self.method != "dense" and not keep_valid:
            raise ConfigError(
                f"keep must be an int in [1, seq_len + 1] = [1, {self.seq_len + 1}] for method "
                f"{self.method!r}, got {self.keep!r}"
            )

    @property
    def kept_tokens(self) -> int:
        """Tokens that reach the first encoder layer (CLS included, before any block padding)."""
        return self.seq_len + 1 if self.method == "dense" or self.keep is None else self.keep

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class InputSelectionClassifier(nn.Module):
    """Base: ``forward(input_ids [B, N], attention_mask [B, N] | None) -> logits [B, num_labels]``.

    Subclasses give ``embed(ids [B, N + 1]) -> [B, N + 1, D]`` and ``encode(hidden [B, k, D], mask [B, k])
    -> [B, k, D]``; this class prepends CLS, selects, and classifies from the CLS output.
    """

    def __init__(self, config: LraModelConfig):
        super().__init__()
        self.config = config
        self.selector = InputTokenSelector(config.method, config.keep, m=config.m, seed=config.seed)
        self.classifier = nn.Sequential(
            nn.Linear(config.hidden, config.hidden),
            nn.Tanh(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.num_labels),
        )

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def kept_hidden(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding output after selection: ``([B, k, D], mask bool [B, k])``."""
        if input_ids.dim() != 2 or input_ids.shape[1] != self.config.seq_len:
            raise ConfigError(f"input_ids must be [batch, {self.config.seq_len}], got {tuple(input_ids.shape)}")
        batch = input_ids.shape[0]
        cls = torch.full((batch, 1), self.config.vocab_size, dtype=input_ids.dtype, device=input_ids.device)
        ids = torch.cat([cls, input_ids], dim=1)
        if attention_mask is None:
            mask = torch.ones(ids.shape, dtype=torch.bool, device=ids.device)
        else:
            mask = torch.cat([torch.ones_like(cls, dtype=torch.bool), attention_mask.to(torch.bool)], dim=1)
        return self.selector(self.embed(ids), mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        hidden, mask = self.kept_hidden(input_ids, attention_mask)
        encoded = self.encode(hidden, mask)
        return self.classifier(encoded[:, 0])


class PerformerClassifier(InputSelectionClassifier):
    """Word + learned position embeddings, input selection, FAVOR+ encoder, CLS classifier."""

    def __init__(self, config: LraModelConfig):
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size + 1, config.hidden)
        self.position_embeddings = nn.Embedding(config.seq_len + 1, config.hidden)
        self.embedding_dropout = nn.Dropout(config.dropout)
        self.encoder = PerformerEncoder(
            config.hidden,
            config.heads,
            config.intermediate,
            config.num_layers,
            config.num_features,
            dropout=config.dropout,
            seed=config.seed,
        )

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.embedding_dropout(self.word_embeddings(ids) + self.position_embeddings(positions))

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(hidden, mask)


def bigbird_attention_type(config: LraModelConfig) -> str:
    """ "block_sparse" or "original_full" for ``config`` (see the module docstring)."""
    if config.attention_type != "auto":
        return config.attention_type
    padded = -(-config.kept_tokens // config.block_size) * config.block_size
    minimum = (5 + 2 * config.num_random_blocks) * config.block_size
    return "block_sparse" if padded > minimum else "original_full"


class BigBirdClassifier(InputSelectionClassifier):
    """Hugging Face Big Bird (embeddings + encoder, random init), input selection in between, CLS classifier."""

    def __init__(self, config: LraModelConfig):
        super().__init__(config)

        self.attention_type = bigbird_attention_type(config)
        positions = -(-(config.seq_len + 1) // config.block_size) * config.block_size
        special = config.pad_id if config.pad_id is not None else 0  # no BOS/EOS/SEP in LRA inputs
        hf_config = BigBirdConfig(
            vocab_size=config.vocab_size + 1,
            hidden_size=config.hidden,
            num_hidden_layers=config.num_layers,
            num_attention_heads=config.heads,
            intermediate_size=config.intermediate,
            hidden_dropout_prob=config.dropout,
            attention_probs_dropout_prob=config.dropout,
            max_position_embeddings=positions,
            type_vocab_size=1,
            pad_token_id=special,
            bos_token_id=special,
            eos_token_id=special,
            sep_token_id=special,
            attention_type=self.attention_type,
            block_size=config.block_size,
            num_random_blocks=config.num_random_blocks,
        )
        self.bigbird = BigBirdModel(hf_config, add_pooling_layer=False)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.bigbird.embeddings(input_ids=ids)

    def encode(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.attention_type == "block_sparse":
            hidden, mask = pad_to_multiple(hidden, mask, self.config.block_size)
            blocked, band, from_mask, to_mask = self.bigbird.create_masks_for_block_sparse_attn(
                mask.to(hidden.dtype), self.config.block_size
            )
            output = self.bigbird.encoder(
                hidden,
                attention_mask=None,
                band_mask=band,
                from_mask=from_mask,
                to_mask=to_mask,
                blocked_encoder_mask=blocked,
            )
        else:
            additive = (~mask)[:, None, None, :].to(hidden.dtype) * torch.finfo(hidden.dtype).min
            output = self.bigbird.encoder(hidden, attention_mask=additive)
        return output.last_hidden_state


def build_lra_model(config: LraModelConfig) -> InputSelectionClassifier:
    """A freshly initialised classifier for ``config`` (weights seeded by ``config.seed``)."""
    torch.manual_seed(config.seed)
    if config.backbone == "performer":
        return PerformerClassifier(config)
    return BigBirdClassifier(config)
