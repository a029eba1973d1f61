"""Notebook 02's recipes: the paper's recipe first, the comparison's names and labels, the ablation's one-factor
changes, notebook 06's fallback and the profile entries they read. No training."""
from __future__ import annotations

import pytest

from jmlkit.engine import TrainConfig
from jmlkit.engine.optim import make_loss
from jmlkit.experiments import recipes as R
from jmlkit.profiles import regime_settings, PROFILE_NAMES, ablation_settings, sweep_values


@pytest.fixture(scope="module")
def base():
    return TrainConfig.from_profile("smoke")


def changed(a: TrainConfig, b: TrainConfig) -> dict:
    """The fields where two configurations differ: ``{field: (a's, b's)}``."""
    da, db = a.to_dict(), b.to_dict()
    return {k: (da[k], db[k]) for k in da if da[k] != db[k]}


def test_the_comparison_runs_the_papers_recipe_first(base):
    cfgs = R.smoothing_configs(base)
    assert list(cfgs) == ["jml_bls", "ce_hard", "ce_ls", "ce_bls", "sjl_bls", "jml_ls", "lovasz_hard", "dml_bls"]
    recipe = cfgs["jml_bls"]
    assert (recipe.labels, recipe.smoothing, recipe.epsilon, recipe.boundary_kernel, recipe.loss, recipe.loss_kwargs) == (
        "ls", "boundary", 0.5, 3, "ce+jml", {})
    assert "paper's recipe" in R.LABELS["jml_bls"] and "ours" in R.LABELS["jml_ls"]
    assert all(name in R.LABELS for name in cfgs)
    assert sum("paper" in R.LABELS[name] for name in cfgs) == 1  # only the recipe is called the paper's


def test_the_recipe_loss_is_the_papers(base):
    loss = make_loss(R.smoothing_configs(base)["jml_bls"].loss, ignore_index=255)
    assert (loss.ce_weight, loss.region_weight) == (0.25, 0.75)
    options = loss.region.options
    # batch pooling, smooth 1, the default class selection: all classes on soft targets (the paper's)
    assert (options["aggregate"], options["smooth"], options["classes"], options["variant"]) == ("batch", 1.0, None, 1)


def test_the_papers_smoothing_does_not_follow_the_base(base):
    other = base.replace(labels="ls", epsilon=0.2, smoothing="uniform", boundary_kernel=5)
    cfgs = R.smoothing_configs(other, epsilon=0.3)
    for name in ("jml_bls", "ce_bls", "sjl_bls"):
        assert (cfgs[name].smoothing, cfgs[name].epsilon, cfgs[name].boundary_kernel) == ("boundary", 0.5, 3)
    for name in ("ce_ls", "jml_ls"):
        assert (cfgs[name].smoothing, cfgs[name].epsilon) == ("uniform", 0.3)
    assert cfgs["ce_hard"].labels == "hard"


@pytest.mark.parametrize("name, other, fields", [
    ("ce_bls", "jml_bls", {"loss"}),
    ("dml_bls", "jml_bls", {"loss"}),          # the Dice semimetric loss on the paper's smoothing
    ("lovasz_hard", "ce_hard", {"loss"}),      # the Lovász extension: hard labels only
    ("sjl_bls", "jml_bls", {"loss"}),
    ("jml_ls", "jml_bls", {"smoothing", "epsilon"}),
    ("ce_ls", "jml_ls", {"loss"}),
])
def test_the_comparisons_differ_where_their_labels_say(base, name, other, fields):
    cfgs = R.smoothing_configs(base)
    assert set(changed(cfgs[name], cfgs[other])) == fields


def test_each_ablation_is_one_change_of_the_recipe(base):
    large = {"size": 24, "digit_size": [18, 24]}
    cfgs = R.smoothing_ablation_configs(base, epsilon=0.2, large=large)
    recipe = cfgs["jml_bls"]
    assert list(cfgs)[0] == "jml_bls" and recipe == R.smoothing_configs(base)["jml_bls"]
    expected = {
        "jml_bls_uniform": {"smoothing": ("uniform", "boundary")},
        "jml_bls_eps": {"epsilon": (0.2, 0.5)},
        "jml_bls_image": {"loss_kwargs": ({"aggregate": "image"}, {})},
        "jml_bls_present": {"loss_kwargs": ({"classes": "present"}, {})},
        "jml_bls_large": {"dataset_kwargs": ({**base.dataset_kwargs, **large}, base.dataset_kwargs)},
    }
    for name, diff in expected.items():
        assert changed(cfgs[name], recipe) == diff, name
        assert name in R.LABELS
    # the reference on the large data is CE with hard labels there, not a change of the recipe
    assert changed(cfgs["ce_hard_large"], R.smoothing_configs(base)["ce_hard"]) == {
        "dataset_kwargs": ({**base.dataset_kwargs, **large}, base.dataset_kwargs)}
    # and on the ablation's own data it is the comparison's CE run itself (found by hash, never retrained)
    assert cfgs["ce_hard"] == R.smoothing_configs(base)["ce_hard"]


def test_ablation_without_large_data_and_bad_epsilon(base):
    assert list(R.smoothing_ablation_configs(base)) == ["jml_bls", "jml_bls_uniform", "jml_bls_eps", "jml_bls_image",
                                                        "jml_bls_present", "ce_hard"]
    kept = R.smoothing_ablation_configs(base.replace(loss_kwargs={"smooth": 0.5}))["jml_bls_image"].loss_kwargs
    assert kept == {"smooth": 0.5, "aggregate": "image"}
    with pytest.raises(ValueError, match="epsilon"):
        R.smoothing_ablation_configs(base, epsilon=1.5)
    with pytest.raises(ValueError, match="epsilon"):
        R.smoothing_configs(base, epsilon=-0.1)


def test_notebook_06_fallback_starts_with_the_papers_recipe(base):
    cfgs = R.calibration_fallback_configs(base)
    assert tuple(cfgs) == R.CALIBRATION_FALLBACK == ("jml_bls", "ce_hard", "ce_ls", "jml_ls")
    assert (cfgs["jml_bls"].smoothing, cfgs["jml_bls"].epsilon) == ("boundary", 0.5)
    assert {c.epsilon for k, c in cfgs.items() if k in ("ce_ls", "jml_ls")} == {0.1}
    assert changed(cfgs["ce_ls"], cfgs["jml_ls"]) == {"loss": ("ce", "ce+jml")}
    assert all(name in R.LABELS for name in cfgs)


@pytest.mark.parametrize("profile", PROFILE_NAMES)
def test_profiles_hold_the_ablation_and_the_boundary_sweep(profile):
    settings = ablation_settings(profile)
    own = TrainConfig.from_profile(profile).dataset_kwargs
    large = settings["large"]
    if large is None and "large" in regime_settings(profile):  # full: the large regime takes the ablation's place
        large = regime_settings(profile)["large"]["dataset_kwargs"]
    if large is not None:  # quick leaves the large-object pair out (the class's budget)
        # larger digits than the profile's own, one per scene
        assert min(large["digit_size"]) > max(own["digit_size"]) and large["digits_per_scene"] == [1, 1]
    else:
        assert profile == "quick"
    assert 0 < settings["epsilon"] < 0.5 and settings["shares_scenes"] >= 1
    values = sweep_values("epsilon_boundary", profile)
    assert 0.0 in values and 0.5 in values  # no smoothing and the recipe's (reused from the comparison)


def test_every_region_loss_of_the_library_has_a_trained_run_in_notebook_02(base):
    from jmlkit.losses._names import REGION_LOSSES

    trained = {cfg.loss.split("+")[-1] for cfg in R.smoothing_configs(base).values()}
    variants = {"jml1", "jml2"}  # the JML's two written forms: the same loss (tests/test_losses*)
    assert set(REGION_LOSSES) - variants <= trained | {"ce"}
    assert make_loss("ce+lovasz", ignore_index=255).region_weight == 0.75


def test_the_overconfident_regime_is_notebook_02s_only():
    assert list(regime_settings("full")) == ["large", "small"]                    # 03 and 04
    full = regime_settings("full", calibration=True)
    assert list(full) == ["large", "small", "overconfident"]
    over = full["overconfident"]
    assert (over["model"], over["encoder_weights"], over["decoder_lr_mult"]) == ("effnet-teacher", "imagenet", 10.0)
    assert (over["train_limit"], over["epochs"], over["dataset_kwargs"]["size"]) == (250, 60, 32)
    assert regime_settings("full", ["overconfident"]) == {"overconfident": over}
    assert "overconfident" in regime_settings("smoke", calibration=True)
    assert list(regime_settings("quick", calibration=True)) == ["small"]
    with pytest.raises(ValueError, match="overconfident"):
        regime_settings("quick", ["overconfident"])
