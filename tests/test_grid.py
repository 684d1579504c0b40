"""The Grid from file to model: point placement and weights per kind, grids read from files and
views, the padding period on every kind, model options filled from the data, and
multi-resolution training."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from neuralops.data.factory import DataConfig, open_split, train_views
from neuralops.data.generate import main as generate
from neuralops.data.multires import ResolutionBatchSampler
from neuralops.data.views import ResolutionView
from neuralops.errors import ConfigError, DataFormatError
from neuralops.grid import Grid, GridAxis
from neuralops.layers.grid import DomainPadding, interpolate
from neuralops.models import build
from neuralops.training.run import run_experiment

FAST = ["trainer.epochs=1", "trainer.batch_size=8", "trainer.limit_train_batches=2", "trainer.progress=false",
        "model.hidden_channels=4", "trainer.metrics=[rel_l2]"]


def compose_config(repo_root, overrides):
    with initialize_config_dir(config_dir=str(repo_root / "configs"), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    "kind,expected",
    [
        ("vertex", lambda n, L: np.linspace(0, L, n)),
        ("cell", lambda n, L: (np.arange(n) + 0.5) * L / n),
        ("periodic", lambda n, L: np.arange(n) * L / n),
    ],
)
def test_axis_points_and_weights_by_kind(kind, expected):
    for n in (5, 16, 33):
        axis = GridAxis("x", kind, n, start=0.0, length=2.5)
        np.testing.assert_allclose(axis.coords, expected(n, 2.5), rtol=0, atol=1e-14)
        # The weights integrate a quadratic like the rule of the kind: trapezoid (vertex), midpoint (cell),
        # and exactly for a trigonometric polynomial on the periodic grid.
        x = axis.coords
        assert axis.weights.sum() == pytest.approx(2.5, rel=1e-14)
        if kind == "periodic":
            assert np.sum(axis.weights * np.cos(2 * np.pi * x / 2.5) ** 2) == pytest.approx(1.25, rel=1e-12)
        else:
            exact = 2.5**3 / 3
            h = 2.5 / axis.intervals
            error = np.sum(axis.weights * x**2) - exact
            # trapezoid: +h²L/6 ... midpoint: -h²L/12 (the leading error terms of each rule for x²)
            assert error == pytest.approx(h**2 * 2.5 / 6 if kind == "vertex" else -(h**2) * 2.5 / 12, rel=1e-10)


def test_sphere_weights_are_area_weights():
    grid = Grid.uniform((17, 32), "equiangular")
    w = grid.weights(normalized=False)
    assert float(w.sum()) == pytest.approx(4 * math.pi, rel=1e-12)
    theta = torch.as_tensor(grid.axes[0].coords)[:, None]
    # ∫ cos²θ dΩ = 4π/3 (Clenshaw–Curtis integrates this polynomial in cos θ exactly)
    assert float((w * torch.cos(theta) ** 2).sum()) == pytest.approx(4 * math.pi / 3, rel=1e-12)
    gauss = Grid.uniform((12, 24), "legendre_gauss")
    assert float((gauss.weights(normalized=False) * torch.cos(torch.as_tensor(gauss.axes[0].coords)[:, None]) ** 4).sum()) == pytest.approx(
        4 * math.pi / 5, rel=1e-12
    )
    assert gauss.kinds == ("legendre_gauss", "periodic") and grid.is_sphere


def test_grid_from_coordinates_infer_round_trip_and_repr():
    cell = GridAxis.from_coords("x", "cell", (np.arange(8) + 0.5) / 8 * 3.0 - 1.0)
    assert (cell.start, cell.length, cell.size) == pytest.approx((-1.0, 3.0, 8))
    inferred = Grid.infer({"x": (np.arange(8) + 0.5) / 8, "y": np.linspace(0, 2, 5), "z": np.arange(6) / 6}, [False, False, True], "wall")
    assert inferred.kinds == ("cell", "vertex", "periodic")
    # an even number of points symmetric about 0 is still a vertex grid; float32 cell centres are cells
    symmetric = Grid.infer({"x": np.linspace(-1, 1, 6, dtype=np.float32), "y": ((np.arange(128) + 0.5) / 128).astype(np.float32)},
                           [False, False], "unknown")
    assert symmetric.kinds == ("vertex", "cell") and symmetric.axes[1].length == pytest.approx(1.0)
    assert Grid.from_dict(json.loads(json.dumps(inferred.to_dict()))) == inferred
    assert "8 cell points on [0, 1]" in repr(inferred)
    assert inferred.resized(16).axes[0].coords[0] == pytest.approx(1 / 32)
    with pytest.raises(DataFormatError, match="equally spaced"):
        GridAxis.from_coords("x", "vertex", [0.0, 0.1, 0.3], where="f.h5")
    with pytest.raises(ConfigError, match="not a grid kind"):
        GridAxis("x", "staggered", 4)


def test_strided_views_describe_the_points_they_serve():
    vertex = Grid.uniform((17,), "vertex")
    assert ResolutionView("stride", 2).grid_from(vertex, "f") == vertex.resized(9)
    cell = Grid.uniform((16,), "cell")
    strided = ResolutionView("stride", 2).grid_from(cell, "f")
    np.testing.assert_allclose(strided.axes[0].coords, cell.axes[0].coords[::2], atol=1e-14)
    periodic = Grid.uniform((16,), "periodic")
    assert ResolutionView("fourier_filter", 4).grid_from(periodic, "f") == periodic.resized(4)


@pytest.mark.parametrize("kind,sizes", [("vertex", (17, 33, 65)), ("cell", (16, 32, 64)), ("periodic", (16, 32, 64))])
@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_padding_gives_one_period_at_every_resolution(kind, sizes, fraction):
    pad = DomainPadding(fraction, kind)
    for n in sizes:
        axis = GridAxis("x", kind, n)
        period = pad.padded_shape((n,))[0] * axis.spacing
        assert period == pytest.approx(1.0 if kind == "periodic" else 1.0 + fraction, rel=1e-12)
        x = torch.randn(2, 3, n)
        assert torch.equal(pad.crop(pad.pad(x), (n,))[..., : n - 1], x[..., : n - 1])


def _bump_fno(kind: str, fraction: float):
    torch.manual_seed(0)
    model = build("fno", in_channels=1, out_channels=1, n_modes=[6], hidden_channels=8, n_layers=1, grid=kind,
                  domain_padding=fraction, skip=None, channel_mlp_expansion=0.0, lifting_ratio=0.0, grid_embedding=False)
    model = model.double().eval()
    with torch.no_grad():
        for p in model.blocks.parameters():
            p.mul_(10.0)
        model.lifting.bias.zero_()
    return model


@pytest.mark.parametrize("kind,coarse,fine,step,offset", [("vertex", 17, 33, 2, 0), ("vertex", 17, 65, 4, 0), ("cell", 16, 48, 3, 1)])
@pytest.mark.parametrize("fraction", [0.0, 0.25])
def test_fno_gives_the_same_function_at_shared_points(kind, coarse, fine, step, offset, fraction):
    """A smooth input that vanishes near the ends gives the same output values at the physical
    points two grids share (vertex 17/33/65; cell 16/48 share every third centre)."""
    model = _bump_fno(kind, fraction)
    pts = {n: torch.as_tensor(GridAxis("x", kind, n).coords) for n in (coarse, fine)}
    bump = {n: torch.exp(-(((p - 0.45) / 0.12) ** 2))[None, None] for n, p in pts.items()}
    with torch.no_grad():
        y_coarse, y_fine = model(bump[coarse]), model(bump[fine])
    assert torch.allclose(pts[fine][offset::step], pts[coarse], atol=1e-14)
    diff = (y_fine[..., offset::step] - y_coarse).norm() / y_coarse.norm()
    assert diff < 1e-6, float(diff)
    # The drifting period of before (N points of a vertex grid as one period) gives a visible difference.
    if kind == "vertex" and fraction == 0.0:
        drifting = _bump_fno("periodic", 0.0)
        with torch.no_grad():
            assert (drifting(bump[fine])[..., ::step] - drifting(bump[coarse])).norm() / y_coarse.norm() > 1e-2


@pytest.mark.parametrize("kind,coarse,fine,step,offset", [("vertex", 17, 33, 2, 0), ("cell", 16, 48, 3, 1)])
def test_output_shape_evaluates_the_physical_points_of_the_finer_grid(kind, coarse, fine, step, offset):
    """Super-resolving with output_shape gives, at the points the two grids share, the coarse
    grid's own output (vertex 17 -> 33; cell 16 -> 48, whose every third centre is a 16-cell
    centre): the output points sit where the grid kind puts them."""
    model = _bump_fno(kind, 0.25)
    coords = torch.as_tensor(GridAxis("x", kind, coarse).coords)
    field = (torch.exp(-(((coords - 0.45) / 0.12) ** 2)))[None, None]
    with torch.no_grad():
        fine_out = model(field, output_shape=(fine,))
        assert torch.allclose(fine_out[..., offset::step], model(field), atol=1e-10)
        if kind == "cell":  # the same model evaluated as if the grid were vertex-like (no shift) misses them
            shifted = model.blocks[0].conv(model.padding.pad(model.lifting(field)), output_shape=model.padding.padded_shape((fine,)))
            unshifted = model.projection(model.padding.crop(shifted, (fine,)))
            assert not torch.allclose(unshifted[..., offset::step], model(field), atol=1e-3)


def test_linear_interpolation_is_exact_for_linear_fields_on_each_kind():
    for kind, n, m in (("vertex", 9, 33), ("cell", 8, 32)):
        src = torch.as_tensor(GridAxis("x", kind, n).coords)[None, None]
        dst = torch.as_tensor(GridAxis("x", kind, m).coords)[None, None]
        inside = (dst >= src.min()) & (dst <= src.max())
        out = interpolate(3 * src + 1, (m,), kind)
        assert torch.allclose(out[inside], (3 * dst + 1)[inside], atol=1e-12)
    periodic = torch.cos(2 * math.pi * torch.arange(64, dtype=torch.float64) / 64)[None, None]
    coarse = periodic[..., ::4]
    assert torch.allclose(interpolate(coarse, (64,), "periodic")[..., ::4], coarse, atol=1e-14)


def test_resolution_batches_stay_on_one_grid_and_cover_every_sample_once():
    sampler = ResolutionBatchSampler([10, 7], 4, generator=torch.Generator().manual_seed(0))
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3 + 2
    assert sorted(i for b in batches for i in b) == list(range(17))
    assert all(max(b) < 10 or min(b) >= 10 for b in batches)
    again = list(ResolutionBatchSampler([10, 7], 4, generator=torch.Generator().manual_seed(0)))
    assert again == batches
    with pytest.raises(ConfigError, match="needs samples"):
        ResolutionBatchSampler([10, 0], 4)


@pytest.fixture(scope="module")
def burgers_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("burgers") / "burgers.h5"
    args = ["burgers", "--samples", "8", "--val-fraction", "0.25", "--test-fraction", "0.25", "--resolutions", "64", "32",
            "--final-time", "0.2", "--n-times", "3", "--no-progress", "--out", str(out)]
    assert generate(args) == 0
    return out


def test_one_number_n_modes_and_grid_options_come_from_1d_data(repo_root, burgers_file, tmp_path):
    cfg = compose_config(repo_root, ["data=burgers", f"data.path={burgers_file}", *FAST])
    run_experiment(cfg, tmp_path, base_dir=repo_root)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    options = config["config"] if "config" in config else config
    text = json.dumps(config)
    assert '"n_modes": [6]' in text and '"grid": ["periodic"]' in text and '"domain_padding": 0.0' in text, options
    assert config["metadata"]["train_grid"]["axes"][0]["kind"] == "periodic"


def test_multi_resolution_training_runs_on_every_listed_grid(repo_root, burgers_file, tmp_path):
    data = DataConfig.from_dict({"path": str(burgers_file), "task": "window", "train_resolutions": [32, 64]})
    assert [v.file_shape for v in train_views(data)] == [(32,), (64,)]
    assert open_split(data, "train", train_views(data)[1]).grid == open_split(data, "train", train_views(data)[0]).grid.resized(64)
    cfg = compose_config(repo_root, ["data=burgers", f"data.path={burgers_file}", "data.train_resolutions=[32,64]", *FAST])
    results = run_experiment(cfg, tmp_path, base_dir=repo_root)
    assert results["train_resolution"] == "32+64"
    with pytest.raises(ConfigError, match="not both"):
        DataConfig.from_dict({"path": str(burgers_file), "train_resolution": 32, "train_resolutions": [32]})


def test_grids_holding_some_training_samples_are_trained_on_by_default(tmp_path):
    out = tmp_path / "darcy.h5"
    args = ["darcy", "--samples", "10", "--val-fraction", "0.2", "--test-fraction", "0.2", "--resolutions", "9",
            "--test-resolutions", "9", "17", "--train-subset", "17:3", "--no-progress", "--out", str(out)]
    assert generate(args) == 0
    data = DataConfig.from_dict({"path": str(out)})
    views = train_views(data)
    assert [v.file_shape for v in views] == [(9, 9), (17, 17)]
    subset = open_split(data, "train", views[1], partial=True)
    full = open_split(data, "train", views[0])
    assert len(subset) == 3 and list(subset.sample_ids) == list(full.sample_ids[:3])
    assert subset[2]["y"].shape == (1, 17, 17) and subset.grid == full.grid.resized(17)
    with pytest.raises(DataFormatError, match="holds 3 of the 6 samples"):
        open_split(data, "train", views[1])
    assert [v.file_shape for v in train_views(DataConfig.from_dict({"path": str(out), "train_resolution": 9}))] == [(9, 9)]
    with pytest.raises(SystemExit):
        generate([*args[:-1], str(tmp_path / "other.h5"), "--train-subset", "17:7"])


def test_padded_vertex_quadrature_integrates_the_domain_and_the_padding_separately():
    """With data 1 on the domain and c in the padding, the weighted sum of a padded vertex axis
    is the exact integral 1 + c·f at every resolution (unweighted: 1 + h more for the data)."""
    pad = DomainPadding(0.25, "vertex")
    for n in (9, 17, 33, 65):
        c = float(torch.rand(1))
        field = torch.cat([torch.ones(n, dtype=torch.float64), torch.full((pad.amount(n),), c, dtype=torch.float64)])
        w = pad.quadrature_weights((n,), torch.float64)
        assert float((w * field).sum()) / (n - 1) == pytest.approx(1 + 0.25 * c, rel=1e-13)
    assert DomainPadding(0.25, "cell").quadrature_weights((16, 16), torch.float64) is None
    assert DomainPadding(0.0, "vertex").quadrature_weights((17,), torch.float64) is None


def test_fno_output_converges_at_second_order_on_an_input_that_does_not_vanish_at_the_ends():
    """The field jumps between the data and the padding at the domain's ends; the quadrature
    weights make the same-point outputs on 17/33/65/129 vertex points converge at second order."""
    model = _bump_fno("vertex", 0.25)
    with torch.no_grad():
        out = {}
        for n in (17, 33, 65, 129):
            x = torch.linspace(0, 1, n, dtype=torch.float64)
            out[n] = model((1 + 0.5 * torch.cos(3 * x))[None, None])
    gaps = [float((out[2 * n - 1][..., ::2] - out[n]).norm() / out[n].norm()) for n in (17, 33, 65)]
    orders = [math.log2(gaps[i] / gaps[i + 1]) for i in range(2)]
    assert all(1.8 < o < 2.3 for o in orders), (gaps, orders)
