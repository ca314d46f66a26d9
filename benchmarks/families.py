"""Component families (:mod:`emlab.families`) against their nearest peers, per EM iteration.

``python -m benchmarks.families [--quick] [--out PATH]`` times, from the same
start and with ``tol`` set so no fit stops early:

* HMMs of a family (:class:`emlab.HMM`) against hmmlearn's class of the same
  model (``PoissonHMM``, ``CategoricalHMM``, ``GMMHMM`` with diagonal
  covariances; both of hmmlearn's implementations, "log" and "scaling"), and
  against emlab's fused class of that model (the generic path's overhead);
* mixtures of a family (:class:`emlab.MixtureModel`) against pomegranate's
  ``GeneralMixtureModel`` of the same distribution when pomegranate is
  installed. pomegranate needs PyTorch (about 2 GB of wheels with their CUDA
  libraries from PyPI), which this project does not install: without it those
  cases report emlab alone and say why the peer was skipped. The Student-t
  mixture has no peer; it is reported beside emlab's Gaussian mixture on the
  same data (the price of the second latent variable).

Seconds per iteration come from differencing fits of two iteration counts
(``benchmarks/timing.py`` explains why), medians over the repeats, libraries
interleaved. Results go to ``benchmarks/results/local/families.json`` unless ``--out`` says
otherwise (the committed run is ``benchmarks/results/families.json``).
"""

import argparse
import gc
import json
import os
import platform
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from . import paths  # noqa: E402


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


def per_iteration(fits, iterations, repeats):
    """``{name: median seconds per iteration}`` by differencing two iteration counts.

    ``fits`` maps a name to ``fit(max_iter)``; each repeat times every library once
    at each count, in alternating order.
    """
    m1, m2 = iterations
    samples = {name: [] for name in fits}
    names = list(fits)
    for fit in fits.values():  # compile and warm up outside the timing
        _quiet(lambda: fit(m1))
    for r in range(repeats):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            seconds = []
            for m in (m1, m2):
                gc.collect()
                begin = time.perf_counter()
                _quiet(lambda: fits[name](m))
                seconds.append(time.perf_counter() - begin)
            samples[name].append((seconds[1] - seconds[0]) / (m2 - m1))
    return {name: {"median": float(np.median(s)), "samples": [float(v) for v in s]}
            for name, s in samples.items()}


# --------------------------------------------------------------------------- HMM cases


def _start(rng, k):
    startprob = np.full(k, 1.0 / k)
    transmat = np.full((k, k), 0.1 / (k - 1))
    np.fill_diagonal(transmat, 0.9)
    return startprob, transmat


def hmm_cases(quick):
    import hmmlearn.hmm as hl

    from emlab import GMMHMM, HMM, CategoricalHMM, PoissonHMM
    from emlab.families import Categorical, Gaussian, Mixture, Poisson

    T = 20_000 if quick else 100_000
    k = 4
    rng = np.random.default_rng(0)
    states = rng.integers(k, size=T)
    startprob, transmat = _start(rng, k)
    cases = []

    # Poisson, d = 4
    rates = rng.uniform(0.5, 10.0, size=(k, 4))
    counts = rng.poisson(rates[states]).astype(np.int64)
    start_rates = rates * rng.uniform(0.7, 1.3, size=rates.shape)

    def emlab_generic(m):
        model = HMM(Poisson(), k, init_params="", max_iter=m, tol=0.0)
        model.startprob_, model.transmat_, model.rates_ = startprob, transmat, start_rates
        return model.fit(counts.astype(float))

    def emlab_fused(m):
        model = PoissonHMM(k, init_params="", max_iter=m, tol=0.0)
        model.startprob_, model.transmat_, model.lambdas_ = startprob, transmat, start_rates
        return model.fit(counts.astype(float))

    def peer(implementation):
        def fit(m):
            model = hl.PoissonHMM(k, init_params="", n_iter=m, tol=-np.inf,
                                  implementation=implementation)
            model.startprob_, model.transmat_, model.lambdas_ = startprob, transmat, start_rates
            return model.fit(counts)
        return fit

    cases.append((f"hmm-poisson-T{T}-d4-K{k}", {
        "emlab HMM(Poisson())": emlab_generic, "emlab PoissonHMM": emlab_fused,
        "hmmlearn PoissonHMM log": peer("log"), "hmmlearn PoissonHMM scaling": peer("scaling")}))

    # categorical, 10 symbols
    emission = rng.dirichlet(np.ones(10), size=k)
    symbols = np.array([rng.choice(10, p=emission[s]) for s in states[:2000]])
    symbols = np.resize(symbols, T)[:, None]
    start_emission = rng.dirichlet(np.ones(10), size=k)

    def cat_generic(m):
        model = HMM(Categorical(), k, init_params="", max_iter=m, tol=0.0)
        model.startprob_, model.transmat_ = startprob, transmat
        model.probabilities_ = start_emission[:, None, :]
        return model.fit(symbols)

    def cat_fused(m):
        model = CategoricalHMM(k, init_params="", max_iter=m, tol=0.0)
        model.startprob_, model.transmat_, model.emissionprob_ = (startprob, transmat,
                                                                  start_emission)
        return model.fit(symbols)

    def cat_peer(implementation):
        def fit(m):
            model = hl.CategoricalHMM(k, init_params="", n_iter=m, tol=-np.inf,
                                      implementation=implementation)
            model.startprob_, model.transmat_, model.emissionprob_ = (startprob, transmat,
                                                                      start_emission)
            return model.fit(symbols)
        return fit

    cases.append((f"hmm-categorical-T{T}-M10-K{k}", {
        "emlab HMM(Categorical())": cat_generic, "emlab CategoricalHMM": cat_fused,
        "hmmlearn CategoricalHMM log": cat_peer("log"),
        "hmmlearn CategoricalHMM scaling": cat_peer("scaling")}))

    # Gaussian mixtures of 3 per state, diagonal, d = 3
    n_mix, d = 3, 3
    means = rng.normal(0.0, 3.0, size=(k, n_mix, d))
    X = means[states, rng.integers(n_mix, size=T)] + rng.normal(size=(T, d))
    weights = np.full((k, n_mix), 1.0 / n_mix)
    covars = np.ones((k, n_mix, d))

    def gmm_generic(m):
        model = HMM(Mixture(Gaussian("diag"), n_mix), k, init_params="", max_iter=m, tol=0.0)
        model.startprob_, model.transmat_, model.mix_weights_ = startprob, transmat, weights
        model.means_, model.covariances_ = means.reshape(-1, d), covars.reshape(-1, d)
        return model.fit(X)

    def gmm_fused(m):
        model = GMMHMM(k, n_mix, covariance_type="diag", init_params="", max_iter=m, tol=0.0)
        model.startprob_, model.transmat_, model.weights_ = startprob, transmat, weights
        model.means_, model.covars_ = means, covars
        return model.fit(X)

    def gmm_peer(implementation):
        def fit(m):
            model = hl.GMMHMM(k, n_mix, covariance_type="diag", init_params="", n_iter=m,
                              tol=-np.inf, implementation=implementation, params="stw")
            model.startprob_, model.transmat_, model.weights_ = startprob, transmat, weights
            model.means_, model.covars_ = means, covars
            return model.fit(X)
        return fit

    cases.append((f"hmm-gmm-diag-T{T}-d{d}-K{k}-M{n_mix}", {
        "emlab HMM(Mixture(Gaussian('diag'), 3))": gmm_generic, "emlab GMMHMM": gmm_fused,
        "hmmlearn GMMHMM log (params='stw')": gmm_peer("log"),
        "hmmlearn GMMHMM scaling (params='stw')": gmm_peer("scaling")}))
    return cases


# --------------------------------------------------------------------------- mixture cases


def _pomegranate():
    try:
        import pomegranate  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        return None, (f"pomegranate not installed ({exc}); it needs PyTorch, which this "
                      f"project does not install (pip install pomegranate pulls about 2 GB of "
                      f"CUDA wheels from PyPI)")
    return pomegranate, None


def mixture_cases(quick):
    from emlab import GaussianMixture, MixtureModel
    from emlab.families import Bernoulli, Gaussian, Poisson, StudentT

    n = 100_000 if quick else 1_000_000
    k = 8
    rng = np.random.default_rng(1)
    z = rng.integers(k, size=n)
    cases = []
    pom, why = _pomegranate()

    rates = rng.uniform(0.5, 10.0, size=(k, 8))
    C = rng.poisson(rates[z]).astype(float)

    def poisson_fit(m):
        model = MixtureModel(Poisson(), k, init_params="", max_iter=m, tol=0.0)
        model.weights_, model.rates_ = np.full(k, 1.0 / k), rates * 1.2
        return model.fit(C)

    fits = {"emlab MixtureModel(Poisson())": poisson_fit}
    if pom is not None:
        fits["pomegranate GeneralMixtureModel(Poisson)"] = _pom_fit(pom, "Poisson", C, k,
                                                                   {"lambdas": rates * 1.2})
    cases.append((f"mixture-poisson-N{n}-d8-K{k}", fits, why))

    p = rng.uniform(0.05, 0.95, size=(k, 64))
    B = (rng.random((n // 5, 64)) < p[z[: n // 5]]).astype(float)

    def bernoulli_fit(m):
        model = MixtureModel(Bernoulli(), k, init_params="", max_iter=m, tol=0.0)
        model.weights_, model.probabilities_ = np.full(k, 1.0 / k), np.clip(p * 1.1, 0.01, 0.99)
        return model.fit(B)

    fits = {"emlab MixtureModel(Bernoulli())": bernoulli_fit}
    if pom is not None:
        fits["pomegranate GeneralMixtureModel(Bernoulli)"] = _pom_fit(
            pom, "Bernoulli", B, k, {"probs": np.clip(p * 1.1, 0.01, 0.99)})
    cases.append((f"mixture-bernoulli-N{n // 5}-d64-K{k}", fits, why))

    means = rng.normal(0.0, 4.0, size=(k, 4))
    G = means[z[: n // 5]] + rng.standard_t(5, size=(n // 5, 4))
    start_means = means + 0.2

    def t_fit(m):
        model = MixtureModel(StudentT("full"), k, init_params="", max_iter=m, tol=0.0)
        model.weights_, model.means_ = np.full(k, 1.0 / k), start_means
        model.covariances_, model.dofs_ = np.stack([np.eye(4)] * k), np.full(k, 10.0)
        return model.fit(G)

    def g_generic(m):
        model = MixtureModel(Gaussian("full"), k, init_params="", max_iter=m, tol=0.0)
        model.weights_, model.means_ = np.full(k, 1.0 / k), start_means
        model.covariances_ = np.stack([np.eye(4)] * k)
        return model.fit(G)

    def g_fused(m):
        return GaussianMixture(k, weights_init=np.full(k, 1.0 / k), means_init=start_means,
                               precisions_init=np.stack([np.eye(4)] * k), max_iter=m,
                               tol=0.0).fit(G)

    cases.append((f"mixture-studentt-full-N{n // 5}-d4-K{k}", {
        "emlab MixtureModel(StudentT('full'))": t_fit,
        "emlab MixtureModel(Gaussian('full'))": g_generic,
        "emlab GaussianMixture (fused)": g_fused}, "no peer fits multivariate t mixtures"))
    return cases


def _pom_fit(pom, name, X, k, params):  # pragma: no cover - needs pomegranate
    import torch
    from pomegranate import distributions
    from pomegranate.gmm import GeneralMixtureModel

    data = torch.tensor(X, dtype=torch.float64)

    def fit(m):
        dists = [getattr(distributions, name)(**{key: torch.tensor(v[j]) for key, v in
                                                 params.items()}) for j in range(k)]
        model = GeneralMixtureModel(dists, max_iter=m, tol=-1.0, init="first-k")
        return model.fit(data)

    return fit


# --------------------------------------------------------------------------- main


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, fewer repeats")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default benchmarks/results/local/families.json)")
    args = parser.parse_args(argv)
    iterations, repeats = ((2, 5), 3) if args.quick else ((3, 8), 5)
    report = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "command": "python -m benchmarks.families" + (" --quick" if args.quick else ""),
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "load_average_start": list(os.getloadavg())},
              "iterations": iterations, "repeats": repeats, "cases": []}
    for name, fits in hmm_cases(args.quick):
        timing = per_iteration(fits, iterations, repeats)
        report["cases"].append({"name": name, "seconds_per_iteration": timing})
        _print(name, timing)
    for name, fits, note in mixture_cases(args.quick):
        timing = per_iteration(fits, iterations, repeats)
        report["cases"].append({"name": name, "seconds_per_iteration": timing, "note": note})
        _print(name, timing, note)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    out = args.out or paths.local_result("families.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


def _print(name, timing, note=None):
    first = next(iter(timing.values()))["median"]
    print(name)
    for lib, t in timing.items():
        print(f"  {lib:45s} {t['median'] * 1e3:9.2f} ms/it  {t['median'] / first:6.2f}x emlab's")
    if note:
        print(f"  ({note})")


if __name__ == "__main__":
    main()
