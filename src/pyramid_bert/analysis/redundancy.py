"""Token redundancy across encoders (the paper's Figure 1 and Appendix F).

At each encoder output, for each input, over its real tokens (CLS and [SEP] included, padding excluded):

- cosine similarity of every other token to CLS (Figure 1, top row);
- mean cosine similarity of the non-CLS tokens to each other (over distinct pairs);
- Euclidean distance of each token to its nearest other token (the distance core-set selection uses), raw
  and divided by the input's mean token norm (so that layers with larger norms compare);
- the number of clusters scikit-learn's DBSCAN finds among the tokens (Figure 1, bottom row), with cosine
  dissimilarity ``1 - cos`` as the metric under two documented rules for ``eps``:
  the paper's (``eps = 0.2``, ``min_samples = 1``, Appendix F), and a quantile rule: ``eps`` = the
  ``eps_quantile`` quantile of the nearest-neighbour cosine dissimilarities at the *first* encoder, held
  fixed for every layer (so a layer whose tokens come closer shows fewer clusters), ``min_samples = 1``.
  With ``min_samples = 1`` every token is a core point: the clusters are the connected components of the
  graph "dissimilarity <= eps", and a token with no neighbour within eps is a cluster of its own.

Everything here takes tensors (``hidden [B, N, D]``, ``mask [B, N]``); loading models lives elsewhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.cluster import DBSCAN
from tqdm.auto import tqdm

from pyramid_bert.analysis.importance import to_middle
from pyramid_bert.errors import ConfigError

#: DBSCAN settings of the paper's Appendix F (cosine dissimilarity).
PAPER_EPS = 0.2
PAPER_MIN_SAMPLES = 1
#: Default quantile of the first encoder's nearest-neighbour cosine dissimilarities for the quantile rule.
DEFAULT_EPS_QUANTILE = 0.5
#: Where the tokens are read: each encoder's output, or right after its attention sublayer (the selection point).
AT_CHOICES = ("output", "middle")


@dataclass
class ExampleStatistics:
    """Statistics of one input at one layer (``n`` real tokens, CLS first).

    ``cls_cosine [n-1]``: cosine of each other token to CLS; ``pair_cosine``: mean cosine over distinct pairs of
    non-CLS tokens (nan when fewer than 2); ``nn_distance [n]`` / ``nn_cosine_distance [n]``: Euclidean distance
    and cosine dissimilarity of each token to its nearest other token; ``mean_norm``: mean token norm;
    ``clusters``: DBSCAN clusters per eps (in the order of the eps values given).
    """

    tokens: int
    cls_cosine: np.ndarray
    pair_cosine: float
    nn_distance: np.ndarray
    nn_cosine_distance: np.ndarray
    mean_norm: float
    clusters: list[int] = field(default_factory=list)


def cosine_dissimilarity(tokens: torch.Tensor) -> torch.Tensor:
    """``tokens [n, D]`` -> ``1 - cos`` ``[n, n]`` in float64, clipped to [0, 2], zero diagonal."""
    x = tokens.double()
    unit = x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)
    distance = (1.0 - unit @ unit.T).clamp(0.0, 2.0)
    distance.fill_diagonal_(0.0)
    return distance


def dbscan_clusters(distance: np.ndarray, eps: float, min_samples: int) -> int:
    """Clusters scikit-learn's DBSCAN finds on a precomputed ``[n, n]`` dissimilarity; noise points (possible
    only with ``min_samples > 1``) count as one cluster each, so an input never has zero clusters."""

    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit(distance).labels_
    return int(len(set(labels[labels >= 0])) + int((labels < 0).sum()))


def example_statistics(tokens: torch.Tensor, eps: Sequence[float] = (), min_samples: int = 1) -> ExampleStatistics:
    """The statistics of one input: ``tokens [n, D]`` are its real tokens at one layer, CLS first."""
    n = int(tokens.shape[0])
    x = tokens.double()
    cosine_distance = cosine_dissimilarity(x)
    cosine = 1.0 - cosine_distance
    others = n - 1
    if others >= 2:
        block = cosine[1:, 1:]
        pair_cosine = float((block.sum() - block.diagonal().sum()) / (others * (others - 1)))
    else:
        pair_cosine = float("nan")
    if n >= 2:
        euclid = torch.cdist(x, x)
        euclid.fill_diagonal_(float("inf"))
        off = cosine_distance.clone().fill_diagonal_(float("inf"))
        nn_distance, nn_cosine = euclid.min(dim=1).values.numpy(), off.min(dim=1).values.numpy()
    else:
        nn_distance = nn_cosine = np.zeros(0)
    distance = cosine_distance.numpy()
    return ExampleStatistics(
        tokens=n,
        cls_cosine=cosine[0, 1:].numpy().copy(),
        pair_cosine=pair_cosine,
        nn_distance=nn_distance,
        nn_cosine_distance=nn_cosine,
        mean_norm=float(x.norm(dim=1).mean()),
        clusters=[dbscan_clusters(distance, e, min_samples) for e in eps],
    )


def layer_statistics(
    hidden: torch.Tensor, mask: torch.Tensor, eps: Sequence[float] = (), min_samples: int = 1
) -> list[ExampleStatistics]:
    """:func:`example_statistics` of every input: ``hidden [B, N, D]``, ``mask [B, N]`` (True = real token)."""
    mask = mask.bool()
    return [example_statistics(hidden[i][mask[i]], eps, min_samples) for i in range(hidden.shape[0])]


def quantile_eps(statistics: Sequence[ExampleStatistics], quantile: float) -> float:
    """The quantile rule's eps: the ``quantile`` of all nearest-neighbour cosine dissimilarities in ``statistics``."""
    values = np.concatenate([s.nn_cosine_distance for s in statistics]) if statistics else np.zeros(0)
    return float(np.quantile(values, quantile)) if len(values) else PAPER_EPS


@dataclass
class LayerSummary:
    """One row of the redundancy table: a layer's statistics over all inputs (quantiles over pooled tokens,
    means over inputs)."""

    layer: int
    examples: int
    cls_cosine_mean: float
    cls_cosine_q10: float
    cls_cosine_q50: float
    cls_cosine_q90: float
    pair_cosine_mean: float
    nn_distance_q10: float
    nn_distance_q50: float
    nn_distance_q90: float
    nn_relative_q50: float
    nn_cosine_distance_q50: float
    mean_norm: float
    clusters_paper_mean: float
    clusters_paper_median: float
    cluster_share_paper_mean: float
    #: Share of an input's tokens with no other token within the paper's eps (its own DBSCAN cluster), mean over inputs.
    singleton_share_paper_mean: float
    clusters_quantile_mean: float
    clusters_quantile_median: float
    cluster_share_quantile_mean: float

    def as_row(self) -> dict[str, float | int]:
        """A CSV row, floats rounded to 4 decimals."""
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def summarize_layer(layer: int, statistics: Sequence[ExampleStatistics], eps_paper: float = PAPER_EPS) -> LayerSummary:
    """Pool one layer's per-input statistics; ``clusters`` must hold [paper eps, quantile eps] per input.

    ``cluster_share_*`` is clusters per token (an input of 3 tokens, two of them close, has 2 clusters: 0.67);
    ``singleton_share_paper_mean`` the share of tokens that are a cluster of their own (there: 1 of 3, 0.33)."""
    cls_cosine = np.concatenate([s.cls_cosine for s in statistics])
    nn = np.concatenate([s.nn_distance for s in statistics])
    relative = np.concatenate([s.nn_distance / max(s.mean_norm, 1e-12) for s in statistics])
    nn_cosine = np.concatenate([s.nn_cosine_distance for s in statistics])
    pairs = np.array([s.pair_cosine for s in statistics])
    clusters = np.array([s.clusters for s in statistics], dtype=float)  # [examples, 2]
    sizes = np.array([s.tokens for s in statistics], dtype=float)
    q = np.quantile
    return LayerSummary(
        layer=layer,
        examples=len(statistics),
        cls_cosine_mean=float(cls_cosine.mean()),
        cls_cosine_q10=float(q(cls_cosine, 0.1)),
        cls_cosine_q50=float(q(cls_cosine, 0.5)),
        cls_cosine_q90=float(q(cls_cosine, 0.9)),
        pair_cosine_mean=float(np.nanmean(pairs)),
        nn_distance_q10=float(q(nn, 0.1)),
        nn_distance_q50=float(q(nn, 0.5)),
        nn_distance_q90=float(q(nn, 0.9)),
        nn_relative_q50=float(q(relative, 0.5)),
        nn_cosine_distance_q50=float(q(nn_cosine, 0.5)),
        mean_norm=float(np.mean([s.mean_norm for s in statistics])),
        clusters_paper_mean=float(clusters[:, 0].mean()),
        clusters_paper_median=float(np.median(clusters[:, 0])),
        cluster_share_paper_mean=float((clusters[:, 0] / sizes).mean()),
        singleton_share_paper_mean=float(np.mean([_singleton_share(s, eps_paper) for s in statistics])),
        clusters_quantile_mean=float(clusters[:, 1].mean()),
        clusters_quantile_median=float(np.median(clusters[:, 1])),
        cluster_share_quantile_mean=float((clusters[:, 1] / sizes).mean()),
    )


def _singleton_share(statistics: ExampleStatistics, eps: float) -> float:
    """Share of one input's tokens whose nearest other token is farther than ``eps`` (a lone token: 1.0)."""
    if statistics.tokens < 2:
        return 1.0
    return float(np.mean(statistics.nn_cosine_distance > eps))


@dataclass
class RedundancyResult:
    """Every layer's per-input statistics and summary; layer 0 is the embedding output, j the output of encoder j."""

    eps_paper: float
    eps_quantile: float
    quantile: float
    min_samples: int
    per_layer: dict[int, list[ExampleStatistics]]
    summaries: list[LayerSummary]


class RedundancyAccumulator:
    """Collects per-input statistics batch by batch (so hidden states of a whole split are never held), then
    clusters with the quantile eps once encoder 1's nearest-neighbour dissimilarities are all known."""

    def __init__(
        self, *, eps_quantile: float = DEFAULT_EPS_QUANTILE, eps_paper: float = PAPER_EPS,
        min_samples: int = PAPER_MIN_SAMPLES,
    ) -> None:  # fmt: skip
        if not 0.0 < eps_quantile < 1.0:
            raise ConfigError(f"--eps-quantile must be in (0, 1), got {eps_quantile}")
        if eps_paper <= 0:
            raise ConfigError(f"--eps must be > 0, got {eps_paper}")
        self.eps_quantile, self.eps_paper, self.min_samples = eps_quantile, eps_paper, min_samples
        self.per_layer: dict[int, list[ExampleStatistics]] = {}
        self._distances: dict[int, list[np.ndarray]] = {}

    def add(self, hidden_states: Sequence[torch.Tensor], mask: torch.Tensor, *, first_layer: int = 0) -> None:
        """One batch: tensors ``[B, N, D]`` of layers ``first_layer``, ``first_layer + 1``, ... (default: the
        embeddings, then each encoder's output), ``mask [B, N]``."""
        mask = mask.bool()
        for layer, hidden in enumerate(hidden_states, start=first_layer):
            for i in range(hidden.shape[0]):
                tokens = hidden[i][mask[i]]
                self.per_layer.setdefault(layer, []).append(
                    example_statistics(tokens, (self.eps_paper,), self.min_samples)
                )
                self._distances.setdefault(layer, []).append(cosine_dissimilarity(tokens).numpy())

    def result(self) -> RedundancyResult:
        """Cluster with the quantile eps (from encoder 1, or the only layer) and summarise every layer."""
        reference = self.per_layer[1 if len(self.per_layer) > 1 else 0]
        eps_q = quantile_eps(reference, self.eps_quantile)
        for layer, statistics in self.per_layer.items():
            for stats, distance in zip(statistics, self._distances[layer], strict=True):
                stats.clusters = [stats.clusters[0], dbscan_clusters(distance, eps_q, self.min_samples)]
        self._distances.clear()
        summaries = [summarize_layer(layer, stats, self.eps_paper) for layer, stats in sorted(self.per_layer.items())]
        return RedundancyResult(self.eps_paper, eps_q, self.eps_quantile, self.min_samples, self.per_layer, summaries)


def analyze_hidden_states(
    hidden_states: Sequence[torch.Tensor],
    mask: torch.Tensor,
    *,
    eps_quantile: float = DEFAULT_EPS_QUANTILE,
    eps_paper: float = PAPER_EPS,
    min_samples: int = PAPER_MIN_SAMPLES,
) -> RedundancyResult:
    """Redundancy statistics of ``hidden_states`` (``L + 1`` tensors ``[B, N, D]``: embeddings, then each
    encoder's output) over the real tokens of ``mask [B, N]``; the quantile eps comes from encoder 1."""
    accumulator = RedundancyAccumulator(eps_quantile=eps_quantile, eps_paper=eps_paper, min_samples=min_samples)
    accumulator.add(hidden_states, mask)
    return accumulator.result()


def analyze_model(
    model: torch.nn.Module,
    inputs: dict[str, torch.Tensor],
    *,
    batch_size: int = 64,
    progress: bool = False,
    at: str = "output",
    **settings: float,
) -> RedundancyResult:
    """:func:`analyze_hidden_states` of a dense model over ``inputs`` (``[n, N]`` tensors, with
    ``attention_mask``), batch by batch; ``settings``: eps_quantile, eps_paper, min_samples.

    ``at="output"``: the embeddings and each encoder's output (the paper's Figure 1); ``at="middle"``: each
    encoder's tokens right after its attention sublayer, where Pyramid-BERT selects (layers 1..L).
    """

    if at not in AT_CHOICES:
        raise ConfigError(f"--at must be one of {', '.join(AT_CHOICES)}; got {at!r}")

    accumulator = RedundancyAccumulator(**settings)
    count = inputs["attention_mask"].shape[0]
    with torch.inference_mode():
        for start in tqdm(range(0, count, batch_size), desc="redundancy", unit="batch", disable=not progress):
            batch = {key: value[start : start + batch_size] for key, value in inputs.items()}
            if at == "middle":
                inputs_only = {key: value for key, value in batch.items() if key != "labels"}
                layers = range(1, model.config.num_hidden_layers + 1)
                middles = [to_middle(model, inputs_only, layer).float() for layer in layers]
                accumulator.add(middles, batch["attention_mask"], first_layer=1)
                continue
            output = model(**batch, output_hidden_states=True)
            accumulator.add([h.float() for h in output.hidden_states], batch["attention_mask"])
    return accumulator.result()
