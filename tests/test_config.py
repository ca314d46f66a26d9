"""Every kernel takes its numba flags from emlab._config, and the choices hold."""

import importlib
import inspect
import os
import pkgutil
import subprocess
import sys

from numba.core.dispatcher import Dispatcher

import emlab._kernels
from emlab import _config


def kernels():
    for info in pkgutil.iter_modules(emlab._kernels.__path__):
        module = importlib.import_module(f"emlab._kernels.{info.name}")
        for name, obj in vars(module).items():
            if isinstance(obj, Dispatcher) and obj.py_func.__module__ == module.__name__:
                yield f"{info.name}.{name}", obj


def test_there_are_kernels():
    names = {name for name, _ in kernels()}
    assert {"gaussian.log_gaussian_full", "mixture.log_normalize", "mixture.weighted_scatter_small",
            "mixture.em_step_full_small_serial", "kmeans.assign_accumulate"} <= names


def test_every_kernel_uses_the_config_flags():
    for name, kernel in kernels():
        opts = kernel.targetoptions
        cached = type(kernel._cache).__name__ != "NullCache"  # what cache=True installs
        assert cached == _config.CACHE, name
        assert opts.get("fastmath") == _config.FASTMATH, name
        assert opts.get("error_model") == _config.ERROR_MODEL, name
        uses_prange = "prange(" in inspect.getsource(kernel.py_func)
        twin = name.endswith("_serial")  # a serial twin of a parallel kernel (_config.serial_twin)
        assert opts.get("parallel", False) == (_config.PARALLEL and uses_prange and not twin), name


def test_fastmath_keeps_ieee_infinities_and_nans():
    # log-space EM needs log(0) = -inf to behave
    assert not {"nnan", "ninf", "fast"} & set(_config.FASTMATH)



def test_spin_count_is_shortened_unless_the_user_chose_a_wait_policy():
    # libgomp's idle threads spin 20,000 times, not 300,000, before they sleep (issue 16, item 6:
    # measured in benchmarks/busy.py); a user's own GOMP_SPINCOUNT or OMP_WAIT_POLICY wins
    env = {}
    _config.set_spin_count(env)
    assert env == {"GOMP_SPINCOUNT": "20000"}
    for mine in ({"GOMP_SPINCOUNT": "5"}, {"OMP_WAIT_POLICY": "PASSIVE"}):
        env = dict(mine)
        _config.set_spin_count(env)
        assert env == mine
    # import emlab sets it in its own process, before Numba loads libgomp
    code = ("import os, emlab; maps = open('/proc/self/maps').read(); "
            "print(os.environ.get('GOMP_SPINCOUNT'), 'libgomp' in maps)")
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stdout.split() == ["20000", "False"]


VECTOR_WIDTH = ("import llvmlite.binding as llvm\n"
                "{before}\n"
                "import emlab\n"
                "from numba.core import registry\n"
                "features = registry.cpu_target.target_context.codegen()._tm_features\n"
                "print(bool(llvm.get_host_cpu_features().get('avx512f')), "
                "features.endswith(',-prefer-256-bit'))")


def features_after_import(before="", **env):
    """In a new process: whether the CPU has AVX-512, and whether the code generator Numba
    uses after ``before`` and ``import emlab`` has LLVM's 256-bit preference turned off."""
    environ = {k: v for k, v in os.environ.items()
               if k not in ("EMLAB_WIDE_VECTORS", "NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")}
    out = subprocess.run([sys.executable, "-c", VECTOR_WIDTH.format(before=before)],
                         env=dict(environ, **env), capture_output=True, text=True, timeout=300,
                         check=True)
    return [word == "True" for word in out.stdout.split()]


def test_wide_vectors_on_avx512_unless_the_user_chose_otherwise():
    # import emlab lets LLVM use 512-bit vectors where the CPU has them (and changes nothing
    # where it has not); the user's opt-out, Numba CPU settings of their own, or a code
    # generator created before emlab was imported leave LLVM's tuning as it is
    avx512, wide = features_after_import()
    assert wide == avx512
    assert features_after_import(EMLAB_WIDE_VECTORS="0")[1] is False
    assert features_after_import(NUMBA_CPU_NAME="generic")[1] is False
    compiled_first = "import numba\nnumba.njit(lambda x: x + 1)(1)"
    assert features_after_import(compiled_first)[1] is False
