"""Shared helpers for the fine-tune / evaluate tests: a tiny random BERT and a tiny keyword task.

Imported by ``test_train*.py``, ``test_evaluate*.py`` and ``test_trial*.py``; holds no tests itself.
"""

from __future__ import annotations

import random
from pathlib import Path

from pyramid_bert.data import Split, TaskData

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
FILLER_WORDS = ["the", "a", "movie", "film", "plot", "was", "is", "very", "actor", "story", "and", "it", "quite"]
KEYWORDS = {1: "good", 0: "bad", 2: "odd"}
TINY_N = 16


def write_tiny_bert(folder: Path, *, num_layers: int = 2, num_labels: int | None = None, seed: int = 0) -> Path:
    """Save a random BERT (hidden 32, 2 heads) and a WordPiece tokenizer over a tiny vocab to ``folder``.

    ``num_labels=None`` saves a base ``BertModel`` (no classification head, like a pre-trained encoder);
    an int saves a ``BertForSequenceClassification`` with that many outputs.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertModel, BertTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL_TOKENS + FILLER_WORDS + sorted(set(KEYWORDS.values()))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizer(str(folder / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(folder)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=num_layers, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
    )  # fmt: skip
    torch.manual_seed(seed)
    if num_labels is None:
        model = BertModel(config)
    else:
        config.num_labels = num_labels
        model = BertForSequenceClassification(config)
    model.save_pretrained(folder)
    return folder


def make_keyword_task(
    *, sizes: tuple[int, int, int] = (96, 32, 32), num_labels: int = 2, seed: int = 0, name: str = "rt-polarity"
) -> TaskData:
    """A task a tiny model can learn: the label is which keyword ("bad"/"good"/"odd") a sentence contains.

    Named after a real task (default rt-polarity) so that name checks pass; N = 16.
    """
    rng = random.Random(seed)

    def split(count: int) -> Split:
        texts, labels = [], []
        for _ in range(count):
            label = rng.randrange(num_labels)
            words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(4, 11))]
            words.insert(rng.randint(0, len(words)), KEYWORDS[label])
            texts.append(" ".join(words))
            labels.append(label)
        return Split(text_a=texts, text_b=None, labels=labels)

    train, dev, test = sizes
    return TaskData(
        name=name, metric="accuracy", is_regression=False, num_labels=num_labels,
        label_names=[KEYWORDS[i] for i in range(num_labels)], max_length=TINY_N,
        splits={"train": split(train), "dev": split(dev), "test": split(test)},
    )  # fmt: skip
