"""``torch.compile`` (``trainer.compile=true``): the models Dynamo traces as one graph, and a
compiled FNO trains with the eager model's values and gradients.

While Dynamo traces, the pointwise maps, the spectral layers, factorized weights and batch
slicing switch to plain torch ops (see :func:`neuralops.layers.pointwise.pointwise_maps`,
:class:`neuralops.spectral.SpectralConv`, :mod:`neuralops.spectral.factorized`,
:func:`neuralops.models.slicing.samples_per_slice`); the eager paths are tested against
references elsewhere. SFNO still compiles in pieces (torch-harmonics builds its transforms
inside the traced call).
"""

import pytest
import torch

from neuralops.models import build

ONE_GRAPH = [
    ("fno", dict(n_modes=[4, 4], hidden_channels=8, n_layers=2, grid="vertex", domain_padding=0.25), (2, 1, 17, 17), None),
    ("fno", dict(n_modes=[4, 4], hidden_channels=8, n_layers=2, grid="cell", domain_padding=0.25), (2, 1, 16, 16), (24, 24)),
    ("t1", dict(n_modes=[4, 4], hidden_channels=8), (2, 1, 16, 16), None),
    ("mgno", dict(hidden_channels=8, n_layers=2), (2, 1, 16, 16), None),
    ("lsm", dict(width=8), (2, 1, 16, 16), None),
    ("tfno", dict(n_modes=[4, 4], hidden_channels=8, n_layers=2, grid="vertex", domain_padding=0.25), (2, 1, 17, 17), None),
    ("mgtfno", dict(n_modes=[4, 4], hidden_channels=8, n_layers=2), (2, 1, 16, 16), None),
]


def test_torch_einsum_orders_its_operands_with_opt_einsum():
    """A traced factorized weight is one ``torch.einsum`` over all factors; without opt_einsum
    torch contracts them left to right (a CP weight's intermediate is then ~30× the dense
    weight), so it is a dependency."""
    assert torch.backends.opt_einsum.is_available() and torch.backends.opt_einsum.enabled


@pytest.mark.parametrize("name,options,shape,output_shape", ONE_GRAPH, ids=["fno-vertex", "fno-cell-resampled", "t1", "mgno", "lsm", "tfno", "mgtfno"])
def test_models_trace_as_one_graph_without_breaks(name, options, shape, output_shape):
    torch.manual_seed(0)
    model = build(name, in_channels=1, out_channels=1, **options)
    x = torch.randn(*shape)
    args = (x,) if output_shape is None else (x, output_shape)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(*args)
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons


@pytest.mark.slow
@pytest.mark.parametrize("name,grid,shape,output_shape", [
    ("fno", "vertex", (2, 1, 17, 17), None), ("fno", "cell", (2, 1, 16, 16), (24, 24)), ("tfno", "vertex", (2, 1, 17, 17), None),
])
def test_fullgraph_compiled_model_trains_like_the_eager_model(name, grid, shape, output_shape):
    """``torch.compile(fullgraph=True)`` (fails on any graph break), forward and backward of a
    mean-square loss: outputs and every parameter gradient equal the eager model's within float32
    rounding (measured 1e-6 relative)."""
    torch.manual_seed(1)
    model = build(name, in_channels=1, out_channels=1, n_modes=[4, 4], hidden_channels=8, n_layers=2,
                  grid=grid, domain_padding=0.25, batch_slice_mib=0.001)  # eager: one sample per slice
    x = torch.randn(*shape)
    eager = model(x, output_shape)
    eager.square().mean().backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)(x, output_shape)
    compiled.square().mean().backward()
    assert (compiled - eager).abs().max() <= 1e-5 * eager.abs().max()
    for n, p in model.named_parameters():
        assert (p.grad - expected[n]).abs().max() <= 1e-5 * expected[n].abs().max() + 1e-9, n


def test_compiled_fno_reads_its_dft_matrices_from_the_cache():
    """The first compiled call builds the DFT matrices inside its graph (the cache is empty then);
    once the cache holds them, Dynamo recompiles once and the graph reads them as constants
    instead of rebuilding them (``cos``/``sin``) on every call (:mod:`neuralops.tensor_cache`)."""
    torch.manual_seed(0)
    model = build("fno", in_channels=1, out_channels=1, n_modes=[4, 4], hidden_channels=8, n_layers=2, grid="periodic",
                  domain_padding=0.0)
    x = torch.randn(2, 1, 16, 16)
    trigonometric = []

    def count_trigonometric_ops(graph_module, example_inputs):
        trigonometric.append(sum(node.target in (torch.cos, torch.sin) for node in graph_module.graph.nodes))
        return graph_module.forward

    torch._dynamo.reset()
    compiled = torch.compile(model, backend=count_trigonometric_ops)
    for _ in range(3):
        out = compiled(x)
    torch.testing.assert_close(out, model(x), rtol=1e-5, atol=1e-6)
    assert trigonometric[-1] == 0 and len(trigonometric) <= 2, trigonometric
