"""The pyramid forward under torch.compile: no graph break, the same logits as eager, the plan and the custom op.

Compiling is slow on a small CPU, so most models here compile with the "eager" backend (dynamo's tracing: what
breaks graphs, what the traced program computes, with its plan taken under ``is_compiling()``), with dynamic
shapes, and one model goes through :func:`pyramid_bert.compiling.compile_model` (inductor) as users run it. Each
test resets dynamo first: the tiny models share their code objects, and dynamo's recompilation limit would
otherwise send later models back to eager without a word.
"""

import copy

import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

from pyramid_bert import pyramidize
from pyramid_bert.cli import build_parser
from pyramid_bert.compiling import compile_model
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.plan import plan_batch
from pyramid_bert.selection import compiled_rounds, kcenter_greedy_reference
from pyramid_bert.spec import PyramidSettings
from tiny_models import GEOMETRY, batch, tiny_bert

RATIOS = [0.8, 0.5, 0.3]
FIXED = [16, 10, 6]
#: name -> pyramidize keywords (and the attention implementation): every method, its options, both schedules.
CASES = {
    "coreset m=1 fixed": dict(lengths=FIXED, m=1),
    "coreset m=1 ratios": dict(keep_ratios=RATIOS, m=1),
    "coreset m=3 cosine end ratios": dict(keep_ratios=RATIOS, m=3, distance="cosine", position="end"),
    "coreset m=0.3 duplicity merge fixed": dict(lengths=FIXED, m=0.3, duplicity_attention=True, merge=True),
    "coreset m=k-1 standardized ratios": dict(keep_ratios=RATIOS, m=None, distance="standardized"),
    "attention sdpa fixed": dict(lengths=FIXED, method="attention"),
    "attention eager ratios": dict(keep_ratios=RATIOS, method="attention", attn="eager"),
    "average_pool": dict(method="average_pool", pool_windows=[2, 1, 3]),
    "first_k ratios": dict(keep_ratios=RATIOS, method="first_k"),
    "input_first_k": dict(lengths=[12, 12, 12], method="input_first_k"),
    "random fixed": dict(lengths=FIXED, method="random", seed=3),
    "random ratios": dict(keep_ratios=RATIOS, method="random", seed=4),
    "attention thresholds": dict(keep_thresholds=[0.9, 1.0, 1.3], method="attention"),
    "attention eager thresholds end": dict(
        keep_thresholds=[0.0, 1.5, 1.0], method="attention", attn="eager", position="end"
    ),
    "energy ratios": dict(keep_ratios=[0.5, 0.25, 0.25], method="energy"),
    "energy duplicity margin fixed": dict(lengths=FIXED, method="energy", duplicity_attention=True, energy_margin=0.3),
}


def pyramid_model(case: str) -> torch.nn.Module:
    options = dict(CASES[case])
    return pyramidize(tiny_bert(options.pop("attn", "sdpa")), **options)


def inputs():
    """Padded batches of two widths (the longest row fills the batch, as tokenizers pad) and one unpadded
    sentence: dynamic shapes, padding, batch of one."""
    wide, narrow = batch(batch_size=4, tokens=20, seed=3), batch(batch_size=3, tokens=13, seed=8)
    single = batch(batch_size=1, tokens=9, seed=5, padded=False)
    return [wide, narrow, single]


@pytest.mark.parametrize("case", list(CASES))
def test_the_compile_path_gives_the_eager_logits(case, monkeypatch, one_thread):
    """What the forward does differently under torch.compile (plan widths bounded from the shape, the rounds as a
    custom operator, asserts instead of checks), run eagerly: the same logits, for every method and option."""
    eager, compile_path = pyramid_model(case), pyramid_model(case)  # Random-select: equally seeded draws
    with torch.no_grad():
        expected = [eager(input_ids=ids, attention_mask=mask).logits for ids, mask in inputs()]
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        for (input_ids, attention_mask), logits in zip(inputs(), expected, strict=True):
            assert torch.allclose(
                compile_path(input_ids=input_ids, attention_mask=attention_mask).logits, logits, atol=1e-5
            )


@pytest.mark.parametrize(
    "case", ["coreset m=1 ratios", "attention sdpa fixed", "random fixed", "attention thresholds", "energy ratios"]
)
def test_compiled_logits_equal_eager_logits(case, one_thread):
    """Traced by dynamo with dynamic shapes: two padded batches of different widths share one graph."""
    eager, compiled = pyramid_model(case), pyramid_model(case)
    torch._dynamo.reset()
    compiled.compile(backend="eager", dynamic=True)
    with torch.no_grad():
        for input_ids, attention_mask in inputs()[:2]:
            expected = eager(input_ids=input_ids, attention_mask=attention_mask).logits
            got = compiled(input_ids=input_ids, attention_mask=attention_mask).logits
            assert torch.allclose(got, expected, atol=1e-5), case


@pytest.mark.slow
def test_compile_model_with_inductor_equals_eager(one_thread):
    """As users run it (inductor, dynamic shapes), on a one-layer model to keep compiling short."""
    config = BertConfig(**{**GEOMETRY, "num_hidden_layers": 1}, max_position_embeddings=64, num_labels=2)
    torch.manual_seed(0)
    dense = BertForSequenceClassification(config).eval()
    eager = pyramidize(dense, keep_ratios=[0.5], m=1)
    compiled = compile_model(copy.deepcopy(eager))
    torch._dynamo.reset()
    with torch.no_grad():
        for input_ids, attention_mask in inputs()[:2]:
            expected = eager(input_ids=input_ids, attention_mask=attention_mask).logits
            got = compiled(input_ids=input_ids, attention_mask=attention_mask).logits
            assert torch.allclose(got, expected, atol=1e-5)
    with pytest.raises(ConfigError, match="compile mode must be one of default"):
        compile_model(dense, mode="fast")


def graph_breaks(model: torch.nn.Module) -> tuple[int, list[str]]:
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=3)
    torch._dynamo.reset()
    with torch.no_grad():
        explained = torch._dynamo.explain(model)(input_ids=input_ids, attention_mask=attention_mask)
    return explained.graph_break_count, [str(reason.reason) for reason in explained.break_reasons]


@pytest.mark.parametrize("case", ["coreset m=0.3 duplicity merge fixed", "attention eager ratios", "average_pool",
                                  "first_k ratios", "input_first_k", "attention thresholds",
                                  "energy duplicity margin fixed"])  # fmt: skip
def test_no_more_graph_breaks_than_the_dense_model(case, one_thread):
    dense_breaks, _ = graph_breaks(tiny_bert())
    breaks, reasons = graph_breaks(pyramid_model(case))
    assert breaks <= dense_breaks == 0, (case, reasons)


def test_random_select_leaves_the_graph_once_per_forward_to_draw(one_thread):
    """The one remaining break: Random-select's draws (dynamo cannot pass a torch.Generator to an op) happen in one
    call before the encoder; dynamo counts it once per enclosing frame (model, BERT, encoder, the call)."""
    _, reasons = graph_breaks(pyramid_model("random fixed"))
    assert reasons and all("random_draws" in reason for reason in reasons)


# ------------------------------------------------------------------------------------------- the plan
def test_plan_widths_and_counts_of_a_keep_ratio_batch():
    settings = PyramidSettings(None, keep_ratios=[0.5, 0.5, 0.25]).validated(3)
    key_mask = torch.arange(20)[None, :] < torch.tensor([15, 4, 1])[:, None]  # the longest row has 15 of 20
    plan = plan_batch(settings, key_mask, masked=True, num_layers=3)
    assert [layer.width for layer in plan.layers] == [8, 8, 4]  # ceil(0.5 * 15), then ceil(0.25 * 15)
    assert [layer.keeps_all for layer in plan.layers] == [False, True, False]
    assert plan.layers[0].counts.tolist() == [8, 2, 1] and plan.layers[2].counts.tolist() == [4, 1, 1]
    assert plan.padded


def test_plan_without_a_mask_or_with_fixed_lengths_reads_nothing(monkeypatch):
    def no_host_read(*_args):
        raise AssertionError("a tensor value was read on the host")

    monkeypatch.setattr(torch.Tensor, "tolist", no_host_read)
    monkeypatch.setattr(torch.Tensor, "__bool__", no_host_read)
    ratios = PyramidSettings(None, keep_ratios=[0.5, 0.25, 0.25]).validated(3)
    plan = plan_batch(ratios, torch.ones(1, 26, dtype=torch.bool), masked=False, num_layers=3)
    assert [(layer.width, layer.keeps_all) for layer in plan.layers] == [(13, False), (7, False), (7, True)]
    fixed = PyramidSettings([16, 16, 6]).validated(3)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # a given mask is used, never read
    plan = plan_batch(fixed, torch.ones(2, 20, dtype=torch.bool), masked=True, num_layers=3)
    assert [(layer.width, layer.keeps_all) for layer in plan.layers] == [(16, False), (16, True), (6, False)]


def test_eager_forward_reads_one_value_per_batch_at_most(monkeypatch, one_thread):
    """Eager, keep ratios, a padded batch: the plan's one ``tolist``; no ``item`` / ``bool`` of a tensor in a layer."""
    model = pyramidize(tiny_bert(model_class=BertModel), keep_ratios=RATIOS, m=1, method="first_k")
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=3)
    reads = []
    for name in ("tolist", "item", "__bool__", "__int__"):
        original = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _o=original, _n=name: reads.append(_n) or _o(self, *a))
    encoder = model.encoder
    with torch.no_grad():
        encoder(model.embeddings(input_ids=input_ids), attention_mask=attention_mask.bool()[:, None, None, :])
    assert reads == ["tolist"]


# ------------------------------------------------------------------------------------------- the custom op
@pytest.mark.parametrize("numba", [True, False])
def test_kcenter_rounds_operator_equals_the_reference(numba):
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(5, 17, 6, generator=generator, dtype=torch.float64)
    x[:, 11:] = x[:, 1:7]  # exact duplicates: ties at distance 0
    mask = torch.arange(17)[None, :] < torch.tensor([17, 9, 3, 1, 12])[:, None]
    gram = torch.bmm(x, x.transpose(1, 2))
    with compiled_rounds(numba):
        for m in (1, 2, 5):
            for k in (2, 6, 17):
                order = torch.ops.pyramid_bert.kcenter_rounds(gram, mask, k, m)
                assert torch.equal(order, kcenter_greedy_reference(x, k, m, mask)), (m, k)
                assert torch.equal(
                    torch.ops.pyramid_bert.kcenter_rounds(gram[3:4], mask[3:4], k, m), order[3:4]
                )  # batch of one


def test_kcenter_rounds_operator_passes_opcheck():
    x = torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 5:] = False
    torch.library.opcheck(torch.ops.pyramid_bert.kcenter_rounds, (torch.bmm(x, x.transpose(1, 2)), mask, 4, 1))


# ------------------------------------------------------------------------------------------- the flag
@pytest.mark.parametrize(
    "words",
    [["bench", "--task", "rt-polarity"], ["evaluate", "runs/x"], ["predict", "m", "--input", "a", "--output", "b"]],
)
def test_compile_flag_on_bench_evaluate_and_predict(words):
    parser = build_parser()
    assert parser.parse_args([*words, "--compile"]).compile is True
    assert parser.parse_args(words).compile is False
