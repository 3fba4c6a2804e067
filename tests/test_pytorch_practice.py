"""The claims of the chapter "PyTorch in practice" (``07_pytorch_practice``).

- weight decay: ``Adam(weight_decay=λ)`` is L2 in the loss, ``AdamW`` (``Adam(decoupled_weight_decay=True)``,
  default ``weight_decay=1e-2``) the decoupled decay; from θ = 2 with zero loss gradient AdamW
  follows ``2(1 − ηλ)^k`` while Adam's path is the same for every λ (while λ|θ| ≫ ε): 2 → 0.18 in
  300 steps at η = 0.01 (against an independent NumPy Adam), and ε changes it only at tiny λ;
- ``SequentialLR(LinearLR, CosineAnnealingLR)`` is ``cosine_schedule(warmup=)``, and
  ``CosineAnnealingLR`` climbs back to ``η_0`` at ``2 T_max``;
- clipping between ``backward()`` and ``step()``; with a ``GradScaler`` it needs ``unscale_()``
  first, or the step is ``S`` times too short; parameter groups; ``.grad = None`` skips the update;
- ``ResumableSampler``; a complete checkpoint (model, optimiser, scheduler, EMA, sampler position,
  global RNG states) resumes a run mid-epoch bit for bit, and each piece is needed; a
  ``DataLoader`` without its own generator draws from the global one at every epoch start;
  ``torch.load`` refuses NumPy's state unless ``weights_only=False``;
- the complete example: the EMA is far closer to the truth in the middle of the run and level
  with the model at its end; clipping acts only in the first epoch;
- seeded workers; ``use_deterministic_algorithms`` fills ``torch.empty`` with NaN;
- the weight-decay exercise: cost per unit ``θ*²`` peaks at ``h = λ``, coordinate 3 (``h = λ = 1``)
  pays 2.4%, coordinate 4 pays most for every λ below 7/4 (56% at λ = 1, 81% at 0.1), then
  coordinate 2.
"""

import io
import multiprocessing
import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, TensorDataset, get_worker_info

from nqm_lib.adaptive import Adam as NumPyAdam
from nqm_lib.schedules import cosine_schedule
from nqm_lib.torch_checkpoint import ResumableSampler
from nqm_lib.torch_schedulers import scheduler_learning_rates

torch.set_num_threads(1)

SIGMA = torch.tensor([2.0, 1.5, 1.0, 0.5, 0.25], dtype=torch.float64)
THETA_STAR = torch.tensor([1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
B_STAR = 0.7


def _data(n=1000, seed=11):
    """The chapter's regression with a bias: x ~ N(0, diag(σ²)), y = θ*ᵀx + 0.7 + ε, shape (n, 1)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=generator, dtype=torch.float64) * SIGMA
    noise = 0.5 * torch.randn(n, generator=generator, dtype=torch.float64)
    return x, (x @ THETA_STAR + B_STAR + noise).unsqueeze(-1)


# ---------------------------------------------------------------- weight decay and AdamW


@pytest.mark.parametrize("lam", [0.01, 0.1, 1.0])
def test_adamw_decays_to_2_1_minus_lr_lambda_while_adam_weight_decay_moves_about_lr_from_2(lam):
    lr = 0.01
    moved = {}
    for optimizer_class in (torch.optim.Adam, torch.optim.AdamW):
        theta = nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
        optimizer = optimizer_class([theta], lr=lr, weight_decay=lam)
        theta.grad = torch.zeros(1, dtype=torch.float64)  # zero loss gradient
        optimizer.step()
        moved[optimizer_class] = theta.item()
    assert moved[torch.optim.AdamW] == pytest.approx(2 * (1 - lr * lam), rel=1e-14)
    # Adam's step on the penalty gradient 2λ is lr · 2λ/(2λ + ε) ≈ lr, whatever λ is
    assert moved[torch.optim.Adam] == pytest.approx(2 - lr * 2 * lam / (2 * lam + 1e-8), rel=1e-12)
    assert abs(moved[torch.optim.Adam] - (2 - lr)) < 1e-8


def test_adam_weight_decay_is_l2_in_the_loss_and_adamw_is_decoupled_decay():
    x, y = _data(40)
    x, y = x[:, :3], y[:, 0]
    lam, lr = 0.3, 0.05

    def run(kind):
        w = nn.Parameter(torch.ones(3, dtype=torch.float64))
        optimizer_class = torch.optim.AdamW if kind == "adamw" else torch.optim.Adam
        optimizer = optimizer_class([w], lr=lr, weight_decay=lam if kind in ("adam", "adamw") else 0.0)
        for xb, yb in zip(x.split(5), y.split(5), strict=True):
            optimizer.zero_grad()
            loss = 0.5 * ((xb @ w - yb) ** 2).mean()
            if kind == "l2":
                loss = loss + 0.5 * lam * (w**2).sum()
            loss.backward()
            if kind == "decoupled by hand":
                with torch.no_grad():
                    w.mul_(1 - lr * lam)
            optimizer.step()
        return w.detach()

    torch.testing.assert_close(run("adam"), run("l2"), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(run("adamw"), run("decoupled by hand"), rtol=1e-12, atol=1e-14)
    assert (run("adamw") - run("adam")).abs().max() > 1e-3


def _zero_gradient_path(optimizer_class, lam, steps=300, lr=0.01):
    theta = nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    optimizer = optimizer_class([theta], lr=lr, weight_decay=lam)
    path = []
    for _ in range(steps):
        theta.grad = torch.zeros(1, dtype=torch.float64)  # the loss does not depend on θ
        optimizer.step()
        path.append(theta.item())
    return np.array(path)


@pytest.mark.parametrize("lam", [0.01, 0.1, 1.0])
def test_adam_l2_path_from_2_is_the_same_for_every_lambda_and_reaches_0_18_in_300_steps(lam):
    path = _zero_gradient_path(torch.optim.Adam, lam)
    # an independent NumPy Adam (PyTorch's conventions) on the penalty's gradient λθ
    reference, theta = NumPyAdam(lr=0.01), np.array([2.0])
    expected = []
    for _ in range(300):
        theta = reference.step(theta, lam * theta)
        expected.append(theta[0])
    np.testing.assert_allclose(path, expected, rtol=1e-10)
    assert path[-1] == pytest.approx(0.179, abs=5e-4)
    np.testing.assert_allclose(path, _zero_gradient_path(torch.optim.Adam, 1.0), rtol=1e-5)  # λ-free


@pytest.mark.parametrize("lam", [0.01, 0.1, 1.0])
def test_adamw_with_zero_loss_gradient_decays_like_1_minus_lr_lambda_to_the_k(lam):
    path = _zero_gradient_path(torch.optim.AdamW, lam)
    k = np.arange(1, 301)
    np.testing.assert_allclose(path, 2.0 * (1 - 0.01 * lam) ** k, rtol=1e-12)


def test_adam_l2_path_changes_only_once_lambda_theta_approaches_eps():
    at_one = _zero_gradient_path(torch.optim.Adam, 1.0)[-1]
    assert abs(_zero_gradient_path(torch.optim.Adam, 1e-2)[-1] / at_one - 1) < 1e-5
    assert 0.01 < _zero_gradient_path(torch.optim.Adam, 1e-6)[-1] / at_one - 1 < 0.05  # λθ = 200 ε at first
    assert _zero_gradient_path(torch.optim.Adam, 1e-8)[-1] > 3 * at_one  # λθ = 2 ε: much slower


def test_adam_with_decoupled_weight_decay_is_adamw_and_adamw_decays_by_default():
    x, y = _data(100)
    results = []
    for make in (
        lambda p: torch.optim.AdamW(p, lr=0.05, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=0.05, weight_decay=0.1, decoupled_weight_decay=True),
    ):
        w = nn.Parameter(torch.ones(5, dtype=torch.float64))
        optimizer = make([w])
        for xb, yb in zip(x.split(10), y[:, 0].split(10), strict=True):
            optimizer.zero_grad()
            (0.5 * ((xb @ w - yb) ** 2).mean()).backward()
            optimizer.step()
        results.append(w.detach())
    assert torch.equal(results[0], results[1])
    assert torch.optim.AdamW([nn.Parameter(torch.zeros(1))]).defaults["weight_decay"] == 0.01
    assert torch.optim.Adam([nn.Parameter(torch.zeros(1))]).defaults["weight_decay"] == 0


# ---------------------------------------------------------------- warm-up, clipping, mixed precision


@pytest.mark.parametrize(("steps", "warmup", "final_lr"), [(100, 10, 1e-3), (37, 1, 0.0), (50, 2, 0.01)])
def test_sequential_lr_linear_warmup_then_cosine_equals_cosine_schedule_with_warmup(steps, warmup, final_lr):
    lr = 0.1
    rates, _ = scheduler_learning_rates(
        lambda o: SequentialLR(
            o,
            [
                LinearLR(o, start_factor=1 / warmup, total_iters=max(warmup - 1, 1)),
                CosineAnnealingLR(o, T_max=steps - warmup, eta_min=final_lr),
            ],
            milestones=[warmup],
        ),
        steps,
        lr=lr,
    )
    # the formula written out independently: η0 (t + 1)/W, then the cosine over the rest
    t = np.arange(steps)
    expected = np.where(
        t < warmup,
        lr * (t + 1) / warmup,
        final_lr + 0.5 * (lr - final_lr) * (1 + np.cos(np.pi * (t - warmup) / (steps - warmup))),
    )
    np.testing.assert_allclose(rates, expected, rtol=1e-12, atol=1e-15)
    library = cosine_schedule(steps, lr, warmup=warmup, final_lr=final_lr)
    np.testing.assert_allclose(library, expected, rtol=1e-12)


def test_cosine_annealing_lr_rises_again_past_t_max_back_to_lr_at_twice_t_max():
    t_max, lr, eta_min = 40, 0.1, 1e-3
    rates, _ = scheduler_learning_rates(
        lambda o: CosineAnnealingLR(o, T_max=t_max, eta_min=eta_min), 3 * t_max + 1, lr=lr
    )
    t = np.arange(rates.size)
    np.testing.assert_allclose(
        rates, eta_min + 0.5 * (lr - eta_min) * (1 + np.cos(np.pi * t / t_max)), rtol=1e-10, atol=1e-15
    )
    assert rates[t_max] == pytest.approx(eta_min, rel=1e-10)
    assert np.all(np.diff(rates[t_max : 2 * t_max + 1]) > 0)  # climbing after T_max
    assert rates[2 * t_max] == pytest.approx(lr, rel=1e-10)


def test_clip_grad_norm_between_backward_and_step_scales_the_step_to_max_norm():
    x, y = _data(40)
    x, y = x[:, :3], y[:, 0]
    w = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    b = nn.Parameter(torch.zeros(1, dtype=torch.float64))
    optimizer = torch.optim.SGD([w, b], lr=0.05)
    (0.5 * ((x @ w + b - y) ** 2).mean()).backward()
    gradient = torch.cat([w.grad, b.grad])
    norm = nn.utils.clip_grad_norm_([w, b], max_norm=1.0)
    assert norm.item() == pytest.approx(gradient.norm().item(), rel=1e-12) and norm.item() > 1
    clipped = torch.cat([w.grad, b.grad])
    assert clipped.norm().item() == pytest.approx(1.0, rel=1e-6)  # jointly, over all parameters
    torch.testing.assert_close(clipped, gradient / gradient.norm(), rtol=1e-6, atol=0)
    optimizer.step()
    torch.testing.assert_close(torch.cat([w, b]).detach(), -0.05 * clipped, rtol=1e-12, atol=0)
    # a gradient below max_norm is left alone
    w.grad = torch.full((3,), 0.1, dtype=torch.float64)
    b.grad = torch.zeros(1, dtype=torch.float64)
    nn.utils.clip_grad_norm_([w, b], max_norm=1.0)
    assert torch.equal(w.grad, torch.full((3,), 0.1, dtype=torch.float64))


@pytest.mark.parametrize("unscale_first", [True, False])
def test_clipping_under_a_grad_scaler_needs_unscale_first_or_the_step_is_s_times_too_short(unscale_first):
    x, y = _data(100)
    model = nn.Linear(5, 1, bias=False).double()
    nn.init.zeros_(model.weight)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    scaler = torch.amp.GradScaler("cpu")
    scale = scaler.get_scale()
    assert scale == 2.0**16
    (0.5 * ((model(x) - y) ** 2).mean()).backward()
    true_norm = model.weight.grad.norm().item()
    optimizer.zero_grad()
    scaler.scale(0.5 * ((model(x) - y) ** 2).mean()).backward()
    assert model.weight.grad.norm().item() == pytest.approx(scale * true_norm, rel=1e-12)
    if unscale_first:
        scaler.unscale_(optimizer)
    seen = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0).item()
    scaler.step(optimizer)
    scaler.update()
    assert true_norm > 1
    if unscale_first:  # the clip sees ‖g‖ and the step has length η · max_norm
        assert seen == pytest.approx(true_norm, rel=1e-12)
        assert model.weight.norm().item() == pytest.approx(0.05, rel=1e-5)
    else:  # the clip sees S‖g‖, and the step is S times too short
        assert seen == pytest.approx(scale * true_norm, rel=1e-12)
        assert model.weight.norm().item() == pytest.approx(0.05 / scale, rel=1e-5)


def test_parameter_groups_decay_the_weights_but_not_the_biases():
    torch.manual_seed(0)
    net = nn.Linear(3, 2).double()
    lr, lam = 0.5, 0.1
    optimizer = torch.optim.SGD(
        [
            {"params": [p for p in net.parameters() if p.ndim > 1], "weight_decay": lam},
            {"params": [p for p in net.parameters() if p.ndim <= 1], "weight_decay": 0.0},
        ],
        lr=lr,
    )
    weight, bias = net.weight.detach().clone(), net.bias.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    torch.testing.assert_close(net.weight.detach(), (1 - lr * lam) * weight, rtol=1e-14, atol=0)
    assert torch.equal(net.bias.detach(), bias)


@pytest.mark.parametrize("optimizer_class", [torch.optim.SGD, torch.optim.AdamW])
def test_a_parameter_whose_grad_is_none_skips_momentum_and_weight_decay(optimizer_class):
    kwargs = {"lr": 0.1, "weight_decay": 0.1}
    if optimizer_class is torch.optim.SGD:
        kwargs["momentum"] = 0.9
    moved = {}
    for set_to_none in (True, False):
        used = nn.Parameter(torch.ones(1, dtype=torch.float64))
        unused = nn.Parameter(torch.ones(1, dtype=torch.float64))
        optimizer = optimizer_class([used, unused], **kwargs)
        (used**2 + unused**2).sum().backward()
        optimizer.step()
        after_first = unused.item()
        for _ in range(5):
            optimizer.zero_grad(set_to_none=set_to_none)
            (used**2).sum().backward()
            optimizer.step()
        assert (unused.grad is None) == set_to_none
        moved[set_to_none] = abs(unused.item() - after_first)
    assert moved[True] == 0.0  # skipped: no momentum, no weight decay
    assert moved[False] > 0.01  # zeros are a gradient: momentum and decay still act


# ---------------------------------------------------------------- the resumable sampler


def test_resumable_sampler_serves_a_fresh_permutation_every_epoch_and_counts_epochs():
    sampler = ResumableSampler(10, seed=3)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second
    assert sampler.state_dict() == {"seed": 3, "epoch": 2, "position": 0}
    assert first == sampler.order(0).tolist() and second == sampler.order(1).tolist()
    assert torch.equal(ResumableSampler(10, seed=3).order(1), sampler.order(1))  # a function of (seed, epoch)
    assert not torch.equal(ResumableSampler(10, seed=4).order(1), sampler.order(1))


def test_resumable_sampler_resumes_in_the_middle_of_an_epoch_through_a_dataloader():
    dataset = TensorDataset(torch.arange(12))
    reference = [
        b.tolist() for (b,) in DataLoader(dataset, batch_size=4, sampler=ResumableSampler(12, seed=5))
    ]
    sampler = ResumableSampler(12, seed=5)
    for k, _ in enumerate(DataLoader(dataset, batch_size=4, sampler=sampler)):
        if k == 1:
            break  # stopped after two minibatches
    state = sampler.state_dict()
    assert state == {"seed": 5, "epoch": 0, "position": 8}
    other = ResumableSampler(12, seed=99)
    other.load_state_dict(state)
    rest = [b.tolist() for (b,) in DataLoader(dataset, batch_size=4, sampler=other)]
    assert rest == reference[2:]
    assert other.state_dict() == {"seed": 5, "epoch": 1, "position": 0}


def test_resumable_sampler_rejects_invalid_arguments():
    with pytest.raises(ValueError, match="n_examples"):
        ResumableSampler(0)
    with pytest.raises(ValueError, match="seed"):
        ResumableSampler(5, seed=-1)
    with pytest.raises(ValueError, match="position"):
        ResumableSampler(5).load_state_dict({"seed": 0, "epoch": 0, "position": 6})


# ---------------------------------------------------------------- the complete example and its checkpoint

EPOCHS, BATCH_SIZE, WARMUP = 10, 32, 50


def _augment(xb):
    if np.random.rand() < 0.5:
        return xb
    return xb + random.uniform(0.0, 0.1) * torch.randn_like(xb)


def _build_run(train_set, seed, *, loader_generator=True):
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
    model = nn.Linear(5, 1).double()
    optimizer = torch.optim.SGD(
        [{"params": [model.weight], "weight_decay": 1e-4}, {"params": [model.bias], "weight_decay": 0.0}],
        lr=0.05,
        momentum=0.9,
    )
    steps = EPOCHS * len(range(0, len(train_set), BATCH_SIZE))
    scheduler = SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, start_factor=1 / WARMUP, total_iters=WARMUP - 1),
            CosineAnnealingLR(optimizer, T_max=steps - WARMUP, eta_min=1e-3),
        ],
        milestones=[WARMUP],
    )
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.95))
    ema.update_parameters(model)
    generator = torch.Generator().manual_seed(seed) if loader_generator else None
    sampler = ResumableSampler(len(train_set), seed=seed)
    return (
        model,
        optimizer,
        scheduler,
        ema,
        DataLoader(train_set, BATCH_SIZE, sampler=sampler, generator=generator),
    )


def _train_epoch(run, stop_after=None):
    model, optimizer, scheduler, ema, loader = run
    steps, clipped = 0, 0
    for xb, yb in loader:
        optimizer.zero_grad()
        nn.functional.mse_loss(model(_augment(xb)), yb).backward()
        clipped += nn.utils.clip_grad_norm_(model.parameters(), max_norm=10.0).item() > 10
        optimizer.step()
        scheduler.step()
        ema.update_parameters(model)
        steps += 1
        if steps == stop_after:
            break
    return clipped


def _excess(net):
    w, b = net.weight.detach()[0], net.bias.detach()[0]
    return ((SIGMA**2 * (w - THETA_STAR) ** 2).sum() + (b - B_STAR) ** 2).item()


PIECES = ("model", "optimizer", "scheduler", "ema", "sampler", "rng")


def _save(run):
    model, optimizer, scheduler, ema, loader = run
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "ema": ema.state_dict(),
        "sampler": loader.sampler.state_dict(),
        "rng": (torch.get_rng_state(), np.random.get_state(), random.getstate()),
    }
    file = io.BytesIO()
    torch.save(state, file)
    file.seek(0)
    return file


def _load(file, run, skip=None):
    model, optimizer, scheduler, ema, loader = run
    state = torch.load(file, weights_only=False)
    loaders = {
        "model": model.load_state_dict,
        "optimizer": optimizer.load_state_dict,
        "scheduler": scheduler.load_state_dict,
        "ema": ema.load_state_dict,
        "sampler": loader.sampler.load_state_dict,
    }
    for name, load in loaders.items():
        if name != skip:
            load(state[name])
    if skip != "rng":
        torch.set_rng_state(state["rng"][0])
        np.random.set_state(state["rng"][1])
        random.setstate(state["rng"][2])


@pytest.fixture(scope="module")
def train_set():
    x, y = _data()
    return TensorDataset(x[:800], y[:800])


def _train_to_the_end(run):
    history = []
    while run[-1].sampler.epoch < EPOCHS:
        clipped = _train_epoch(run)
        history.append((_excess(run[0]), _excess(run[3].module), clipped))
    return np.array(history)


@pytest.fixture(scope="module")
def complete_example(train_set):
    run = _build_run(train_set, seed=10)
    return run, _train_to_the_end(run)


def _finished_from_checkpoint(train_set, skip=None, loader_generator=True):
    first = _build_run(train_set, seed=10, loader_generator=loader_generator)
    _train_epoch(first)
    _train_epoch(first)
    _train_epoch(first, stop_after=10)  # mid-epoch
    file = _save(first)
    resumed = _build_run(train_set, seed=99, loader_generator=loader_generator)
    _load(file, resumed, skip=skip)
    _train_to_the_end(resumed)
    return resumed


def _identical(run, other):
    pairs = [
        *zip(run[0].parameters(), other[0].parameters(), strict=True),
        *zip(run[3].parameters(), other[3].parameters(), strict=True),
    ]
    return all(torch.equal(a, b) for a, b in pairs)


@pytest.mark.parametrize("skip", [None, *PIECES])
def test_a_run_resumed_mid_epoch_from_a_complete_checkpoint_is_bit_for_bit_the_uninterrupted_one(
    train_set, complete_example, skip
):
    run, _ = complete_example
    resumed = _finished_from_checkpoint(train_set, skip=skip)
    assert _identical(run, resumed) == (skip is None), f"left out: {skip}"


def test_without_its_own_generator_a_dataloader_draws_from_the_global_generator_at_every_epoch_start(
    train_set,
):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    iter(DataLoader(TensorDataset(torch.arange(8)), batch_size=4))
    assert not torch.equal(before, torch.get_rng_state())  # one draw per iterator, even with num_workers=0
    before = torch.get_rng_state()
    iter(DataLoader(TensorDataset(torch.arange(8)), batch_size=4, generator=torch.Generator()))
    assert torch.equal(before, torch.get_rng_state())
    # so a resumed run, which starts one more iterator, drifts away from the uninterrupted one
    resumed = _finished_from_checkpoint(train_set, loader_generator=False)
    uninterrupted = _build_run(train_set, seed=10, loader_generator=False)
    _train_to_the_end(uninterrupted)
    assert not _identical(uninterrupted, resumed)


def test_torch_load_refuses_numpy_generator_state_unless_weights_only_is_false():
    file = io.BytesIO()
    torch.save({"numpy": np.random.get_state()}, file)
    file.seek(0)
    with pytest.raises(Exception, match="[Ww]eights only"):
        torch.load(file)
    file.seek(0)
    assert torch.load(file, weights_only=False)["numpy"][0] == "MT19937"


def test_complete_example_ema_is_far_closer_mid_run_level_at_the_end_and_clipping_acts_only_at_first(
    complete_example,
):
    _, history = complete_example
    excess, excess_ema, clipped = history.T
    assert excess_ema[2] < excess[2] / 5  # after 3 epochs, while η is large
    assert 0.5 < excess_ema[-1] / excess[-1] < 2  # level once the cosine has lowered η
    assert clipped[0] > 0 and clipped[1:].sum() == 0


def test_complete_example_ema_is_closer_mid_run_for_other_seeds_too(train_set):
    closer = 0
    for seed in (20, 21, 22, 23, 24):
        run = _build_run(train_set, seed=seed)
        for _ in range(3):
            _train_epoch(run)
        closer += _excess(run[3].module) < _excess(run[0]) / 2
    assert closer >= 4


# ---------------------------------------------------------------- workers and determinism


class _NoisyIndices(Dataset):
    """Each read returns noise from a generator object the dataset holds (an augmentation)."""

    def __init__(self, n):
        self.n, self.rng = n, np.random.default_rng(0)

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return torch.from_numpy(self.rng.normal(size=2))


def _reseed(worker_id):
    info = get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed)


def _noise(worker_init_fn, epochs, seed=0):
    loader = DataLoader(
        _NoisyIndices(8),
        batch_size=2,
        shuffle=True,
        num_workers=2,
        multiprocessing_context="fork",
        worker_init_fn=worker_init_fn,
        generator=torch.Generator().manual_seed(seed),
    )
    return [list(loader) for _ in range(epochs)]


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_dataloader_workers_duplicate_a_dataset_generator_unless_worker_init_fn_reseeds_it():
    (first, second), (again,) = _noise(None, 2), _noise(None, 1)
    assert torch.equal(first[0], first[1])  # workers 0 and 1 start from the same copy
    assert torch.equal(first[0], second[0])  # and again in every epoch
    (first, second), (again,) = _noise(_reseed, 2), _noise(_reseed, 1)
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], second[0])
    assert all(map(torch.equal, first, again))  # reproducible from the loader's generator
    (other,) = _noise(_reseed, 1, seed=1)
    assert not torch.equal(first[0], other[0])


def test_deterministic_algorithms_fill_torch_empty_with_nan():
    torch.use_deterministic_algorithms(True)
    try:
        assert torch.isnan(torch.empty(3, dtype=torch.float64)).all()
        assert (torch.empty(2, dtype=torch.int64) == torch.iinfo(torch.int64).max).all()
    finally:
        torch.use_deterministic_algorithms(False)
    assert not torch.are_deterministic_algorithms_enabled()


# ---------------------------------------------------------------- the weight-decay exercise


def test_weight_decay_bias_cost_per_unit_theta_star_squared_peaks_at_h_equal_lambda():
    for lam in (0.01, 0.1, 1.0, 10.0):
        h = lam * np.geomspace(1e-3, 1e3, 6001)  # h = λ is the middle point
        cost = 0.5 * h * lam**2 / (h + lam) ** 2
        assert h[np.argmax(cost)] == pytest.approx(lam, rel=1e-12)
        assert cost.max() == pytest.approx(lam / 8, rel=1e-12)


def _bias_shares(lam):
    h, theta_star = (SIGMA**2).numpy(), THETA_STAR.numpy()
    cost = 0.5 * h * (lam * theta_star / (h + lam)) ** 2
    return cost / cost.sum()


@pytest.mark.parametrize("lam", [1e-3, 0.1, 1.0])
def test_weight_decay_gradient_descent_converges_to_the_shrunk_fixed_point_with_the_formula_excess(lam):
    h = SIGMA**2
    theta = nn.Parameter(torch.zeros(5, dtype=torch.float64))
    optimizer = torch.optim.SGD([theta], lr=0.35, weight_decay=lam)
    for _ in range(800):  # (1 − η(h_5 + λ))^800 < 1e-7
        optimizer.zero_grad()
        (0.5 * (h * (theta - THETA_STAR) ** 2).sum()).backward()
        optimizer.step()
    torch.testing.assert_close(theta.detach(), h * THETA_STAR / (h + lam), rtol=1e-6, atol=1e-9)
    excess = (0.5 * h * (theta.detach() - THETA_STAR) ** 2).numpy()
    np.testing.assert_allclose(excess / excess.sum(), _bias_shares(lam), rtol=1e-5)


def test_weight_decay_bias_coordinate_3_at_h_equal_lambda_pays_2_4_percent_and_coordinate_4_pays_56_and_81():
    at_one, at_tenth = _bias_shares(1.0), _bias_shares(0.1)
    assert (SIGMA**2)[2].item() == 1.0  # coordinate 3 has h = λ = 1: the largest cost per unit θ*²
    assert at_one[2] == pytest.approx(0.024, abs=0.0005)
    assert np.argmax(at_one) == np.argmax(at_tenth) == 3
    assert at_one[3] == pytest.approx(0.56, abs=0.005) and at_tenth[3] == pytest.approx(0.81, abs=0.005)


def test_weight_decay_bias_coordinate_4_pays_most_below_lambda_7_4_and_coordinate_2_above():
    lams = np.geomspace(1e-4, 1e3, 2001)
    leaders = np.array([np.argmax(_bias_shares(lam)) for lam in lams])
    assert np.all(leaders[lams < 1.749] == 3) and np.all(leaders[lams > 1.751] == 1)
    # as λ → ∞ each coordinate's cost tends to its whole loss ½ h θ*², the largest for coordinate 2
    h, theta_star = (SIGMA**2).numpy(), THETA_STAR.numpy()
    np.testing.assert_allclose(_bias_shares(1e9), h * theta_star**2 / (h * theta_star**2).sum(), rtol=1e-6)
