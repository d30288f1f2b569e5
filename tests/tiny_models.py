"""Tiny random BERT-family models and padded batches for tests (no download)."""

import torch
from transformers import BertConfig, BertForSequenceClassification, RobertaConfig, RobertaForSequenceClassification

LAYERS = 3
#: The encoder geometry every tiny model shares.
GEOMETRY = dict(vocab_size=99, hidden_size=32, num_hidden_layers=LAYERS, num_attention_heads=4, intermediate_size=37)


def tiny_bert(attn="sdpa", model_class=BertForSequenceClassification, seed=0, **extra):
    torch.manual_seed(seed)
    config = BertConfig(
        **GEOMETRY,
        max_position_embeddings=64,
        num_labels=3,
        attn_implementation=attn,
        **extra,
    )
    return model_class(config).eval()


def tiny_roberta(attn="sdpa"):
    torch.manual_seed(0)
    config = RobertaConfig(
        **GEOMETRY,
        max_position_embeddings=70,
        num_labels=2,
        pad_token_id=1,
        attn_implementation=attn,
    )
    return RobertaForSequenceClassification(config).eval()


def batch(batch_size=4, tokens=20, seed=0, padded=True):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 99, (batch_size, tokens), generator=generator)
    if padded:
        lengths = torch.randint(2, tokens + 1, (batch_size,), generator=generator)
        lengths[0] = tokens
    else:
        lengths = torch.full((batch_size,), tokens)
    attention_mask = (torch.arange(tokens)[None, :] < lengths[:, None]).long()
    input_ids = input_ids.masked_fill(attention_mask == 0, 0)
    return input_ids, attention_mask


def tiny_distilbert(attn="sdpa", seed=0, **extra):
    """A tiny random DistilBertForSequenceClassification (the shared geometry under DistilBERT's config names)."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=GEOMETRY["vocab_size"], dim=GEOMETRY["hidden_size"], n_layers=LAYERS,
        n_heads=GEOMETRY["num_attention_heads"], hidden_dim=GEOMETRY["intermediate_size"], max_position_embeddings=64,
        num_labels=3, attn_implementation=attn, **extra,
    )  # fmt: skip
    return DistilBertForSequenceClassification(config).eval()


def tiny_albert(attn="sdpa", seed=0, **extra):
    """A tiny random AlbertForSequenceClassification: one shared layer called LAYERS times, embeddings of 16."""
    from transformers import AlbertConfig, AlbertForSequenceClassification

    torch.manual_seed(seed)
    config = AlbertConfig(
        **GEOMETRY, embedding_size=16, max_position_embeddings=64, num_labels=3, attn_implementation=attn, **extra
    )
    return AlbertForSequenceClassification(config).eval()


def tiny_deberta(attn="eager", seed=0, **extra):
    """A tiny random DebertaV2ForSequenceClassification with DeBERTa-v3's attention: relative positions only
    (no absolute position embeddings), log buckets, c2p and p2c, shared attention keys, LayerNorm'd rel embeddings."""
    from transformers import DebertaV2Config, DebertaV2ForSequenceClassification

    torch.manual_seed(seed)
    settings = dict(
        **GEOMETRY, max_position_embeddings=64, num_labels=3, relative_attention=True, position_buckets=8,
        max_relative_positions=64, pos_att_type=["p2c", "c2p"], position_biased_input=False, share_att_key=True,
        norm_rel_ebd="layer_norm", type_vocab_size=0, attn_implementation=attn,
    )  # fmt: skip
    config = DebertaV2Config(**{**settings, **extra})
    return DebertaV2ForSequenceClassification(config).eval()


def tiny_modernbert(attn="sdpa", seed=0, pooling="cls", **extra):
    """A tiny random ModernBertForSequenceClassification: global, local (sliding window of +-2 tokens), global."""
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    torch.manual_seed(seed)
    config = ModernBertConfig(
        **GEOMETRY, max_position_embeddings=64, num_labels=3, local_attention=4, pad_token_id=0, bos_token_id=1,
        eos_token_id=2, cls_token_id=1, sep_token_id=2, layer_types=["full_attention", "sliding_attention",
        "full_attention"], classifier_pooling=pooling, attn_implementation=attn, **extra,
    )  # fmt: skip
    return ModernBertForSequenceClassification(config).eval()
