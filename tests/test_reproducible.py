"""The process that compiles the kernels and every later process that loads them from Numba's
cache give bitwise-equal results (emlab._compile explains why that needed a helper process)."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from numba.core.errors import TypingError

from emlab import _compile
from emlab._kernels import mixture as mixture_kernels
from test_config import kernels

SCRIPT = textwrap.dedent('''
    import sys
    import numpy as np
    from emlab import GaussianMixture

    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(300, 5)), rng.normal(2.0, 1.5, size=(300, 5))])
    gm = GaussianMixture(3, covariance_type="diag", random_state=0, max_iter=20).fit(X)
    np.savez(sys.argv[1], means=gm.means_, covariances=gm.covariances_, weights=gm.weights_,
             lower_bound=gm.lower_bound_, score_samples=gm.score_samples(X))
''')


def test_every_cached_kernel_is_compiled_by_the_helper():
    if os.environ.get("EMLAB_COMPILE_IN_PROCESS"):
        pytest.skip("EMLAB_COMPILE_IN_PROCESS is set")
    routed = {name: getattr(kernel, "_emlab_compiled_from_cache", False)
              for name, kernel in kernels() if type(kernel._cache).__name__ != "NullCache"}
    assert routed and all(routed.values()), [n for n, r in routed.items() if not r]


def test_compiling_process_and_cached_process_agree_bitwise(tmp_path):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))  # empty: the first run compiles
    env.pop("EMLAB_COMPILE_IN_PROCESS", None)
    outputs = []
    for run in ("compiles", "loads"):
        out = tmp_path / f"{run}.npz"
        done = subprocess.run([sys.executable, str(script), str(out)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs.append(np.load(out))
    assert any((tmp_path / "cache").rglob("*.nbc")), "the first run wrote no cache"
    first, second = outputs
    for name in first.files:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def test_a_call_numba_cannot_type_still_gets_numbas_error():
    # the helper fails to compile it; the kernel is then compiled here and Numba's error raised
    with pytest.raises(TypingError):
        mixture_kernels.log_normalize("not an array", 256, np.zeros(3), np.zeros((3, 2)))
    assert not _compile._server_failed  # a refused call does not switch the helper off


WARM_CHECK = textwrap.dedent('''
    import json
    import numpy as np
    from emlab import GaussianMixture
    from emlab._kernels.mixture import full_step_kernel, scatter_kernel
    from emlab.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    GaussianMixture(3, random_state=0).fit(X)
    print(json.dumps({k.py_func.__name__: [sum(k.stats.cache_hits.values()),
                                           sum(k.stats.cache_misses.values())]
                      for k in (full_step_kernel(4, 0), scatter_kernel(4, 10**9))}))
''')


def _warm_up_then_fit(tmp_path, key, check):
    """Run ``_warm_up(key)`` with an empty cache, then the script ``check`` in a new process
    on that cache; return the kernel statistics (cache hits, misses) it prints."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), EMLAB_COMPILE_IN_PROCESS="1")
    warm = subprocess.run([sys.executable, "-c",
                           f"from emlab._compile import _warm_up; _warm_up({key!r})"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr[-3000:]
    fit = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True,
                         text=True, timeout=600)
    assert fit.returncode == 0, fit.stderr[-3000:]
    return json.loads(fit.stdout.strip().splitlines()[-1])


def test_warm_up_compiles_what_a_first_fit_needs(tmp_path):
    # the background warm-up of GaussianMixture's kernels compiles the very signatures an Iris
    # fit then calls: that fit finds them in the cache (hits) and compiles none (no misses);
    # its first M-step (from k-means) is NumPy's, so it calls no scatter kernel at all
    counts = _warm_up_then_fit(tmp_path, "mixture-full-4-serial-float64", WARM_CHECK)
    assert counts == {"em_step_full_small_serial": [1, 0], "weighted_scatter_small": [0, 0]}, counts


WARM_CHECK_DIAG = textwrap.dedent('''
    import json
    from emlab import GaussianMixture
    from emlab._kernels.mixture import diag_step_kernel
    from emlab.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    k = diag_step_kernel(0)
    print(json.dumps({k.py_func.__name__: [sum(k.stats.cache_hits.values()),
                                           sum(k.stats.cache_misses.values())]}))
''')


def test_diagonal_warm_up_compiles_what_a_first_fit_needs(tmp_path):
    # as above for a diagonal covariance: its kernels' work is n K d (not n K d^2), and the
    # warm-up compiles the serial twin an Iris fit then finds in the cache
    counts = _warm_up_then_fit(tmp_path, "mixture-diag-4-serial-float64", WARM_CHECK_DIAG)
    assert counts == {"em_step_diag_serial": [1, 0]}, counts


WARM_CHECK_HMM = textwrap.dedent('''
    import json
    from emlab import GaussianHMM
    from emlab._kernels.hmm import forward_backward_serial as k
    from emlab.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    GaussianHMM(3, random_state=0).fit(X)
    print(json.dumps({k.py_func.__name__: [sum(k.stats.cache_hits.values()),
                                           sum(k.stats.cache_misses.values())]}))
''')


WARM_CHECK_CATEGORICAL = textwrap.dedent('''
    import json
    import numpy as np
    from emlab import CategoricalHMM
    from emlab._kernels.hmm import forward_backward_serial as k

    X = np.random.default_rng(0).integers(0, 5, size=(300, 1))
    CategoricalHMM(3, random_state=0).fit(X)
    print(json.dumps({k.py_func.__name__: [sum(k.stats.cache_hits.values()),
                                           sum(k.stats.cache_misses.values())]}))
''')


@pytest.mark.parametrize("key, check", [("hmm-serial", WARM_CHECK_HMM),
                                        ("hmm-serial-symbols", WARM_CHECK_CATEGORICAL)])
def test_hmm_warm_up_compiles_what_a_first_fit_needs(tmp_path, key, check):
    # the HMMs' warm-up compiles the forward-backward a first fit on Iris then finds in the
    # cache (150 rows, K = 3: small work, the serial twin); a categorical HMM's fit calls
    # the specialisation that reads per-symbol tables, which its own warm-up compiles
    counts = _warm_up_then_fit(tmp_path, key, check)
    assert counts == {"forward_backward_serial": [1, 0]}, counts


def test_a_call_waits_for_the_warm_up_that_compiles_its_kernel(monkeypatch):
    # a kernel that a running warm-up is compiling is not compiled a second time meanwhile:
    # the call waits for that process (here a real one that sleeps), then reads the cache
    from emlab._kernels.hmm import forward_backward_serial

    key = (forward_backward_serial.py_func.__module__, forward_backward_serial.py_func.__name__)
    monkeypatch.setattr(_compile, "_warming", {})
    assert not _compile._wait_for_warm_up(forward_backward_serial)  # no warm-up: no wait
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
    _compile._warming[key] = sleeper
    start = time.perf_counter()
    assert _compile._wait_for_warm_up(forward_backward_serial)
    assert sleeper.poll() == 0 and time.perf_counter() - start > 0.5
    assert _compile._wait_for_warm_up(forward_backward_serial)  # ended: no wait, True


def test_no_warm_up_when_the_kernels_are_cached(monkeypatch):
    if os.environ.get("EMLAB_COMPILE_IN_PROCESS"):
        pytest.skip("EMLAB_COMPILE_IN_PROCESS is set")
    from emlab import GaussianMixture
    from emlab._kernels.mixture import full_step_kernel

    X = np.random.default_rng(0).normal(size=(40, 3))
    GaussianMixture(2, random_state=0).fit(X)  # its kernels are in the cache now
    monkeypatch.setattr(_compile, "_warm_ups", {})
    _compile.warm_up_mixture("full", (full_step_kernel(3, 0),), 3, 0)
    assert _compile._warm_ups == {"mixture-full-3-serial-float64": None}  # found them, started nothing


def test_read_only_and_writable_x_share_one_specialisation():
    # X reaches the kernels read-only whatever its flags (check_array's view), so a memmap or a
    # frozen array does not compile every kernel a second time; the user's array is untouched
    from emlab import GaussianMixture
    from emlab._kernels.mixture import full_step_kernel

    em_step_full = full_step_kernel(3, 0)  # the serial twin: 300 rows are small work
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    frozen = X.copy()
    frozen.flags.writeable = False
    a = GaussianMixture(2, random_state=0).fit(X)
    before = set(em_step_full.overloads)
    b = GaussianMixture(2, random_state=0).fit(frozen)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert X.flags.writeable  # the caller's flags are the caller's
    assert set(em_step_full.overloads) == before  # the frozen X needed no new specialisation
    assert any(not sig[0].mutable for sig in before)  # the fit of X used the read-only one


def test_every_kernel_cache_is_stamped_with_all_the_kernel_sources():
    # Numba keeps a cached kernel while its own file is unchanged; emlab's kernels are
    # stamped with a hash of every kernel module and _config.py (emlab._compile)
    stamped = {name: (type(kernel._cache._impl.locator).__name__.startswith("Emlab")
                      and kernel._cache._cache_file._source_stamp == _compile.sources_stamp())
               for name, kernel in kernels() if type(kernel._cache).__name__ != "NullCache"}
    assert len(stamped) > 100 and all(stamped.values()), [n for n, s in stamped.items() if not s]


STAMP_CHECK = textwrap.dedent('''
    import json
    from numba import types
    from emlab import _compile
    from emlab._kernels import hmm

    sig = (types.int64, types.int64)
    cached = _compile._in_cache(hmm.n_seq_blocks, sig)
    hmm.n_seq_blocks(10, 4)
    print(json.dumps([cached, _compile._in_cache(hmm.n_seq_blocks, sig)]))
''')


def test_a_change_to_another_kernel_file_invalidates_a_cached_kernel(tmp_path):
    # a copy of the package with its cache in its own tree (as an editable install has it):
    # after an edit to simd.py alone, hmm.py's kernel is no longer taken from the cache
    import shutil
    from pathlib import Path

    package = Path(_compile.__file__).resolve().parent
    shutil.copytree(package, tmp_path / "emlab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    env.pop("NUMBA_CACHE_DIR", None)

    def run():
        done = subprocess.run([sys.executable, "-c", STAMP_CHECK], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    assert run() == [False, True]  # empty cache: compiled, then cached
    assert run() == [True, True]
    simd = tmp_path / "emlab" / "_kernels" / "simd.py"
    simd.write_text(simd.read_text() + "\n# an edit in a file the kernel does not live in\n")
    assert run() == [False, True]  # stale: compiled again
    assert run() == [True, True]
