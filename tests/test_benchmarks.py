"""The benchmark suite runs end to end on a tiny case and reports what it claims.

No timing is asserted (speed lives in benchmarks/, not in tests): only that the
pipeline works, that both libraries followed the same trajectory, and that the
numbers it derives are consistent with each other.
"""

import json

import numpy as np
import pytest

from benchmarks.cases import format_count, parse_case_name, useful_flops
from benchmarks.runner import Settings, run


def test_case_names_round_trip():
    case = parse_case_name("gmm-diag-N1e6-d8-K8")
    assert (case.model, case.covariance_type, case.n_samples, case.n_features, case.n_components) == \
        ("gmm", "diag", 10**6, 8, 8)
    assert case.name == "gmm-diag-N1e6-d8-K8" and format_count(250_000) == "25e4"
    assert useful_flops("gmm", "full", 10, 3, 2) == 2 * 10 * 2 * 9
    with pytest.raises(ValueError, match="cannot read the case name"):
        parse_case_name("gmm-N1e6-d8-K8")


def test_a_tiny_run_is_consistent(tmp_path):
    pytest.importorskip("sklearn")
    settings = Settings(cases=[parse_case_name("gmm-full-N3000-d3-K2"), parse_case_name("kmeans-N3000-d3-K2")],
                        repeats=1, iterations=(2, 4), memory=False, cold_start=False, gemm_size=300,
                        bandwidth_mib=16, quick=True)
    results = run(settings)
    json.dumps(results)  # the record is plain JSON
    for case in results["cases"]:
        assert case["status"] == "ok", case
        assert case["trajectory_rel_diff"] <= 1e-6
        ours, theirs = case["libraries"]["emlab"], case["libraries"]["sklearn"]
        assert len(ours["samples"]) == len(theirs["samples"]) == 1
        if ours["seconds_per_iter"] > 0 and theirs["seconds_per_iter"] > 0:
            assert case["speedup"] == pytest.approx(theirs["seconds_per_iter"] / ours["seconds_per_iter"])


# --------------------------------------------------------------------------- hidden Markov models


def test_hmm_case_names_round_trip():
    case = parse_case_name("hmm-gaussian-full-S1000xT1000-d3-K4")
    assert (case.model, case.covariance_type, case.n_samples, case.n_sequences,
            case.sequence_length, case.n_features, case.n_components) == \
        ("hmm-gaussian", "full", 10**6, 1000, 1000, 3, 4)
    assert case.name == "hmm-gaussian-full-S1000xT1000-d3-K4"
    assert case.peers == ("hmmlearn-log", "hmmlearn-scaling")
    assert {t.describe() for t in case.targets} >= {"speedup >= 10",
                                                    "speedup[hmmlearn-scaling] >= 10"}
    single = parse_case_name("hmm-gaussian-full-T1000000-d3-K4")  # any spelling of the count
    assert single.name == "hmm-gaussian-full-T1e6-d3-K4" and single.n_sequences == 1
    assert {t.describe() for t in single.targets} >= {"speedup >= 20",
                                                      "speedup[hmmlearn-scaling] >= 10"}
    categorical = parse_case_name("hmm-categorical-T1e6-M10-K4")
    assert (categorical.n_features, categorical.n_columns, categorical.data_bytes) == \
        (10, 1, 8 * 10**6)
    assert useful_flops("hmm-gaussian", "full", 10, 3, 4) == 6 * 10 * 16 + 2 * 10 * 4 * 9
    assert useful_flops("hmm-categorical", None, 10, 10, 4) == 6 * 10 * 16 + 10 * 4
    for bad in ("hmm-gaussian-T1e6-d3-K4", "hmm-categorical-T1e6-d3-K4",
                "hmm-gaussian-full-T1e6-M3-K4", "hmm-gaussian-full-S0xT10-d3-K4"):
        with pytest.raises(ValueError):
            parse_case_name(bad)


def test_hmm_data_follow_the_true_chain():
    from benchmarks.data import make_data, make_start, sample_states, sequence_lengths, true_hmm

    case = parse_case_name("hmm-gaussian-full-S3xT70000-d3-K4")
    X = make_data(case)
    assert X.shape == (210_000, 3) and X.flags.c_contiguous
    assert list(sequence_lengths(case)) == [70_000] * 3
    assert list(sequence_lengths(case, 150_000)) == [70_000, 70_000, 10_000]
    hmm = true_hmm(case)
    states = sample_states(np.random.default_rng(0), hmm.startprob, hmm.transmat, [200_000])
    counts = np.zeros((4, 4))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    empirical = counts / counts.sum(axis=1, keepdims=True)
    assert np.allclose(empirical, hmm.transmat, atol=0.01)  # the run-at-a-time draw is the chain
    start = make_start(case, X)
    assert np.allclose(start.transmat.sum(axis=1), 1) and start.covariances.shape == (4, 3, 3)
    symbols = make_data(parse_case_name("hmm-categorical-T5000-M6-K3"))
    assert symbols.shape == (5000, 1) and symbols.dtype == np.int64
    assert symbols.min() >= 0 and symbols.max() < 6


def test_a_tiny_hmm_run_is_consistent():
    pytest.importorskip("hmmlearn")
    from benchmarks.plot import make_figure
    from benchmarks.report import format_report

    settings = Settings(cases=[parse_case_name("hmm-gaussian-full-S4xT300-d2-K2"),
                               parse_case_name("hmm-categorical-T2000-M4-K2")],
                        repeats=1, iterations=(2, 4), memory=False, cold_start=False, gemm_size=300,
                        bandwidth_mib=16, quick=True)
    results = run(settings)
    json.dumps(results)
    for case in results["cases"]:
        assert case["status"] == "ok", case
        assert set(case["libraries"]) == {"emlab", "hmmlearn-log", "hmmlearn-scaling"}
        assert set(case["trajectory_rel_diffs"]) == {"hmmlearn-log", "hmmlearn-scaling"}
        assert max(case["trajectory_rel_diffs"].values()) == case["trajectory_rel_diff"] <= 1e-6
        assert not any(case["stopped_early"].values())
        ours = case["libraries"]["emlab"]
        assert len(ours["trajectory"]) == 4
        for peer in ("hmmlearn-log", "hmmlearn-scaling"):
            theirs = case["libraries"][peer]["seconds_per_iter"]
            if ours["seconds_per_iter"] > 0 and theirs > 0:
                assert case["speedups"][peer] == pytest.approx(theirs / ours["seconds_per_iter"])
        assert case["speedup"] == case["speedups"]["hmmlearn-log"]
    report = format_report(results)
    assert "hmmlearn-scaling" in report and "hmm-categorical-T2000-M4-K2" in report
    make_figure(results)  # draws with two peers per case and no roofline point for them


def test_the_memory_worker_runs_an_hmm_case():
    pytest.importorskip("hmmlearn")
    from benchmarks.memory import _case_fields, run_worker

    case = parse_case_name("hmm-gaussian-full-S2xT1500-d2-K2")
    for library in ("emlab", "hmmlearn-scaling"):
        report = run_worker({"case": json.loads(json.dumps(_case_fields(case))),
                             "library": library, "max_iter": 2, "threads": 1})
        assert "growth_mib" in report and report["growth_mib"] >= 0, report


# --------------------------------------------------------------------------- variational mixture


def test_bgmm_case_names_round_trip():
    from benchmarks.cases import default_cases, quick_cases

    case = parse_case_name("bgmm-full-N1e5-d8-K8")
    assert (case.model, case.covariance_type, case.n_samples, case.n_features,
            case.n_components, case.peer) == ("bgmm", "full", 10**5, 8, 8, "sklearn")
    assert case.name == "bgmm-full-N1e5-d8-K8"
    assert {t.describe() for t in case.targets} == {"speedup >= 10", "trajectory_rel_diff <= 1e-06"}
    diag = parse_case_name("bgmm-diag-N1000000-d8-K8")
    assert diag.name == "bgmm-diag-N1e6-d8-K8"
    assert "speedup >= 15" in {t.describe() for t in diag.targets}
    assert {"bgmm-full-N1e5-d8-K8", "bgmm-diag-N1e6-d8-K8"} <= {c.name for c in default_cases()}
    assert any(c.model == "bgmm" for c in quick_cases())
    assert useful_flops("bgmm", "diag", 10, 3, 2) == useful_flops("gmm", "diag", 10, 3, 2)
    for bad in ("bgmm-N1e5-d8-K8", "bgmm-dense-N1e5-d8-K8"):
        with pytest.raises(ValueError, match="cannot read the case name"):
            parse_case_name(bad)


def test_bgmm_start_is_one_hot_kmeans_labels():
    from benchmarks.data import kmeans_labels, make_data, make_start

    case = parse_case_name("bgmm-full-N5000-d3-K3")
    X = make_data(case)
    start = make_start(case, X)
    assert start.resp.shape == (5000, 3) and start.precisions is None
    assert np.array_equal(start.resp.sum(axis=1), np.ones(5000))
    assert set(np.unique(start.resp)) == {0.0, 1.0}
    labels = kmeans_labels(X, start.means)
    assert np.array_equal(start.resp.argmax(axis=1), labels)
    assert np.bincount(labels, minlength=3).min() > 0
    assert np.array_equal(make_start(case, X).resp, start.resp)  # a function of the case


def test_parameters_rel_diff():
    from benchmarks.timing import parameters_rel_diff

    a = {"weights_": np.array([0.25, 0.75]), "means_": np.array([[0.0, 2.0], [1.0, -4.0]])}
    b = {"weights_": np.array([0.25, 0.75 + 1.5e-9]), "means_": np.array([[1e-9, 2.0],
                                                                           [1.0, -4.0]])}
    assert parameters_rel_diff(a, a) == 0.0
    assert parameters_rel_diff(a, b) == pytest.approx(2e-9, rel=1e-3)  # 1.5e-9 / 0.75
    assert parameters_rel_diff(a, {"weights_": a["weights_"]}) == float("inf")
    assert parameters_rel_diff(a, None) == float("inf")


def test_the_quick_bgmm_case_runs_end_to_end():
    """The quick grid's variational case through the whole pipeline, memory workers included."""
    pytest.importorskip("sklearn")
    from benchmarks.cases import quick_cases
    from benchmarks.plot import make_figure
    from benchmarks.report import format_report

    case = next(c for c in quick_cases() if c.model == "bgmm")
    settings = Settings(cases=[case], repeats=1, iterations=(2, 4), memory=True, cold_start=False,
                        gemm_size=300, bandwidth_mib=16, quick=True)
    results = run(settings)
    json.dumps(results)
    (record,) = results["cases"]
    assert record["status"] == "ok", record
    assert record["trajectory_check"] == "parameters"
    assert record["trajectory_rel_diff"] <= 1e-6
    assert not any(record["stopped_early"].values())
    for name in ("emlab", "sklearn"):
        library = record["libraries"][name]
        assert set(library["parameters"]) == {"weights_", "means_", "covariances_"}
        assert len(library["trajectory"]) == 4  # each library's own bound, not compared
        assert library["memory"]["growth_mib"] >= 0, library["memory"]
    assert record["libraries"]["emlab"]["memory"]["checksum"] == record["checksum"]
    assert case.name in format_report(results)
    make_figure(results)


# --------------------------------------------------------------------------- GMMHMM, MultinomialHMM,
# VariationalCategoricalHMM


NEW_HMM_NAMES = ("hmm-gmm-diag-T1e5-d3-K4-M3", "hmm-multinomial-T1e5-M10-K4-N20",
                 "hmm-vcategorical-T1e5-M10-K4")


def test_new_hmm_case_names_round_trip():
    from benchmarks.cases import default_cases, quick_cases

    gmm, multinomial, variational = (parse_case_name(name) for name in NEW_HMM_NAMES)
    assert (gmm.model, gmm.covariance_type, gmm.n_samples, gmm.n_features, gmm.n_components,
            gmm.n_mix) == ("hmm-gmm", "diag", 10**5, 3, 4, 3)
    assert (multinomial.model, multinomial.n_features, multinomial.n_columns,
            multinomial.n_components, multinomial.n_trials) == ("hmm-multinomial", 10, 10, 4, 20)
    assert (variational.model, variational.n_features, variational.n_columns) == \
        ("hmm-vcategorical", 10, 1)
    for case, name in zip((gmm, multinomial, variational), NEW_HMM_NAMES):
        assert case.name == name and case.peers == ("hmmlearn-log", "hmmlearn-scaling")
        # measured only: the trajectory check is the one target
        assert {t.describe() for t in case.targets} == {"trajectory_rel_diff <= 1e-06"}
    assert set(NEW_HMM_NAMES) <= {c.name for c in default_cases()}
    assert {"hmm-gmm", "hmm-multinomial", "hmm-vcategorical"} <= {c.model for c in quick_cases()}
    many = parse_case_name("hmm-gmm-full-S1000xT100-d2-K3-M2")
    assert (many.n_sequences, many.sequence_length, many.n_mix) == (1000, 100, 2)
    assert many.name == "hmm-gmm-full-S1000xT100-d2-K3-M2"
    assert parse_case_name("hmm-multinomial-T100000-M10-K4-N20").name == NEW_HMM_NAMES[1]
    assert useful_flops("hmm-gmm", "diag", 10, 3, 4, 3) == 6 * 10 * 16 + 8 * 10 * 12 * 3
    assert useful_flops("hmm-multinomial", None, 10, 5, 4) == 6 * 10 * 16 + 4 * 10 * 4 * 5
    assert useful_flops("hmm-vcategorical", None, 10, 5, 4) == 6 * 10 * 16 + 10 * 4
    for bad in ("hmm-gmm-T1e5-d3-K4-M3", "hmm-gmm-diag-T1e5-d3-K4", "hmm-multinomial-T1e5-M10-K4",
                "hmm-vcategorical-T1e5-M10-K4-N20", "hmm-gmm-diag-T1e5-d3-K4-M0",
                "hmm-multinomial-T1e5-M10-K4-N0"):
        with pytest.raises(ValueError):
            parse_case_name(bad)


def test_new_hmm_data_and_start():
    from benchmarks.data import make_data, make_start

    counts = make_data(parse_case_name("hmm-multinomial-T3000-M5-K3-N10"))
    assert counts.shape == (3000, 5) and counts.dtype == np.int64
    assert np.array_equal(counts.sum(axis=1), np.full(3000, 10)) and counts.min() >= 0
    case = parse_case_name("hmm-gmm-full-T2000-d3-K2-M3")
    X = make_data(case)
    assert X.shape == (2000, 3) and X.flags.c_contiguous and np.all(np.isfinite(X))
    start = make_start(case, X)
    assert start.weights.shape == (2, 3) and start.means.shape == (2, 3, 3)
    assert start.covariances.shape == (2, 3, 3, 3)
    assert len({tuple(row) for row in start.means.reshape(-1, 3)}) == 6  # distinct rows of X
    symbols = make_data(parse_case_name("hmm-vcategorical-T3000-M6-K3"))
    assert symbols.shape == (3000, 1) and symbols.min() >= 0 and symbols.max() < 6


def test_the_quick_new_hmm_cases_run_end_to_end():
    """The quick grid's GMMHMM, MultinomialHMM and VariationalCategoricalHMM cases through the
    whole pipeline: same trajectory as both hmmlearn implementations, report and figure."""
    pytest.importorskip("hmmlearn")
    from benchmarks.cases import quick_cases
    from benchmarks.plot import make_figure
    from benchmarks.report import format_report

    cases = [c for c in quick_cases() if c.model in ("hmm-gmm", "hmm-multinomial",
                                                     "hmm-vcategorical")]
    assert len(cases) == 3
    settings = Settings(cases=cases, repeats=1, iterations=(2, 4), memory=False,
                        cold_start=False, gemm_size=300, bandwidth_mib=16, quick=True)
    results = run(settings)
    json.dumps(results)
    for case, record in zip(cases, results["cases"]):
        assert record["status"] == "ok", record
        assert set(record["libraries"]) == {"emlab", "hmmlearn-log", "hmmlearn-scaling"}
        diffs = record["trajectory_rel_diffs"]
        assert max(diffs.values()) == record["trajectory_rel_diff"] <= 1e-6
        assert not any(record["stopped_early"].values())
        assert len(record["libraries"]["emlab"]["trajectory"]) == 4
        for library in record["libraries"].values():  # hmmlearn's MultinomialHMM notice dropped
            assert not any("undergone" in w for w in library["warnings"]), library["warnings"]
    report = format_report(results)
    assert all(case.name in report for case in cases)
    make_figure(results)


def test_the_memory_worker_runs_the_new_hmm_cases():
    pytest.importorskip("hmmlearn")
    from benchmarks.memory import _case_fields, run_worker

    for name, library in (("hmm-gmm-diag-S2xT1500-d2-K2-M2", "emlab"),
                          ("hmm-multinomial-T2500-M4-K2-N5", "hmmlearn-log"),
                          ("hmm-vcategorical-T2500-M4-K2", "emlab")):
        case = parse_case_name(name)
        report = run_worker({"case": json.loads(json.dumps(_case_fields(case))),
                             "library": library, "max_iter": 2, "threads": 1})
        assert "growth_mib" in report and report["growth_mib"] >= 0, report


# --------------------------------------------------------------------------- VariationalGaussianHMM


def test_vgaussian_case_names_round_trip():
    from benchmarks.cases import default_cases, quick_cases

    case = parse_case_name("hmm-vgaussian-full-T1e5-d3-K4")
    assert (case.model, case.covariance_type, case.n_samples, case.n_features, case.n_columns,
            case.n_components, case.separation) == ("hmm-vgaussian", "full", 10**5, 3, 3, 4, 4.0)
    assert case.name == "hmm-vgaussian-full-T1e5-d3-K4"
    assert case.peers == ("hmmlearn-log", "hmmlearn-scaling")
    assert {t.describe() for t in case.targets} == {"trajectory_rel_diff <= 1e-06"}
    assert case.name in {c.name for c in default_cases()}
    assert "hmm-vgaussian" in {c.model for c in quick_cases()}
    many = parse_case_name("hmm-vgaussian-tied-S1000xT100-d2-K3")
    assert (many.n_sequences, many.sequence_length, many.covariance_type) == (1000, 100, "tied")
    assert many.name == "hmm-vgaussian-tied-S1000xT100-d2-K3"
    # the Gaussian HMM's flop count, and its parsing unchanged
    assert useful_flops("hmm-vgaussian", "full", 10, 3, 4) == \
        useful_flops("hmm-gaussian", "full", 10, 3, 4) == 6 * 10 * 16 + 2 * 10 * 4 * 9
    assert parse_case_name("hmm-gaussian-full-T1e5-d3-K4").model == "hmm-gaussian"
    for bad in ("hmm-vgaussian-T1e5-d3-K4", "hmm-vgaussian-full-T1e5-M3-K4",
                "hmm-vgaussian-full-T1e5-d3-K4-M3"):
        with pytest.raises(ValueError):
            parse_case_name(bad)


def test_vgaussian_data_and_start_are_the_gaussian_cases():
    from benchmarks.data import make_data, make_start
    from benchmarks.peers import VGAUSSIAN_ATTRIBUTES, vhmm_start

    for ct in ("full", "tied", "diag", "spherical"):
        gaussian = parse_case_name(f"hmm-gaussian-{ct}-T2000-d3-K2")
        variational = parse_case_name(f"hmm-vgaussian-{ct}-T2000-d3-K2")
        X = make_data(variational)
        np.testing.assert_array_equal(X, make_data(gaussian))
        start = make_start(variational, X)
        np.testing.assert_array_equal(start.means, make_start(gaussian, X).means)
        attributes = vhmm_start(variational, start)
        assert set(attributes) == set(VGAUSSIAN_ATTRIBUTES)
        dof = np.asarray(attributes["dof_posterior_"], dtype=np.float64)
        if ct != "tied":  # one per state
            dof = dof.reshape((-1,) + (1,) * (start.covariances.ndim - 1))
        # the scales' posterior mean is the start's covariances
        np.testing.assert_allclose(attributes["scale_posterior_"] / dof, start.covariances,
                                   rtol=1e-12)


def test_the_quick_vgaussian_cases_run_end_to_end():
    """VariationalGaussianHMM against both hmmlearn implementations, every covariance type:
    the same ELBO trajectory, report and figure; and the memory worker."""
    pytest.importorskip("hmmlearn")
    from benchmarks.memory import _case_fields, run_worker
    from benchmarks.plot import make_figure
    from benchmarks.report import format_report

    cases = [parse_case_name(f"hmm-vgaussian-{ct}-S4xT500-d2-K3")
             for ct in ("full", "tied", "diag", "spherical")]
    settings = Settings(cases=cases, repeats=1, iterations=(2, 4), memory=False,
                        cold_start=False, gemm_size=300, bandwidth_mib=16, quick=True)
    results = run(settings)
    json.dumps(results)
    for case, record in zip(cases, results["cases"]):
        assert record["status"] == "ok", record
        assert set(record["libraries"]) == {"emlab", "hmmlearn-log", "hmmlearn-scaling"}
        assert max(record["trajectory_rel_diffs"].values()) == record["trajectory_rel_diff"] <= 1e-6
        assert not any(record["stopped_early"].values())
        for library in record["libraries"].values():
            assert len(library["trajectory"]) == 4 and not library["warnings"], library
    report = format_report(results)
    assert all(case.name in report for case in cases)
    make_figure(results)
    report = run_worker({"case": json.loads(json.dumps(_case_fields(cases[1]))),
                         "library": "emlab", "max_iter": 2, "threads": 1})
    assert "growth_mib" in report and report["growth_mib"] >= 0, report


# --------------------------------------------------------------------------- float32 against float64


def test_the_precision_benchmark_compares_the_same_fit_in_both_precisions():
    from benchmarks import precision

    case = parse_case_name("gmm-full-N3000-d8-K3")
    X64, start = precision._data(case, np.float64)
    X32 = X64.astype(np.float32)
    err = precision.error(case, start, X64, X32, iterations=5)
    json.dumps(err)
    assert err["dtypes"] == ["float32", "float64"]
    assert abs(err["log_likelihood_diff"]) < 1e-5 * abs(err["log_likelihood_float64"])
    assert 0.0 < err["means_rel"] < 1e-4  # float32 arithmetic: close, and not the same numbers
    times = precision.speed(case, start, {"float64": X64, "float32": X32}, repeats=1)
    assert set(times) == {"float64", "float32"} and all(len(s) == 1 for _, s in times.values())
    # the memory worker, a process of its own, holds X in the precision asked for
    mem = precision.memory("gmm-diag-N3000-d8-K2", "float32", max_iter=2)
    assert mem["data_bytes"] == 3000 * 8 * 4 and mem["growth_bytes"] >= 0


def test_the_intel_figures_the_readmes_quote_are_the_committed_results():
    # README and benchmarks/README quote the latest Intel runs (results/xeon.json, the whole
    # grid, and results/peers-xeon.json, the oneDAL and CategoricalHMM cases) in prose; the
    # book's chapter 11 checks only the AMD files, so the quoted figures are checked here
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    results = root / "benchmarks" / "results"
    readme = " ".join((root / "README.md").read_text().split())
    bench_readme = " ".join((root / "benchmarks" / "README.md").read_text().split())
    order = ["gmm-full-N1e6-d2-K3", "gmm-full-N1e6-d8-K8", "gmm-diag-N1e6-d8-K8",
             "gmm-full-N2e5-d32-K16"]

    def figures(name):
        run = json.loads((results / name).read_text())
        cases = {case["name"]: case for case in run["cases"]}
        ratios = [f"{cases[c]['speedups']['onedal']:.2f}x" for c in order]
        emlab = [f"{cases[c]['libraries']['emlab']['seconds_per_iter'] * 1e3:#.3g}"
                 for c in order]
        shares = [f"{round(cases[c]['limit_fraction'] * 100)}%" for c in order]
        hmm = cases["hmm-categorical-T1e6-M10-K4"]["speedups"]["hmmlearn-scaling"]
        return run, ratios, emlab, shares, f"{hmm:.3g}x"

    run, ratios, emlab, shares, hmm = figures("xeon.json")
    assert run["machine"]["emlab_git"]["commit"].startswith("9bb0152")
    assert f"GEMM {run['limit_rates']['gflops']:.1f} GFLOP/s" in readme
    assert f"passes {run['summary']['PASS']} of {sum(run['summary'].values())} targets" in readme
    assert (f"all four oneDAL ratios: {ratios[0]}, {ratios[1]}, {ratios[2]} (diag) and "
            f"{ratios[3]} (emlab {emlab[0]}, {emlab[1]}, {emlab[2]} and {emlab[3]} ms") in readme
    assert f"{shares[0]}, {shares[1]}, {shares[2]} and {shares[3]} of the limit" in readme
    assert f"CategoricalHMM {hmm} hmmlearn" in readme and f"CategoricalHMM at {hmm}" in bench_readme
    assert (f"emlab {emlab[0]}, {emlab[1]}, {emlab[2]} and {emlab[3]} ms: {ratios[0]}, "
            f"{ratios[1]}, {ratios[2]} and {ratios[3]}") in bench_readme

    run, ratios, emlab, shares, hmm = figures("peers-xeon.json")
    assert run["machine"]["emlab_git"]["commit"].startswith("408dead")
    assert f"gave {', '.join(ratios)} and CategoricalHMM {hmm})" in readme
    assert (f"oneDAL / emlab {ratios[0]}, {ratios[1]}, {ratios[2]} and {ratios[3]} (emlab "
            f"{emlab[0]}, {emlab[1]}, {emlab[2]} and {emlab[3]} ms") in bench_readme
    assert f"{shares[0]}, {shares[1]}, {shares[2]} and {shares[3]} of the limit" in bench_readme
    assert f"CategoricalHMM {hmm} hmmlearn" in bench_readme

    # the grid rerun of 2026-12-02 01:26, in the machine's slowest period (not xeon.json)
    run, ratios, emlab, shares, hmm = figures("xeon-2026-12-02.json")
    assert run["machine"]["emlab_git"]["commit"].startswith("9396067")
    gemm = f"GEMM {run['limit_rates']['gflops']:.1f} GFLOP/s"
    assert f"emlab at 9396067; {gemm}" in readme and f"slowest yet ({gemm}" in bench_readme
    assert (f"passed {run['summary']['PASS']} of {sum(run['summary'].values())} targets, with "
            f"oneDAL / emlab {ratios[0]}, {ratios[1]}, {ratios[2]} (diag, under 3x) and "
            f"{ratios[3]} and CategoricalHMM {hmm} (under 10x)") in readme
    assert (f"{run['summary']['PASS']} of {sum(run['summary'].values())} targets; oneDAL / emlab "
            f"{ratios[0]}, {ratios[1]}, {ratios[2]} and {ratios[3]} (emlab {emlab[0]}, "
            f"{emlab[1]}, {emlab[2]} and {emlab[3]} ms") in bench_readme
    assert (f"{shares[0]}, {shares[1]}, {shares[2]} and {shares[3]} of the limit; CategoricalHMM "
            f"{hmm} hmmlearn") in bench_readme
    first_fit = run["cold_start"]["emlab"]["empty_cache"]["fit_s"]
    assert f"{first_fit:.2f} s in the grid run of 2026-12-02 01:26" in readme
    assert f"first fit {first_fit:.2f} s (PASS)" in bench_readme

    # the three HMM cases after the four-lane recursions (results/hmm-xeon.json)
    run = json.loads((results / "hmm-xeon.json").read_text())
    assert run["machine"]["emlab_git"]["commit"].startswith("53e8360")
    cases = {case["name"]: case for case in run["cases"]}
    cat, one, many = (cases[n] for n in ("hmm-categorical-T1e6-M10-K4",
                                          "hmm-gaussian-full-T1e6-d3-K4",
                                          "hmm-gaussian-full-S1000xT1000-d3-K4"))

    def seconds(case, lib):
        return case["libraries"][lib]["seconds_per_iter"]

    def ratio(case, lib="hmmlearn-scaling"):
        return case["speedups"][lib]

    assert (f"| {seconds(cat, 'emlab'):.4f} s | {seconds(cat, 'hmmlearn-log'):.3f} s | "
            f"{seconds(cat, 'hmmlearn-scaling'):.3f} s | {ratio(cat, 'hmmlearn-log'):.1f}x / "
            f"{ratio(cat):.1f}x (`hmm-xeon.json` of {run['created'][:10]} "
            f"{run['created'][11:16]}, commit 53e8360") in readme
    assert (f"CategoricalHMM {ratio(cat):.1f}x hmmlearn \"scaling\"; the Gaussian HMMs "
            f"{ratio(one):.1f}x and {ratio(many):.1f}x") in readme
    assert (f"CategoricalHMM {seconds(cat, 'emlab') * 1e3:.1f} ms, {ratio(cat):.1f}x hmmlearn "
            f"\"scaling\" ({seconds(cat, 'hmmlearn-scaling') * 1e3:.0f} ms); GaussianHMM one "
            f"sequence {seconds(one, 'emlab') * 1e3:.1f} ms ({ratio(one):.1f}x), 1,000 sequences "
            f"{seconds(many, 'emlab') * 1e3:.1f} ms ({ratio(many):.1f}x)") in bench_readme
    assert f"All {run['summary']['PASS']} targets pass" in bench_readme and not run["summary"]["FAIL"]


# --------------------------------------------------------------------------- where runs write


def test_a_run_writes_the_committed_results_only_when_told_to(tmp_path, monkeypatch, capsys):
    """``make bench`` on any machine leaves the committed runs, which the book checks figure by
    figure, as they are: every entry point writes to benchmarks/results/local/ (git-ignored)
    unless ``--out`` names a file."""
    import subprocess
    from pathlib import Path

    from benchmarks import busy, cli, experts, families, paths, precision, scale

    repo = Path(__file__).resolve().parent.parent
    if subprocess.run(["git", "rev-parse"], cwd=repo, capture_output=True).returncode != 0:
        pytest.skip("not a git checkout")
    assert paths.RESULTS == repo / "benchmarks" / "results"
    ignored = subprocess.run(["git", "check-ignore", "-q", str(paths.LOCAL / "latest.json")],
                             cwd=repo)
    assert ignored.returncode == 0, "benchmarks/results/local/ must be git-ignored"
    tracked = set(subprocess.run(["git", "ls-files", "benchmarks/results"], cwd=repo,
                                 capture_output=True, text=True, check=True).stdout.split())
    read_by_the_book = {"latest.json", "busy.json", "precision.json", "scale.json"}
    assert {f"benchmarks/results/{name}" for name in read_by_the_book} <= tracked

    committed = {p: p.read_bytes() for p in paths.RESULTS.glob("*.json")}
    monkeypatch.setattr(paths, "LOCAL", tmp_path / "local")
    # a real grid run of one tiny case, without --out, as make bench runs it
    assert cli.main(["--cases", "gmm-full-N3000-d3-K2", "--repeats", "1", "--iterations", "2",
                     "3", "--gemm-size", "200", "--no-memory", "--no-cold-start", "--no-peer",
                     "--no-install"]) == 0
    assert json.loads((tmp_path / "local" / "latest.json").read_text())["cases"]
    assert {p: p.read_bytes() for p in paths.RESULTS.glob("*.json")} == committed
    out, plot = cli.default_outputs(cli.build_parser().parse_args(["--quick"]))
    assert (out, plot) == (tmp_path / "local" / "quick.json", tmp_path / "local" / "quick.png")
    named = tmp_path / "named.json"
    assert cli.default_outputs(cli.build_parser().parse_args(["--out", str(named)])) == (
        named, tmp_path / "named.png")
    # the other entry points make bench runs, and the scale-out benchmark
    for module, name in ((busy, "busy.json"), (precision, "precision.json"),
                         (scale, "scale.json")):
        assert module.output_path(module.build_parser().parse_args([])) == (
            tmp_path / "local" / name)
        assert module.output_path(module.build_parser().parse_args(["--out", str(named)])) in (
            named, str(named))
    assert scale.output_path(scale.build_parser().parse_args(["--quick"])) == (
        tmp_path / "local" / "quick-scale.json")
    for module in (busy, precision):
        assert module.output_path(module.build_parser().parse_args(["--quick"])) is None
    for module in (families, experts):  # run by hand; their defaults as their help states them
        with pytest.raises(SystemExit):
            module.main(["--help"])
        assert "results/local/" in capsys.readouterr().out
