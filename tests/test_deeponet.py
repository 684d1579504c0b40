"""DeepONet, POD-DeepONet and MIONet: grids and query points, strategies, learning, the POD basis,
grid kinds (the trunk's coordinates, POD interpolation) and the options filled from the data."""

import math

import numpy as np
import pytest
import torch
from model_contract import assert_gradients_reach_every_parameter, assert_round_trip_reproduces, relative_l2, train

from neuralops.errors import ConfigError, InputShapeError
from neuralops.grid import Grid
from neuralops.layers.resample import grid_points, resample
from neuralops.models import build, model_class
from neuralops.models.deeponet import STRATEGIES

SMALL = dict(sensor_grid=[8, 8], branch_hidden=[16], trunk_hidden=[16], n_basis=6)
SMALL_POD = dict(sensor_grid=[8, 8], branch_hidden=[16], n_basis=4, pod_grid=[10, 12])


def small_model(name, **overrides):
    torch.manual_seed(0)
    if name == "pod_deeponet":
        model = build(name, in_channels=2, out_channels=3, **{**SMALL_POD, **overrides})
        model.fit_pod(torch.randn(20, 3, 10, 12))
        return model
    return build(name, in_channels=2, out_channels=3, **{**SMALL, **overrides})


FAMILIES = [("deeponet", {"strategy": s}) for s in STRATEGIES] + [
    ("deeponet", {"branch": "cnn", "branch_hidden": [4, 8]}),
    ("mionet", {}),
    ("mionet", {"input_groups": [2], "strategy": "independent"}),
    ("deeponet", {"grid": "cell"}),
    ("pod_deeponet", {"grid": ["cell", "periodic"]}),
    ("pod_deeponet", {}),
]


@pytest.mark.parametrize("name, overrides", FAMILIES)
def test_output_on_any_grid_and_at_query_points(name, overrides):
    model = small_model(name, **overrides)
    x = torch.randn(2, 2, 16, 16)
    assert model(x).shape == (2, 3, 16, 16)
    assert model(torch.randn(2, 2, 9, 13)).shape == (2, 3, 9, 13)
    on_grid = model(x, output_shape=(7, 5))
    assert on_grid.shape == (2, 3, 7, 5)
    # query points and output grids are one function: evaluating at the grid's points agrees
    queried = model.query(x, grid_points((7, 5), model.kinds))
    assert torch.allclose(queried, on_grid.flatten(2), atol=1e-5)


@pytest.mark.parametrize("name, overrides", FAMILIES)
def test_gradients_reach_every_parameter(name, overrides):
    model = small_model(name, **overrides)
    assert_gradients_reach_every_parameter(model, torch.randn(3, 2, 12, 12))


@pytest.mark.parametrize("name, overrides", [FAMILIES[0], FAMILIES[5], FAMILIES[-1]])
def test_save_load_round_trip(name, overrides, tmp_path):
    model = small_model(name, **overrides)
    rebuilt = assert_round_trip_reproduces(model, torch.randn(2, 2, 12, 12), tmp_path)
    if name == "pod_deeponet":  # the fitted basis travels in the state dict
        assert torch.equal(rebuilt.pod_basis, model.pod_basis) and rebuilt.pod_basis.any()


def test_pod_basis_is_a_buffer_that_follows_the_model():
    model = small_model("pod_deeponet")
    assert {"pod_basis", "pod_mean"} <= set(model.state_dict())
    assert "pod_basis" not in dict(model.named_parameters())
    model = model.to(torch.float64)
    assert model.pod_basis.dtype == torch.float64 and model.pod_mean.dtype == torch.float64


def test_multi_output_strategies_size_the_nets_as_specified():
    """Branch (128 sensor values -> 16 -> out) and trunk (2 -> 16 -> out) sizes per strategy, K=3, p=6."""

    def nets(branch_out, trunk_out, copies=1):
        return copies * ((128 * 16 + 16) + 17 * branch_out + (2 * 16 + 16) + 17 * trunk_out) + 3  # + bias per channel

    expected = {
        "independent": nets(6, 6, copies=3),
        "split_both": nets(18, 18),
        "split_branch": nets(18, 6),
        "split_trunk": nets(6, 18),
    }
    assert {s: small_model("deeponet", strategy=s).num_parameters() for s in STRATEGIES} == expected


def test_pod_basis_is_orthonormal_and_captures_the_svd_energy():
    generator = torch.Generator().manual_seed(0)
    x = torch.linspace(0, 1, 12)
    k = torch.arange(1, 7, dtype=torch.float32)
    coefficients = torch.randn(50, 2, 6, generator=generator) / k**2
    outputs = torch.einsum("nck,kx,y->ncxy", coefficients, torch.sin(math.pi * k[:, None] * x), torch.ones(10))
    outputs = outputs + 0.01 * torch.randn(50, 2, 12, 10, generator=generator)
    model = build("pod_deeponet", in_channels=1, out_channels=2, pod_grid=[12, 10], n_basis=4, sensor_grid=[8, 8])
    fraction = model.fit_pod(outputs)

    basis = model.pod_basis.flatten(2)  # (K, p, P), orthonormal in the grid-mean inner product
    gram = basis @ basis.transpose(1, 2) / basis.shape[-1]
    assert torch.allclose(gram, torch.eye(4).expand(2, 4, 4), atol=1e-5)

    for channel in range(2):
        data = outputs[:, channel].flatten(1).double().numpy()
        centred = data - data.mean(axis=0)
        singular = np.linalg.svd(centred, compute_uv=False)
        expected = (singular[:4] ** 2).sum() / (singular**2).sum()
        phi = basis[channel].double().numpy() / math.sqrt(basis.shape[-1])
        captured = np.linalg.norm(centred @ phi.T) ** 2 / np.linalg.norm(centred) ** 2
        assert captured >= expected - 1e-6
        assert abs(fraction[channel].item() - expected) < 1e-6
        assert expected > 0.99  # 4 modes of a rank-6 signal with decaying weights, plus small noise


def antiderivative_pairs(n, grid, generator, modes=4):
    """u = a0 + Σ a_k cos(kπx) + b_k sin(kπx) on linspace(0,1,grid) and s(x) = ∫_0^x u exactly."""
    x = torch.linspace(0, 1, grid)
    k = torch.arange(1, modes + 1, dtype=torch.float32)
    a0 = torch.randn(n, 1, generator=generator)
    a = torch.randn(n, modes, generator=generator) / k
    b = torch.randn(n, modes, generator=generator) / k
    arg = math.pi * k[:, None] * x[None]
    u = a0 + a @ torch.cos(arg) + b @ torch.sin(arg)
    s = a0 * x + a @ (torch.sin(arg) / (math.pi * k[:, None])) + b @ ((1 - torch.cos(arg)) / (math.pi * k[:, None]))
    return u[:, None], s[:, None]


def test_deeponet_learns_the_antiderivative_operator():
    """1500 Adam steps (≈ 5 s on one core); measured test relative L2 error 0.042 on the
    sensor grid and 0.041 on a 3× finer output grid (the trunk is a function of x)."""
    u, s = antiderivative_pairs(1000, 32, torch.Generator().manual_seed(0))
    u_test, s_test = antiderivative_pairs(200, 32, torch.Generator().manual_seed(1))
    _, s_test_fine = antiderivative_pairs(200, 96, torch.Generator().manual_seed(1))  # same functions
    torch.manual_seed(0)
    model = build("deeponet", in_channels=1, out_channels=1, sensor_grid=[32], branch_hidden=[64],
                  trunk_hidden=[64, 64], n_basis=32, activation="relu")
    train(model, u, s, steps=1500, lr=3e-3, batch_size=100)
    with torch.no_grad():
        error = relative_l2(model(u_test), s_test)
        error_fine = relative_l2(model(u_test, output_shape=[96]), s_test_fine)
    assert error < 0.08
    assert error_fine < 0.08


def test_bad_input_gives_one_clear_error():
    model = small_model("deeponet")
    with pytest.raises(InputShapeError, match="in_channels=2"):
        model(torch.randn(1, 1, 8, 8))
    with pytest.raises(InputShapeError, match="2-D grid"):
        model(torch.randn(1, 2, 8))
    with pytest.raises(InputShapeError, match=r"points of shape \(P, 2\)"):
        model.query(torch.randn(1, 2, 8, 8), torch.rand(5, 3))
    with pytest.raises(InputShapeError, match=r"\[0, 1\]"):
        model.query(torch.randn(1, 2, 8, 8), torch.rand(5, 2) + 1.0)
    with pytest.raises(ConfigError, match="strategy='split_everything'"):
        build("deeponet", in_channels=1, out_channels=2, sensor_grid=[8, 8], strategy="split_everything")
    with pytest.raises(ConfigError, match="branch='transformer'"):
        build("deeponet", in_channels=1, out_channels=1, sensor_grid=[8, 8], branch="transformer")
    with pytest.raises(ConfigError, match="input_groups"):
        build("mionet", in_channels=3, out_channels=1, sensor_grid=[8, 8], input_groups=[1, 1])
    with pytest.raises(ConfigError, match="^sensor_grid is not set"):
        build("deeponet", in_channels=1, out_channels=1)
    with pytest.raises(ConfigError, match="^pod_grid is not set"):
        build("pod_deeponet", in_channels=1, out_channels=1, sensor_grid=[8, 8])
    with pytest.raises(ConfigError, match="^grid is not set"):
        build("mionet", in_channels=1, out_channels=1, sensor_grid=[8, 8], grid=None)
    with pytest.raises(ConfigError, match=r"grid=\['cell'\] gives 1 kinds for 2 axes"):
        build("deeponet", in_channels=1, out_channels=1, sensor_grid=[8, 8], grid=["cell"])
    with pytest.raises(InputShapeError, match="fit_pod expects outputs of shape"):
        small_model("pod_deeponet").fit_pod(torch.randn(20, 3, 8, 8))


def test_options_from_grid_fill_unset_options_from_the_data_and_keep_user_values():
    grid = Grid.uniform((32, 32), "cell")
    filled = {"grid": ["cell", "cell"], "sensor_grid": [32, 32]}
    assert model_class("deeponet").options_from_grid({}, grid) == filled
    assert model_class("mionet").options_from_grid({"sensor_grid": None, "grid": None}, grid) == filled
    assert model_class("pod_deeponet").options_from_grid({"n_basis": 8}, grid) == {**filled, "pod_grid": [32, 32]}
    user = {"sensor_grid": [8, 8], "pod_grid": [16, 16], "grid": "cell"}
    assert model_class("pod_deeponet").options_from_grid(user, grid) == {}
    assert model_class("deeponet").options_from_grid({"grid": ["cell", "cell"]}, grid) == {"sensor_grid": [32, 32]}
    with pytest.raises(ConfigError, match=r"grid='vertex' contradicts the training data's grid kinds \['cell', 'cell'\]"):
        model_class("deeponet").options_from_grid({"grid": "vertex"}, grid)
    # what is filled builds the model, and lands in its config
    options = {"in_channels": 1, "out_channels": 1, "n_basis": 4, "branch_hidden": [8],
               "sensor_grid": None, "pod_grid": None, "grid": None}
    model = build("pod_deeponet", **{**options, **model_class("pod_deeponet").options_from_grid(options, grid)})
    assert model.config["grid"] == ["cell", "cell"] and model.pod_grid == (32, 32) and model.sensor_grid == (32, 32)


def centres(n, kind):
    """Independent reference of an axis' unit coordinates (neuralops.grid's table)."""
    j = np.arange(n, dtype=np.float64)
    return {"vertex": j / (n - 1), "cell": (j + 0.5) / n, "periodic": j / n}[kind]


@pytest.mark.parametrize("kinds", [("vertex", "vertex"), ("cell", "cell"), ("periodic", "periodic"), ("cell", "periodic")])
def test_the_trunk_sees_the_unit_coordinates_of_the_grid_kind(kinds):
    """On a cell grid of n points the trunk is evaluated at the cell centres (j + 1/2)/n, on a
    vertex grid at j/(n - 1), on a periodic one at j/n."""
    model = small_model("deeponet", grid=list(kinds))
    seen = []
    model.trunk.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().numpy()))
    with torch.no_grad():
        model(torch.randn(1, 2, 6, 4), output_shape=(5, 3))
        model(torch.randn(1, 2, 6, 4))
    for points, shape in zip(seen, ((5, 3), (6, 4))):
        expected = np.stack(np.meshgrid(*(centres(n, k) for n, k in zip(shape, kinds)), indexing="ij"), -1).reshape(-1, 2)
        np.testing.assert_allclose(points, expected, atol=1e-7)


def test_pod_basis_fitted_on_a_cell_grid_is_interpolated_between_cell_centres():
    """POD basis and mean fitted on 32² cell centres, evaluated on the 128² cell grid: equal
    (1e-12, float64) to separable linear interpolation between the coarse cell centres, held
    constant over the outer half cells (np.interp, an independent reference); the vertex
    convention would place the samples elsewhere and differ by more than 1e-2."""
    n, fine, generator = 32, 128, torch.Generator().manual_seed(0)
    c = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    x, y = torch.meshgrid(c, c, indexing="ij")
    shapes = torch.stack([torch.exp(x), torch.sin(3 * x + y), x * torch.cos(2 * y), x * y, torch.exp(-y) * torch.sin(5 * x)])
    outputs = torch.einsum("sk,kxy->sxy", torch.randn(40, 5, generator=generator, dtype=torch.float64), shapes)[:, None]
    torch.manual_seed(0)
    model = build("pod_deeponet", in_channels=1, out_channels=1, pod_grid=[n, n], sensor_grid=[8, 8], n_basis=4,
                  branch_hidden=[8], grid="cell").double()
    model.fit_to_data([(torch.zeros(40, 1, n, n, dtype=torch.float64), outputs + 1.0)])

    targets = (np.arange(fine) + 0.5) / fine

    def reference(values):  # (..., n, n) -> (..., fine, fine)
        along_x = np.apply_along_axis(lambda v: np.interp(targets, c.numpy(), v), -2, values)
        return np.apply_along_axis(lambda v: np.interp(targets, c.numpy(), v), -1, along_x)

    basis, mean = reference(model.pod_basis.numpy()), reference(model.pod_mean.numpy())  # (1, 4, F, F), (1, F, F)
    on_grid = model.basis_on_grid((fine, fine)).permute(1, 2, 0).reshape(1, 4, fine, fine)
    np.testing.assert_allclose(on_grid.numpy(), basis, atol=1e-12)
    np.testing.assert_allclose(model.offset_on_grid((fine, fine)).reshape(1, fine, fine).numpy(), mean, atol=1e-12)
    inputs = torch.randn(3, 1, n, n, generator=generator, dtype=torch.float64)
    with torch.no_grad():
        coefficients = model.coefficients(inputs).numpy()  # (3, 1, 4)
        prediction = model(inputs, output_shape=(fine, fine)).numpy()
        queried = model.query(inputs, grid_points((fine, fine), "cell", dtype=torch.float64)).numpy()
    expected = mean[None] + np.einsum("bkp,kpxy->bkxy", coefficients, basis)
    np.testing.assert_allclose(prediction, expected, atol=1e-10)
    np.testing.assert_allclose(queried, expected.reshape(3, 1, -1), atol=1e-10)
    vertex = resample(model.pod_basis, (fine, fine), "bilinear", "vertex").numpy()
    assert np.abs(vertex - basis).max() > 1e-2
