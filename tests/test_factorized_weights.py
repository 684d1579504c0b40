"""Factorized spectral weights (CP, Tucker, TT, joint) against dense references.

References are independent of the code under test: the dense weight is rebuilt from the
factor parameters here with explicit ``torch.einsum`` formulas written from the textbook
definitions, and contracted with the plain reference einsum of ``contract.py``.
"""

import math

import numpy as np
import pytest
import torch

from neuralops.errors import ConfigError
from neuralops.spectral import SpectralConv, build_layer_weights, build_spectral_weight
from neuralops.spectral.contract import contract_dense_reference
from neuralops.spectral.einsum_plan import plan_contraction
from neuralops.spectral.factorized import CPSpectralWeight, TTSpectralWeight, TuckerSpectralWeight
from neuralops.spectral.modes import kept_modes

TOL64 = 1e-12  # float64 paths that differ only in the order of sums
FACTORIZATIONS = ["cp", "tucker", "tt"]



def textbook_dense(weight):
    """Full complex tensor from the stored parameters, by the CP/Tucker/TT definitions."""
    f = weight.tensor_factorization
    c = torch.view_as_complex
    letters = "abcdefgh"[: len(f.shape)]
    if f.kind == "cp":  # W[i..] = Σ_r Π_n U_n[i_n, r]
        return torch.einsum(",".join(f"{a}z" for a in letters) + "->" + letters, *[c(u) for u in f.factors])
    if f.kind == "tucker":  # W = G ×_1 U_1 ... ×_N U_N
        ranks = "ABCDEFGH"[: len(f.shape)]
        eq = ranks + "," + ",".join(f"{a}{r}" for a, r in zip(letters, ranks)) + "->" + letters
        return torch.einsum(eq, c(f.core), *[c(u) for u in f.factors])
    out = c(f.cores[0])  # TT: product of cores G_n[:, i_n, :]
    for core in f.cores[1:]:
        out = torch.einsum("...r,rjs->...js", out, c(core))
    return out.squeeze(0).squeeze(-1)


def layer_slice(full, layer):
    return full if layer is None else full[layer]


CASES = [
    # (n_modes, grid) - grid coarser than the modes in the second and fourth case
    ((4, 3), (16, 16)),
    ((4, 3), (5, 4)),
    ((2, 3, 2), (8, 8, 8)),
    ((2, 3, 2), (3, 4, 3)),
]


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("n_modes,grid", CASES)
def test_factorized_equals_reconstructed_equals_dense(factorization, n_modes, grid, monkeypatch):
    torch.manual_seed(0)
    weight = build_spectral_weight(5, 4, n_modes, factorization, rank=0.4).double()
    modes = kept_modes(n_modes, grid)
    x = torch.randn(3, 5, *[a.count for a in modes], dtype=torch.complex128)
    # Independent dense reference: textbook reconstruction, sliced by the documented index rule.
    full = textbook_dense(weight)
    index = []
    for axis, (sel, m) in enumerate(zip(modes, n_modes)):
        idx = list(range(sel.n_pos)) + ([2 * m - sel.n_neg + j for j in range(sel.n_neg)] if axis < len(n_modes) - 1 else [])
        index.append(torch.tensor(idx))
    ref_weight = full
    for axis, idx in enumerate(index):
        ref_weight = ref_weight.index_select(2 + axis, idx)
    reference = contract_dense_reference(x, ref_weight)
    assert torch.allclose(weight.dense(modes), ref_weight, atol=TOL64, rtol=0)
    outputs = {}
    for implementation in ("factorized", "reconstructed", "auto"):
        weight.implementation = implementation
        outputs[implementation] = weight(x, modes)
        err = (outputs[implementation] - reference).abs().max().item()
        assert err < TOL64, (implementation, err)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # the paths torch.compile traces
    for implementation in ("factorized", "reconstructed", "auto"):
        weight.implementation = implementation
        assert (weight(x, modes) - reference).abs().max().item() < TOL64, implementation


def test_factorized_path_never_forms_the_dense_weight():
    weight = build_spectral_weight(6, 5, (4, 3), "cp", rank=3, implementation="factorized")
    modes = kept_modes((4, 3), (16, 16))
    operands = weight._operands(modes)
    plan = weight._make_plan("factorize", operands, (2, 6, 8, 3))
    for step in plan.steps:
        assert "batch" in step.labels or not {"in", "out"} <= set(step.labels), step.labels
    rebuild = weight._make_plan("reconstruct", operands, None)
    assert {"in", "out"} <= set(rebuild.steps[-1].labels)  # the reconstructed path does form it


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_gradients_agree_between_paths(factorization):
    torch.manual_seed(1)
    weight = build_spectral_weight(3, 4, (3, 2), factorization, rank=0.5).double()
    modes = kept_modes((3, 2), (8, 8))
    x = torch.randn(2, 3, 6, 2, dtype=torch.complex128)
    grads = {}
    for implementation in ("factorized", "reconstructed"):
        weight.implementation = implementation
        weight.zero_grad()
        weight(x, modes).abs().pow(2).sum().backward()
        grads[implementation] = [p.grad.clone() for p in weight.parameters()]
    for a, b in zip(grads["factorized"], grads["reconstructed"]):
        assert torch.allclose(a, b, atol=1e-10)


def dims(c_in, c_out, n_modes):
    return (c_in, c_out) + tuple(2 * m for m in n_modes[:-1]) + (n_modes[-1],)


def test_parameter_counts_follow_the_formulas():
    shape = dims(6, 5, (4, 3))
    cp = build_spectral_weight(6, 5, (4, 3), "cp", rank=7)
    assert cp.tensor_factorization.num_parameters() == 2 * 7 * sum(shape)
    tucker = build_spectral_weight(6, 5, (4, 3), "tucker", rank=[2, 3, 4, 2])
    ranks = [2, 3, 4, 2]
    assert tucker.tensor_factorization.num_parameters() == 2 * (math.prod(ranks) + sum(d * r for d, r in zip(shape, ranks)))
    tt = build_spectral_weight(6, 5, (4, 3), "tt", rank=[1, 3, 4, 2, 1])
    r = [1, 3, 4, 2, 1]
    assert tt.tensor_factorization.num_parameters() == 2 * sum(r[k] * d * r[k + 1] for k, d in enumerate(shape))


# --- ranks: full rank (1.0) is exact, explicit ranks above what a decomposition can use are refused ---

RANK_SHAPES = [(3, 4, 6, 3), (2, 2, 10), (1, 1, 8), (5, 3, 4, 2)]  # (Cin, Cout, *mode_shape), Fourier layout
FROM_DENSE = {"cp": CPSpectralWeight, "tucker": TuckerSpectralWeight, "tt": TTSpectralWeight}


def unfolding_rank(tensor, left):
    """numpy's rank of the unfolding with the axes ``left`` as rows (the bound a Tucker/TT rank can reach)."""
    axes = list(left) + [a for a in range(tensor.ndim) if a not in left]
    matrix = tensor.numpy().transpose(axes).reshape(math.prod(tensor.shape[a] for a in left), -1)
    return int(np.linalg.matrix_rank(matrix))


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("shape", RANK_SHAPES)
def test_full_rank_reproduces_a_random_tensor(factorization, shape):
    """rank=1.0 reproduces a fresh random complex tensor to 1e-12 (relative, float64)."""
    torch.manual_seed(sum(shape))
    dense = torch.randn(*shape, dtype=torch.complex128)
    weight = FROM_DENSE[factorization].from_dense(dense, 1.0)
    err = (weight.dense().detach() - dense).norm() / dense.norm()
    assert err < 1e-12, err


def test_full_ranks_are_the_unfolding_ranks():
    """Full Tucker/TT ranks equal numpy's ranks of a random tensor's unfoldings; CP is Π d / max d."""
    for shape in RANK_SHAPES:
        dense = torch.randn(*shape, dtype=torch.complex128)
        tucker = TuckerSpectralWeight.from_dense(dense, 1.0).tensor_factorization.rank
        assert list(tucker) == [unfolding_rank(dense, [n]) for n in range(len(shape))]
        tt = TTSpectralWeight.from_dense(dense, 1.0).tensor_factorization.rank
        assert list(tt) == [1] + [unfolding_rank(dense, range(k)) for k in range(1, len(shape))] + [1]
        assert CPSpectralWeight.from_dense(dense, 1.0).tensor_factorization.rank == math.prod(shape) // max(shape)


@pytest.mark.parametrize(
    "factorization,rank,bound",
    [
        ("tt", 4, "[1, 3, 4, 3, 1]"),  # rank 4 next to a mode of size 3
        ("tt", [1, 3, 13, 3, 1], "[1, 3, 12, 3, 1]"),
        ("tucker", [4, 4, 6, 3], "[3, 4, 6, 3]"),  # above the size of mode 0
        ("tucker", 5, "[3, 4, 5, 3]"),
        ("cp", 37, "[36]"),
    ],
)
def test_explicit_rank_above_the_bound_is_refused_in_one_line(factorization, rank, bound):
    dense = torch.randn(3, 4, 6, 3, dtype=torch.complex128)
    with pytest.raises(ConfigError) as err:
        FROM_DENSE[factorization].from_dense(dense, rank)
    message = str(err.value)
    assert "\n" not in message and bound in message and "rank=1.0" in message, message


def test_tucker_rank_is_bounded_by_the_product_of_the_others():
    """A (1, 1, 8) tensor has mode-2 rank 1: Tucker rank [1, 1, 2] is refused, [1, 1, 1] is exact."""
    dense = torch.randn(1, 1, 8, dtype=torch.complex128)
    with pytest.raises(ConfigError, match=r"\[1, 1, 1\]"):
        TuckerSpectralWeight.from_dense(dense, [1, 1, 2])
    weight = TuckerSpectralWeight.from_dense(dense, [1, 1, 1])
    assert (weight.dense().detach() - dense).norm() / dense.norm() < 1e-12


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_fraction_ranks_are_clipped_to_the_bounds(factorization):
    """tensorly's ranks for a large fraction exceed the bounds on (3, 4, 6, 3) (TT r_3 = 4 > 3): clipped, and the fit works."""
    dense = torch.randn(3, 4, 6, 3, dtype=torch.complex128)
    weight = FROM_DENSE[factorization].from_dense(dense, 0.99)
    rank = weight.tensor_factorization.rank
    full = FROM_DENSE[factorization].from_dense(dense, 1.0).tensor_factorization.rank
    assert all(r <= f for r, f in zip(np.atleast_1d(rank), np.atleast_1d(full)))
    assert torch.isfinite(torch.view_as_real(weight.dense())).all()


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_ranks_are_checked_before_allocating(factorization):
    """A rank of 10^12 would need terabytes: refused at once."""
    with pytest.raises(ConfigError, match="full rank"):
        build_spectral_weight(4, 4, (3, 3), factorization, rank=10**12)


@pytest.mark.parametrize("rank", ["abc", 0, -2, True, [2, 2.5, 2, 2], [], 0.0, 1.5])
def test_bad_rank_types_are_one_line_config_errors(rank):
    with pytest.raises(ConfigError, match="rank"):
        build_spectral_weight(4, 4, (3, 3), "tucker", rank=rank)


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
@pytest.mark.parametrize("fraction", [0.1, 0.5])
def test_rank_fraction_gives_about_that_fraction_of_parameters(factorization, fraction):
    weight = build_spectral_weight(16, 16, (8, 8), factorization, rank=fraction)
    dense = 2 * math.prod(dims(16, 16, (8, 8)))
    achieved = weight.tensor_factorization.num_parameters() / dense
    assert abs(achieved - fraction) <= 0.15 * fraction, achieved


@pytest.mark.parametrize("factorization", FACTORIZATIONS)
def test_initial_weight_has_dense_std(factorization):
    """Averaged over 40 draws, E|W|² of the reconstructed weight is the dense init's 2/(Cin+Cout) (±25%)."""
    torch.manual_seed(3)
    second_moment = []
    for _ in range(40):
        weight = build_spectral_weight(8, 8, (4, 4), factorization, rank=0.2)
        second_moment.append(weight.dense().abs().pow(2).mean().item())
    target = 2.0 / 16
    assert abs(sum(second_moment) / len(second_moment) / target - 1) < 0.25


@pytest.mark.parametrize("cls,rank", [(TuckerSpectralWeight, [6, 5, 8, 3]), (TTSpectralWeight, [1, 6, 24, 3, 1])])
def test_full_rank_decomposition_reproduces_the_dense_layer(cls, rank):
    """tensorly's decomposition of a dense weight at full rank gives the same layer (float64, 1e-10)."""
    torch.manual_seed(4)
    dense_layer = SpectralConv(6, 5, (4, 3)).double()
    weight = cls.from_dense(dense_layer.weight.dense().detach(), rank=rank)
    factorized_layer = SpectralConv(6, 5, (4, 3), weight=weight).double()
    with torch.no_grad():
        factorized_layer.bias.copy_(dense_layer.bias)
    x = torch.randn(2, 6, 16, 12, dtype=torch.float64)
    for grid_x in (x, x[..., ::3, ::2]):  # also on a grid coarser than the modes
        assert torch.allclose(factorized_layer(grid_x), dense_layer(grid_x), atol=1e-10, rtol=0)


def test_joint_factorization_shares_one_parameter_set():
    torch.manual_seed(5)
    weights = build_layer_weights(3, 4, 4, (3, 2), {"factorization": "tucker", "rank": 0.3, "joint": True})
    layers = torch.nn.ModuleList(SpectralConv(4, 4, (3, 2), weight=w).double() for w in weights)
    shared = weights[0].tensor_factorization
    assert all(w.tensor_factorization is shared for w in weights)
    spectral_params = [p for name, p in layers.named_parameters() if "bias" not in name]
    assert len(spectral_params) == len(list(shared.parameters()))
    assert sum(p.numel() for p in spectral_params) == shared.num_parameters()
    assert [k for k in layers.state_dict() if "factorization" in k][0].startswith("0.")
    # Each layer's dense weight is its slice of the joint tensor (textbook Tucker reconstruction).
    joint = textbook_dense(weights[0])
    assert joint.shape == (3, 4, 4, 6, 2)
    for layer, w in enumerate(weights):
        assert torch.allclose(w.dense(), joint[layer], atol=TOL64)
    # Every layer's loss reaches the shared parameters.
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    layers[2](x).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in shared.parameters())
    # moving the model moves the shared factors for every view
    layers.float()
    assert all(w.dense().dtype == torch.complex64 for w in weights)


def test_joint_fraction_counts_all_layers():
    weights = build_layer_weights(4, 16, 16, (8, 8), {"factorization": "tucker", "rank": 0.05, "joint": True})
    dense = 4 * 2 * math.prod(dims(16, 16, (8, 8)))
    achieved = weights[0].tensor_factorization.num_parameters() / dense
    assert abs(achieved - 0.05) < 0.0075


def test_contraction_plans_are_cached(monkeypatch):
    import neuralops.spectral.factorized as factorized

    calls = []
    original = factorized.plan_contraction
    monkeypatch.setattr(factorized, "plan_contraction", lambda *a, **k: calls.append(1) or original(*a, **k))
    weight = build_spectral_weight(4, 4, (3, 3), "tucker", rank=0.5)
    modes = kept_modes((3, 3), (12, 12))
    x = torch.randn(2, 4, 6, 3, dtype=torch.complex64)
    weight(x, modes)
    first = len(calls)
    for _ in range(3):
        weight(x, modes)
    assert first >= 1 and len(calls) == first


def test_plan_finds_the_cheap_matrix_chain_order():
    """(A B) C costs 10·100·5 + 10·5·50 = 7,500 MACs; A (B C) costs 75,000."""
    sizes = {"i": 10, "j": 100, "k": 5, "l": 50}
    plan = plan_contraction([("i", "j"), ("j", "k"), ("k", "l")], ("i", "l"), sizes)
    assert plan.macs == 7500
    a, b, c = torch.randn(10, 100), torch.randn(100, 5), torch.randn(5, 50)
    assert torch.allclose(plan(a, b, c), a @ b @ c, atol=1e-4)


def test_bad_options_raise_config_errors():
    with pytest.raises(ConfigError, match="rnak"):
        build_spectral_weight(4, 4, (3, 3), "tucker", rnak=0.1)
    with pytest.raises(ConfigError, match="fraction"):
        build_spectral_weight(4, 4, (3, 3), "cp", rank=1.5)
    with pytest.raises(ConfigError, match="implementation"):
        build_spectral_weight(4, 4, (3, 3), "tt", implementation="fast")
    with pytest.raises(ConfigError, match="joint"):
        build_layer_weights(2, 4, 4, (3, 3), {"factorization": "dense", "joint": True})
    with pytest.raises(ConfigError, match="mode_axes"):
        build_layer_weights(2, 4, 4, (3, 3), {"factorization": "cp", "mode_axes": ["nonneg", "nonneg"]})


def test_auto_counts_one_rebuild_for_all_slices_of_a_batch():
    """``implementation="auto"`` compares ``slices × factorized`` with ``one rebuild + slices ×
    dense contraction``: for the benchmark FNO's Tucker weight (32 channels, 16 × 9 kept modes,
    rank 0.1) 8 slices of 2 samples rebuild the weight, one batch of 16 contracts through the
    factors, and both agree with the cost formula computed here from the plans."""
    weight = TuckerSpectralWeight(32, 32, [8, 9], rank=0.1)
    modes = kept_modes([8, 9], (128, 128))
    per_slice = (2, 32, 16, 9)
    operands = weight._operands(modes)
    factorized = weight._plan("factorize", operands, per_slice)
    rebuild = weight._plan("reconstruct", operands, None)
    memory = 4  # MEMORY_COST_PER_ELEMENT
    contraction = math.prod(per_slice) * 32 + memory * 2 * 32 * 16 * 9

    def expected(slices):
        cost_factorized = slices * (factorized.macs + memory * factorized.written)
        cost_rebuilt = rebuild.macs + memory * rebuild.written + slices * contraction
        return "factorized" if cost_factorized < cost_rebuilt else "reconstructed"

    assert weight.choose_implementation((16, 32, 16, 9), modes) == "factorized"
    assert weight.choose_implementation(per_slice, modes) == expected(1)
    with weight.shared_by_slices(8):
        assert weight.choose_implementation(per_slice, modes) == expected(8) == "reconstructed"
    assert weight.choose_implementation(per_slice, modes) == expected(1)


def test_slice_sharing_is_per_thread_and_nests():
    """A ``shared_by_slices`` scope open in one thread changes nothing in another (which may run
    the same model with gradients while this one evaluates without), and an inner scope
    restores the outer one on exit."""
    import threading

    weight = TuckerSpectralWeight(6, 5, [3, 4], rank=0.5, implementation="reconstructed")
    modes = kept_modes([3, 4], (8, 8))
    seen = {}

    def other_thread():
        seen["sharing"] = weight._sharing()
        stacked = weight.stacked((2, 6, 6, 4), modes)
        stacked.sum().backward()
        seen["gradients"] = [p.grad is not None and bool(p.grad.any()) for p in weight.parameters()]

    with weight.shared_by_slices(4):
        with torch.no_grad():
            first = weight.stacked((2, 6, 6, 4), modes)
        assert weight.stacked((2, 6, 6, 4), modes) is first  # built once in this scope
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        with weight.shared_by_slices(2):
            assert weight._sharing()[0] == 2 and weight.stacked((2, 6, 6, 4), modes) is not first
        assert weight._sharing()[0] == 4 and weight.stacked((2, 6, 6, 4), modes) is first
    assert seen["sharing"] == (1, None) and all(seen["gradients"])
    assert weight._sharing() == (1, None)
