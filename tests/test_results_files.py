"""The committed result files: ``jmlkit run --results`` (jmlkit.runner.results), the paper's claims tested on them
(jmlkit.experiments.claims), the result tables (jmlkit.experiments.report_tables) and the README blocks written from
them (``python -m jmlkit readme``)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from jmlkit.experiments.claims import CLAIM_COLUMNS, CLAIMS, Claim, claims_markdown, claims_table
from jmlkit.experiments.recipes import label
from jmlkit.experiments.report_tables import ResultGroup, group_markdown, result_groups, results_markdown
from jmlkit.runner.readme import (BEGIN, END, RESULTS_BEGIN, RESULTS_END, block_content, block_source, claims_block,
                                  main_readme, render_readme, results_block)
from jmlkit.runner.results import collect_results, tidy_results
from jmlkit.runner.summary import SUMMARY_COLUMNS

ROOT = Path(__file__).resolve().parents[1]

METRICS = ["mIoU_D", "ECE_D"]


def _runs(configs, seeds, rng, **extra):
    rows = []
    for config in configs:
        for seed in seeds:
            rows.append({"config": config, "seed": seed, **extra, "cached": bool(seed % 2),
                         "run_dir": f"/somewhere/{config}__seed{seed}", "mIoU_D": rng.uniform(0.2, 0.8),
                         "ECE_D": rng.uniform(0.01, 0.2), "train_time_s": rng.uniform(1, 100),
                         "epoch_time_s": rng.uniform(0.1, 2), "Confidence": rng.uniform(0.5, 1.0)})
    return pd.DataFrame(rows)


def _write_batch(root: Path, seed: int) -> Path:
    """A batch folder: 02 with runs.csv (no regime column) and ablation_runs.csv (regimes), 03 failed without
    runs.csv, 04 recorded as failed in run.json, 01 with no tables at all. ``seed`` changes only timings and the
    row order."""
    rng = np.random.default_rng(0)
    main = _runs(["jml_bls", "ce_hard"], [0, 1, 2], rng)
    ablation = pd.concat([_runs(["jml_bls_uniform"], [0, 1], rng, regime=r, epsilon=e)
                          for r in ("small", "large") for e in (0.1, 0.5)], ignore_index=True)
    order = np.random.default_rng(seed)
    for table in (main, ablation):  # what differs between two runs of the same batch: timings and the row order
        for c in ("train_time_s", "epoch_time_s"):
            table[c] = order.uniform(1, 100, len(table))
        table.cached = order.integers(0, 2, len(table)).astype(bool)
    main = main.iloc[order.permutation(len(main))]
    ablation = ablation.iloc[order.permutation(len(ablation))]
    runs = root / f"runs{seed}"
    nb = runs / "02_label_smoothing"
    nb.mkdir(parents=True)
    main.to_csv(nb / "runs.csv", index=False)
    ablation.to_csv(nb / "ablation_runs.csv", index=False)
    (nb / "metrics.json").write_text(json.dumps({"regime.object_share_smoothed": 0.81}))
    pd.DataFrame({"config": ["ce_hard"], "mIoU_D_mean": [0.5], "train_time_s_mean": [order.uniform()]}).to_csv(
        nb / "results.csv", index=False)
    (nb / "run.json").write_text(json.dumps({"status": "ok"}))
    (runs / "03_distillation").mkdir()
    (runs / "03_distillation" / "run.json").write_text(json.dumps({"status": "failed"}))
    failed = runs / "04_semi_supervised"
    failed.mkdir()
    main.to_csv(failed / "runs.csv", index=False)  # written before the notebook failed: not collected
    (failed / "run.json").write_text(json.dumps({"status": "failed"}))
    (runs / "01_jaccard_losses").mkdir()
    (runs / "summary.csv").write_text(",".join(SUMMARY_COLUMNS) + "\n")  # the runner's own (empty) summary
    return runs


def test_collect_results_is_tidy_deterministic_and_skips_unfinished_runs(tmp_path):
    written = collect_results(_write_batch(tmp_path, 1), tmp_path / "a")
    # the tidy table and the headline numbers, no copies of the notebook's other files; the failed notebook and the
    # one without files give nothing
    assert [p.name for p in written] == ["02_label_smoothing.csv", "02_label_smoothing.metrics.json"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [p.name for p in written]
    assert json.loads((tmp_path / "a" / "02_label_smoothing.metrics.json").read_text()) == {
        "regime.object_share_smoothed": 0.81}
    collect_results(_write_batch(tmp_path, 2), tmp_path / "b")
    name = "02_label_smoothing.csv"  # two batches, one file
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    text = (tmp_path / "a" / "02_label_smoothing.csv").read_text()
    assert text.endswith("\n") and "\r" not in text
    table = pd.read_csv(tmp_path / "a" / "02_label_smoothing.csv")
    assert list(table.columns) == ["table", "regime", "config", "seed", "epsilon", "mIoU_D", "ECE_D", "Confidence"]
    assert not [c for c in table.columns if "time" in c or c in ("cached", "run_dir")]
    assert table["table"].tolist() == ["main"] * 6 + ["ablation"] * 8
    main = table[table.table == "main"]
    assert set(main.regime) == {"main"}  # runs.csv without a regime column
    assert list(zip(main.config, main.seed)) == [(c, s) for c in ("ce_hard", "jml_bls") for s in (0, 1, 2)]
    ablation = table[table.table == "ablation"]
    assert list(zip(ablation.regime, ablation.epsilon, ablation.seed)) == [
        (r, e, s) for r in ("large", "small") for s in (0, 1) for e in (0.1, 0.5)]
    # the values are those of the run tables (10 significant digits)
    source = pd.read_csv(tmp_path / "runs1" / "02_label_smoothing" / "runs.csv").sort_values(["config", "seed"])
    np.testing.assert_allclose(main["mIoU_D"].to_numpy(), source["mIoU_D"].to_numpy(), rtol=1e-9)


def test_tidy_results_and_collect_results_check_their_arguments(tmp_path):
    with pytest.raises(ValueError, match="`runs_dir`.*not a folder"):
        collect_results(tmp_path / "missing", tmp_path / "out")
    with pytest.raises(TypeError, match="`results_dir` to be a path"):
        collect_results(tmp_path, 3)
    with pytest.raises(ValueError, match=r"`tables\['main'\]` to have a column 'seed'"):
        tidy_results({"main": pd.DataFrame({"config": ["a"]})})
    with pytest.raises(TypeError, match="`tables` to be a dict"):
        tidy_results([pd.DataFrame()])


def test_jmlkit_run_results_collects_after_the_batch(tmp_path, monkeypatch, capsys):
    import jmlkit.runner.cli as cli

    out = _write_batch(tmp_path, 1)
    (out / "summary.csv").unlink()  # not the runner's: `jmlkit run` would refuse to replace it (exit 2)
    monkeypatch.setattr(cli, "run_notebooks", lambda runs, **kwargs: [])
    code = cli.main_run(["01", "--out", str(out), "--figures", str(tmp_path / "figures"),
                         "--results", str(tmp_path / "results"), "--no-progress"])
    assert code == 0
    assert (tmp_path / "results" / "02_label_smoothing.csv").is_file()
    assert "2 result file(s)" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------------- claims


def _paired(rng, n, shift, noise):
    base = rng.uniform(0.3, 0.7, n)
    return base + shift + rng.normal(0, noise, n), base


def _results(tmp_path: Path) -> Path:
    """02 with a large regime (JML+BLS clearly better mIoU, clearly *worse* ECE) and a small one (noise, no
    sjl_bls); 03 with one seed; 04 split by labelled fraction with method names (the 2 × 2 design: soft + JML
    clearly above hard + JML, not measurably above soft + CE); no 05 file."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    rows = []
    seeds = [0, 1, 2, 3, 4]
    for regime, shift_iou, shift_ece, noise in (("large", 0.05, 0.03, 0.005), ("small", 0.0, 0.0, 0.05)):
        a_iou, b_iou = _paired(rng, 5, shift_iou, noise)
        a_ece, b_ece = _paired(rng, 5, shift_ece, noise)
        sjl = b_iou + 0.1
        for i, s in enumerate(seeds):
            rows.append({"table": "main", "regime": regime, "config": "jml_bls", "seed": s, "mIoU_D": a_iou[i],
                         "ECE_D": a_ece[i]})
            rows.append({"table": "main", "regime": regime, "config": "ce_hard", "seed": s, "mIoU_D": b_iou[i],
                         "ECE_D": b_ece[i]})
            if regime == "large":
                rows.append({"table": "main", "regime": regime, "config": "sjl_bls", "seed": s, "mIoU_D": sjl[i],
                             "ECE_D": 0.1})
            rows.append({"table": "ablation", "regime": regime, "config": "jml_bls", "seed": s + 10,
                         "mIoU_D": 0.0, "ECE_D": 0.0})  # another table: never compared
    pd.DataFrame(rows).to_csv(tmp_path / "02_label_smoothing.csv", index=False)
    pd.DataFrame({"table": "main", "regime": "main", "config": ["kd_jml", "kd_kl"], "seed": [0, 0],
                  "mIoU_D": [0.3, 0.2], "ECE_D": [0.1, 0.2]}).to_csv(tmp_path / "03_distillation.csv", index=False)
    ssl = []
    for fraction in (0.0625, 0.25):
        for method, value in (("pseudo_soft_jml", 0.5), ("pseudo_hard_ce", 0.4), ("labeled_only", 0.3),
                              ("pseudo_hard_jml", 0.45), ("pseudo_soft_ce", 0.5)):
            for s in (0, 1, 2):
                ssl.append({"table": "main", "regime": "main", "config": f"{method}_f{fraction}", "seed": s,
                            "method": method, "fraction": fraction, "mIoU_D": value + 0.01 * s * (fraction == 0.25)
                            + (0.001 * s if method == "pseudo_soft_jml" else 0.0)})
    pd.DataFrame(ssl).to_csv(tmp_path / "04_semi_supervised.csv", index=False)
    return tmp_path


def test_claims_table_matches_scipy_and_gives_each_outcome(tmp_path):
    results = _results(tmp_path)
    table = claims_table(results)
    assert list(table.columns) == list(CLAIM_COLUMNS)
    data = pd.read_csv(results / "02_label_smoothing.csv").query("table == 'main'")
    for regime in ("large", "small"):
        for metric in METRICS:
            rows = data[data.regime == regime]
            a = rows[rows.config == "jml_bls"].sort_values("seed")[metric].to_numpy()
            b = rows[rows.config == "ce_hard"].sort_values("seed")[metric].to_numpy()
            ci = stats.ttest_rel(a, b).confidence_interval(0.95)
            row = table[(table.notebook == "02_label_smoothing") & (table.regime == regime) & (table.metric == metric)
                        & table.claim.str.startswith("JML + boundary")].iloc[0]
            assert row.n == 5
            assert row.delta == pytest.approx(float(np.mean(a - b)), abs=1e-12)
            assert (row.low, row.high) == pytest.approx((ci.low, ci.high), abs=1e-12)
            assert row.difference.startswith(("+", "\u2212", "0")) and "(5 seeds)" in row.difference

    def outcome(claim_start, regime, metric="mIoU_D"):
        rows = table[table.claim.str.startswith(claim_start) & (table.metric == metric)]
        rows = rows[rows.regime.isna()] if regime is None else rows[rows.regime == regime]
        return rows.outcome.tolist()

    assert outcome("JML + boundary", "large") == ["reproduced"]
    assert outcome("JML + boundary", "large", "ECE_D") == ["opposite"]  # ECE up: the paper reports it down
    assert outcome("JML + boundary", "small") == ["inconclusive"]
    assert outcome("JML vs soft Jaccard (SJL) on smoothed", "large") == ["opposite"]
    assert outcome("JML vs soft Jaccard (SJL) on smoothed", "small") == ["not run"]  # no sjl_bls there
    assert outcome("JML-KD", "main") == ["not measurable"]
    assert outcome("JML-KD", "main", "ECE_D") == ["not measurable"]
    assert outcome("JML vs soft Jaccard (SJL) on the data", None) == ["not run"]  # no 05 file
    ssl = table[table.notebook == "04_semi_supervised"]
    names = ("soft pseudo-labels + JML vs hard pseudo-labels + CE, mIoU", "soft vs hard pseudo-labels, both with CE+JML, mIoU",
             "CE+JML vs CE, both on soft pseudo-labels, mIoU")
    assert ssl.claim.tolist() == [f"{name} @ labelled fraction {f}" for name in names for f in ("1/16", "1/4")]
    assert ssl.outcome.tolist() == ["reproduced"] * 4 + ["inconclusive"] * 2  # soft + JML vs soft + CE: 0.1 ± 0.1 points
    assert ssl.delta.tolist() == pytest.approx([0.101, 0.101, 0.051, 0.051, 0.001, 0.001])
    assert set(table.outcome) == {"reproduced", "opposite", "inconclusive", "not measurable", "not run"}
    assert table.loc[table.outcome == "not run", "n"].eq(0).all()


def test_claims_table_without_files_and_its_checks(tmp_path):
    table = claims_table(tmp_path / "nothing here")
    assert len(table) == len(CLAIMS) and set(table.outcome) == {"not run"} and table.regime.isna().all()
    md = claims_markdown(table)
    assert md.splitlines()[0] == "| claim | metric | paper | result |"
    assert all(line.endswith("| not run |") for line in md.splitlines()[2:])
    with pytest.raises(TypeError, match="`results_dir` to be a path"):
        claims_table(None)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="`results_dir` to be a folder"):
        claims_table(tmp_path / "file")
    with pytest.raises(TypeError, match=r"`claims\[0\]` to be a Claim"):
        claims_table(tmp_path, ["x"])
    with pytest.raises(ValueError, match="lacks"):
        claims_markdown(pd.DataFrame({"claim": []}))


def test_claims_markdown_has_one_row_per_claim_and_one_column_per_regime(tmp_path):
    table = claims_table(_results(tmp_path))
    lines = claims_markdown(table).splitlines()
    assert lines[0] == "| claim | metric | paper | main | large | small |"
    assert len(lines) == 2 + len(table.drop_duplicates(["claim", "metric"]))
    row = next(line for line in lines if line.startswith("| JML + boundary label smoothing vs cross-entropy, mIoU |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1:4] == ["mIoU_D", "JML+BLS higher", "—"]
    assert cells[4].endswith("— **reproduced**") and cells[5].endswith("— **inconclusive**")
    assert any("**not measurable** (1 seed)" in line for line in lines)
    assert Claim("c", "02", "a", "b", "A", "ECE_D", False).paper == "A lower"


# --------------------------------------------------------------------------------------------------- README


def test_readme_command_round_trip(tmp_path, capsys):
    results = _results(tmp_path / "results")
    readme = tmp_path / "README.md"
    head, tail = "# title\n\nprose before\n\n", "\nprose after\n"
    readme.write_text(f"{head}{BEGIN}\nstale\n{END}{tail}")
    args = ["--results", str(results), "--readme", str(readme)]
    assert main_readme([*args, "--check"]) == 1
    message = capsys.readouterr().out
    assert len(message.strip().splitlines()) == 1 and "differs" in message
    assert "stale" in readme.read_text()  # --check writes nothing
    assert main_readme(args) == 0
    text = readme.read_text()
    assert text.startswith(head + BEGIN + "\n") and text.endswith(END + tail)
    assert claims_markdown(claims_table(results)) in text
    assert block_source(text) == "results"  # relative to the README
    assert main_readme([*args, "--check"]) == 0
    assert main_readme(args) == 0 and readme.read_text() == text  # idempotent
    readme.write_text("no markers\n")
    with pytest.raises(SystemExit) as err:
        main_readme(args)
    assert err.value.code == 2
    with pytest.raises(SystemExit) as err:
        main_readme(["--results", str(tmp_path / "missing"), "--readme", str(readme)])
    assert err.value.code == 2

# --------------------------------------------------------------------------------------------------- result tables


def _report_results(tmp_path: Path, shuffle: int | None = None) -> Path:
    """Result files as the full profile writes them: 02 (main in two regimes), 02b (ablation), 02c (ε sweep), 03 (one seed),
    04 (method and fraction), 05 (soft-label metrics). ``shuffle`` permutes the rows of each file."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    seeds = [0, 1, 2, 3, 4]
    rows = []
    for regime in ("large", "small"):
        base = rng.uniform(0.4, 0.6, 5)
        for config, shift in (("ce_hard", 0.0), ("jml_bls", 0.03), ("sjl_bls", -0.01)):
            for i, s in enumerate(seeds):
                rows.append({"table": "main", "regime": regime, "config": config, "seed": s,
                             "mIoU_D": base[i] + shift + rng.normal(0, 0.004), "ECE_D": rng.uniform(0.02, 0.1)})
    for config in ("jml_bls", "jml_bls_eps"):
        for s in seeds:
            rows.append({"table": "ablation", "regime": "small", "config": config, "seed": s,
                         "mIoU_D": rng.uniform(0.3, 0.5), "ECE_D": rng.uniform(0.02, 0.1)})
    for s in seeds:  # an ablation regime without the baseline
        rows.append({"table": "ablation", "regime": "large", "config": "jml_bls_large", "seed": s,
                     "mIoU_D": rng.uniform(0.3, 0.5), "ECE_D": rng.uniform(0.02, 0.1)})
    for eps in (0.0, 0.1, 0.5):
        for s in seeds:
            rows.append({"table": "sweep", "regime": "small", "config": f"jml_bls_e{eps:g}", "seed": s,
                         "method": "jml_bls", "epsilon": eps, "mIoU_D": rng.uniform(0.3, 0.5),
                         "ECE_D": rng.uniform(0.02, 0.1)})
    frame = pd.DataFrame(rows)
    files = {"02_label_smoothing": frame[frame["table"] == "main"],  # 02b and 02c hold their runs as their main table
             "02b_smoothing_ablation": frame[frame["table"] == "ablation"].assign(table="main"),
             "02c_smoothing_strength": frame[frame["table"] == "sweep"].assign(table="main")}
    files["03_distillation"] = pd.DataFrame({"table": "main", "regime": "large", "config": ["kd_jml", "hard_ce"],
                                             "seed": [0, 0], "mIoU_D": [0.3, 0.2], "ECE_D": [0.1, 0.2]})
    ssl = []
    for fraction, level in ((0.125, 0.2), (0.5, 0.6)):  # pairing across fractions would give a large gain
        for method, shift in (("labeled_only", 0.0), ("pseudo_hard_ce", 0.01), ("pseudo_soft_jml", -0.02)):
            for s in seeds:
                ssl.append({"table": "main", "regime": "large", "config": f"{method}_f{fraction}", "seed": s,
                            "method": method, "fraction": fraction,
                            "mIoU_D": level + shift + 0.01 * s + (0.0005 * s * s if method != "labeled_only" else 0),
                            "ECE_D": 0.05})
    files["04_semi_supervised"] = pd.DataFrame(ssl)
    soft = []
    for config, mae in (("ce_soft", 0.09), ("jml_soft", 0.07), ("sjl_soft", 0.3)):
        for s in seeds:
            soft.append({"table": "main", "regime": "brain", "config": config, "seed": s,
                         "MAE_band": mae + rng.normal(0, 0.003), "extreme_band": rng.uniform(0, 0.8),
                         "slope_band": 1.0, "soft_mIoU": rng.uniform(0.6, 0.9), "mIoU_D": rng.uniform(0.7, 0.9),
                         "ECE_D": rng.uniform(0.02, 0.1)})
    files["05_soft_labels"] = pd.DataFrame(soft)
    for name, frame in files.items():
        if shuffle is not None:
            frame = frame.iloc[np.random.default_rng(shuffle).permutation(len(frame))]
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
    pd.DataFrame({"config": ["x"], "mIoU_D_mean": [0.5]}).to_csv(tmp_path / "02_label_smoothing_results.csv",
                                                                 index=False)  # a legacy copy: not a table here
    return tmp_path


def _points(x: float, signed: bool) -> str:
    text = f"{100 * x:.1f}"
    if signed and not text.startswith("-"):
        text = "+" + text
    return text.replace("-", "\u2212")


def _expected_difference(a: np.ndarray, b: np.ndarray, higher: bool = True) -> str:
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    gain = ci.low > 0 if higher else ci.high < 0
    loss = ci.high < 0 if higher else ci.low > 0
    verdict = "gain" if gain else "loss" if loss else "no measurable difference"
    return (f"{_points(np.mean(a - b), True)} [{_points(ci.low, False)}, {_points(ci.high, False)}] points "
            f"({len(a)} seeds): {verdict}")


def _cells(group: ResultGroup) -> dict[str, dict[str, str]]:
    return {row[0]: dict(zip(group.columns, row)) for row in group.rows}


def test_result_groups_match_values_computed_by_hand_and_scipy(tmp_path):
    results = _report_results(tmp_path / "results")
    groups = result_groups(results)
    assert [(g.notebook, g.table, g.regime) for g in groups] == [
        ("02_label_smoothing", "main", "large"), ("02_label_smoothing", "main", "small"),
        ("02b_smoothing_ablation", "main", "large"), ("02b_smoothing_ablation", "main", "small"),
        ("02c_smoothing_strength", "main", "small"), ("03_distillation", "main", "large"),
        ("04_semi_supervised", "main", "large"), ("05_soft_labels", "main", "brain")]
    main = groups[0]
    assert main.title == "02 label smoothing — main comparison, regime large"
    assert main.columns == ("config", "label", "n", "mIoU_D (%)", "ECE_D (%)", "Δ mIoU_D vs `ce_hard`")
    assert [r[0] for r in main.rows] == ["`ce_hard`", "`jml_bls`", "`sjl_bls`"]  # the baseline first
    data = pd.read_csv(results / "02_label_smoothing.csv").query("table == 'main' and regime == 'large'")

    def values(config, metric):
        return data[data.config == config].sort_values("seed")[metric].to_numpy()

    cells = _cells(main)
    for config in ("ce_hard", "jml_bls", "sjl_bls"):
        row = cells[f"`{config}`"]
        assert row["label"] == label(config) and row["n"] == "5"
        for metric in METRICS:
            v = values(config, metric)
            assert row[f"{metric} (%)"] == f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}"
    assert cells["`ce_hard`"]["Δ mIoU_D vs `ce_hard`"] == "baseline"
    for config in ("jml_bls", "sjl_bls"):
        assert cells[f"`{config}`"]["Δ mIoU_D vs `ce_hard`"] == _expected_difference(values(config, "mIoU_D"),
                                                                                     values("ce_hard", "mIoU_D"))
    assert cells["`jml_bls`"]["Δ mIoU_D vs `ce_hard`"].endswith(": gain")
    # the ablation: against jml_bls; the regime without jml_bls has no difference
    assert _cells(groups[2])["`jml_bls_large`"]["Δ mIoU_D vs `jml_bls`"] == "—"
    assert _cells(groups[3])["`jml_bls`"]["Δ mIoU_D vs `jml_bls`"] == "baseline"
    assert _cells(groups[3])["`jml_bls_eps`"]["Δ mIoU_D vs `jml_bls`"].startswith(("+", "\u2212", "0"))
    # the sweep: one row per ε, against ε = 0 of the same method
    sweep = groups[4]
    assert sweep.title == "02c label smoothing — ε sweep of the recipe, regime small"
    assert [r[0] for r in sweep.rows] == ["`jml_bls` @ ε = 0", "`jml_bls` @ ε = 0.1", "`jml_bls` @ ε = 0.5"]
    assert [r[-1] for r in sweep.rows][0] == "baseline" and sweep.columns[-1] == "Δ mIoU_D vs ε = 0 (same method)"
    # one seed: no interval
    assert _cells(groups[5])["`kd_jml`"] == {
        "config": "`kd_jml`", "label": label("kd_jml"), "n": "1", "mIoU_D (%)": "30.0", "ECE_D (%)": "10.0",
        "Δ mIoU_D vs `hard_ce`": "not measurable with 1 seed"}
    # 04: method @ fraction, paired with labeled_only at the same fraction
    ssl = groups[6]
    assert [r[0] for r in ssl.rows] == [f"`{m}` @ {f}" for f in ("1/8", "1/2")
                                        for m in ("labeled_only", "pseudo_hard_ce", "pseudo_soft_jml")]
    ssl_data = pd.read_csv(results / "04_semi_supervised.csv")
    column = "Δ mIoU_D vs `labeled_only` (same fraction)"
    for fraction, text in ((0.125, "1/8"), (0.5, "1/2")):
        rows = ssl_data[ssl_data.fraction == fraction]
        b = rows[rows.method == "labeled_only"].sort_values("seed")["mIoU_D"].to_numpy()
        for method in ("pseudo_hard_ce", "pseudo_soft_jml"):
            a = rows[rows.method == method].sort_values("seed")["mIoU_D"].to_numpy()
            assert _cells(ssl)[f"`{method}` @ {text}"][column] == _expected_difference(a, b)
    assert _cells(ssl)["`pseudo_soft_jml` @ 1/8"][column].endswith(": loss")
    assert _cells(ssl)["`pseudo_hard_ce` @ 1/2"][column].endswith(": gain")
    # 05: the soft-label metrics; MAE_band lower is better
    soft = groups[7]
    assert soft.columns == ("config", "label", "n", "MAE_band (%)", "extreme_band (%)", "soft_mIoU (%)", "mIoU_D (%)",
                            "ECE_D (%)", "Δ MAE_band vs `ce_soft`", "Δ mIoU_D vs `ce_soft`")
    soft_data = pd.read_csv(results / "05_soft_labels.csv")
    mae = {c: soft_data[soft_data.config == c].sort_values("seed")["MAE_band"].to_numpy()
           for c in ("ce_soft", "jml_soft", "sjl_soft")}
    assert _cells(soft)["`jml_soft`"]["Δ MAE_band vs `ce_soft`"] == _expected_difference(
        mae["jml_soft"], mae["ce_soft"], higher=False)
    assert _cells(soft)["`jml_soft`"]["Δ MAE_band vs `ce_soft`"].endswith(": gain")
    assert _cells(soft)["`sjl_soft`"]["Δ MAE_band vs `ce_soft`"].endswith(": loss")
    assert _cells(soft)["`ce_soft`"]["MAE_band (%)"] == f"{100 * mae['ce_soft'].mean():.1f} ± " \
                                                      f"{100 * mae['ce_soft'].std(ddof=1):.1f}"


def test_distillation_teacher_and_temperature_tables(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"table": "teacher", "regime": "small", "config": "teacher", "seed": k, "kept": k == 1,
             "mIoU_D": 0.9 + 0.01 * k, "ECE_D": 0.03} for k in range(3)]
    for method in ("kd_jml", "kd_kl"):
        for t in (1.0, 2.0, 4.0):
            rows += [{"table": "temperature", "regime": "small", "config": f"{method}_T{t:g}", "method": method,
                      "temperature": t, "seed": k, "mIoU_D": 0.85 + 0.01 * t + rng.normal(0, 0.005), "ECE_D": 0.05}
                     for k in range(5)]
    pd.DataFrame(rows).to_csv(tmp_path / "03_distillation.csv", index=False)
    groups = {g.table: g for g in result_groups(tmp_path)}
    assert list(groups) == ["teacher", "temperature"]  # TABLE_ORDER
    teacher = groups["teacher"]
    assert [r[0] for r in teacher.rows] == ["`teacher` (not kept)", "`teacher` (kept)"]
    assert _cells(teacher)["`teacher` (kept)"]["mIoU_D (%)"] == "91.0" and teacher.columns[-1] == "Δ mIoU_D vs baseline"
    sweep = groups["temperature"]
    assert sweep.title == "03 distillation — temperature sweep, regime small"
    assert sweep.columns[-1] == "Δ mIoU_D vs T = 1 (same method)"
    cells = _cells(sweep)
    assert cells["`kd_kl` @ T = 1"]["Δ mIoU_D vs T = 1 (same method)"] == "baseline"
    data = pd.DataFrame(rows[3:])
    a = data.query("method == 'kd_jml' and temperature == 4.0").sort_values("seed")["mIoU_D"].to_numpy()
    b = data.query("method == 'kd_jml' and temperature == 1.0").sort_values("seed")["mIoU_D"].to_numpy()
    assert cells["`kd_jml` @ T = 4"]["Δ mIoU_D vs T = 1 (same method)"] == _expected_difference(a, b)


def test_results_markdown_is_deterministic_and_one_table_per_group(tmp_path):
    text = results_markdown(_report_results(tmp_path / "a"))
    assert text == results_markdown(tmp_path / "a")
    assert text == results_markdown(_report_results(tmp_path / "b", shuffle=3))  # the files' row order is irrelevant
    assert text.endswith("|\n")
    groups = result_groups(tmp_path / "a")
    assert text == "\n".join(group_markdown(g) for g in groups)
    lines = text.splitlines()
    assert lines[:4] == ["**02 label smoothing — main comparison, regime large**", "",
                         "| config | label | n | mIoU_D (%) | ECE_D (%) | Δ mIoU_D vs `ce_hard` |",
                         "|---|---|---:|---:|---:|---|"]
    assert sum(line.startswith("**") for line in lines) == len(groups)
    assert "| `ce_hard` | CE, hard labels | 5 | " in text
    assert results_markdown(tmp_path / "nothing").startswith("No result file")
    with pytest.raises(TypeError, match="`results_dir` to be a path"):
        result_groups(3)
    pd.DataFrame({"table": "main", "regime": "r", "config": ["a", "a"], "seed": [0, 0], "mIoU_D": [0.1, 0.2]}).to_csv(
        tmp_path / "03_distillation.csv", index=False)
    with pytest.raises(ValueError, match="one run per seed"):
        result_groups(tmp_path)


def test_readme_command_writes_both_blocks_and_checks_both(tmp_path, capsys):
    results = _report_results(tmp_path / "results")
    readme = tmp_path / "README.md"
    original = f"# title\n\n{BEGIN}\nstale\n{END}\n\nprose\n\n{RESULTS_BEGIN}\n{RESULTS_END}\n\nend\n"
    readme.write_text(original)
    args = ["--results", str(results), "--readme", str(readme)]
    assert main_readme([*args, "--check"]) == 1
    message = capsys.readouterr().out
    assert len(message.strip().splitlines()) == 1 and "differs" in message and "claims and results blocks" in message
    assert readme.read_text() == original  # --check writes nothing
    assert main_readme(args) == 0
    text = readme.read_text()
    assert text.startswith(f"# title\n\n{BEGIN}\n") and f"{END}\n\nprose\n\n{RESULTS_BEGIN}\n" in text
    assert text.endswith(f"{RESULTS_END}\n\nend\n")
    assert block_content(text, "results") == results_block(results, source="results")
    assert block_content(text, "claims") == claims_block(results, source="results")
    assert results_markdown(results) in text
    assert block_source(text, "results") == block_source(text, "claims") == "results"
    assert main_readme([*args, "--check"]) == 0
    assert main_readme(args) == 0 and readme.read_text() == text  # idempotent
    # one block edited by hand: --check names it and fails
    readme.write_text(text.replace("| `ce_hard` | CE, hard labels | 5 |", "| `ce_hard` | CE, hard labels | 4 |", 1))
    capsys.readouterr()
    assert main_readme([*args, "--check"]) == 1
    message = capsys.readouterr().out
    assert "in the results block;" in message
    assert main_readme(args) == 0 and readme.read_text() == text
    # new results: both blocks change
    pd.DataFrame({"table": "main", "regime": "large", "config": ["kd_jml", "kd_kl"] * 2, "seed": [0, 0, 1, 1],
                  "mIoU_D": [0.3, 0.2, 0.35, 0.2], "ECE_D": [0.1, 0.2, 0.1, 0.2]}).to_csv(
        results / "03_distillation.csv", index=False)
    capsys.readouterr()
    assert main_readme([*args, "--check"]) == 1 and "claims and results blocks" in capsys.readouterr().out
    _, expected = render_readme(readme, results)
    assert block_content(expected, "results") == results_block(results, source="results")


def test_readme_command_leaves_a_readme_without_results_markers_alone(tmp_path, capsys):
    results = _report_results(tmp_path / "results")
    readme = tmp_path / "README.md"
    readme.write_text(f"{BEGIN}\n{END}\n")
    args = ["--results", str(results), "--readme", str(readme)]
    assert main_readme(args) == 0
    assert "claims block written" in capsys.readouterr().out
    text = readme.read_text()
    assert RESULTS_BEGIN not in text and text == f"{BEGIN}\n{claims_block(results, source='results')}{END}\n"
    assert main_readme([*args, "--check"]) == 0
    for broken in (f"{BEGIN}\n{END}\n{RESULTS_BEGIN}\n", f"{BEGIN}\n{END}\n{RESULTS_END}\n{RESULTS_BEGIN}\n",
                   f"{RESULTS_BEGIN}\n{RESULTS_END}\n"):  # a marker without its pair, in the wrong order; no claims
        readme.write_text(broken)
        with pytest.raises(SystemExit) as err:
            main_readme(args)
        assert err.value.code == 2


def test_collect_results_keeps_each_notebooks_last_time(tmp_path):
    runs = _write_batch(tmp_path, 1)
    record = {"status": "ok", "duration_s": 12.5, "started": "2026-12-06T10:00:00+00:00",
              "finished": "2026-12-06T10:00:12+00:00"}
    (runs / "02_label_smoothing" / "run.json").write_text(json.dumps(record))
    out = tmp_path / "results"
    pd.DataFrame({"run": ["01_jaccard_losses", "02_label_smoothing"], "status": "ok", "duration_s": [30.0, 999.0],
                  "started": "x", "finished": "y"}).to_csv(out.mkdir() or out / "times.csv", index=False)
    assert "times.csv" in [p.name for p in collect_results(runs, out)]
    times = pd.read_csv(out / "times.csv")
    assert times["run"].tolist() == ["01_jaccard_losses", "02_label_smoothing"]  # 01 not in this batch: kept
    assert times["duration_s"].tolist() == [30.0, 12.5] and times["finished"].iloc[1] == record["finished"]
