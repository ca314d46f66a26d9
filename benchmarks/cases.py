"""The benchmark grid: cases, their names, their targets and their useful flop counts.

A case is one problem size for one model, e.g. ``gmm-full-N1e6-d8-K8``: a
Gaussian mixture with full covariances, 10**6 samples, 8 features and 8
components. Names can be parsed back (:func:`parse_case_name`), so any size can
be asked for on the command line, not only those in the grids.
"""

import re
from dataclasses import dataclass, field

MODELS = ("gmm", "kmeans")
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")

#: Relative difference of the two libraries' trajectories above which a case is flagged.
TRAJECTORY_RTOL = 1e-6


@dataclass(frozen=True)
class Target:
    """A goal for one metric of a case.

    Parameters
    ----------
    metric : {'speedup', 'gemm_fraction', 'memory_ratio', 'trajectory_rel_diff'}
        The name of the case's metric (see :func:`benchmarks.report.case_metrics`).
    op : {'>=', '<='}
        How the metric compares with ``threshold`` when the target is met.
    threshold : float
    """

    metric: str
    op: str
    threshold: float

    def met_by(self, value):
        """True, False, or None when ``value`` is missing (not measured)."""
        if value is None or value != value:  # None or NaN
            return None
        return value >= self.threshold if self.op == ">=" else value <= self.threshold

    def describe(self):
        """Short text such as ``'speedup >= 40'``."""
        return f"{self.metric} {self.op} {self.threshold:g}"


TRAJECTORY_TARGET = Target("trajectory_rel_diff", "<=", TRAJECTORY_RTOL)


@dataclass(frozen=True)
class Case:
    """One problem of the grid.

    Parameters
    ----------
    model : {'gmm', 'kmeans'}
    n_samples, n_features, n_components : int
    covariance_type : {'full', 'tied', 'diag', 'spherical'} or None
        For ``model='gmm'`` only.
    peer : str
        The library emlab is compared with (a key of :data:`benchmarks.peers.LIBRARIES`).
    separation : float
        Expected distance between two component means of the generated data,
        in units of the components' standard deviations.
    seed : int
        Seeds the data and the starting parameters.
    targets : tuple of Target
    """

    model: str
    n_samples: int
    n_features: int
    n_components: int
    covariance_type: str = None
    peer: str = "sklearn"
    separation: float = 5.0
    seed: int = 0
    targets: tuple = field(default=(), compare=False)

    @property
    def name(self):
        """E.g. ``'gmm-full-N1e6-d8-K8'`` or ``'kmeans-N1e6-d8-K8'``."""
        kind = f"gmm-{self.covariance_type}" if self.model == "gmm" else self.model
        return f"{kind}-N{format_count(self.n_samples)}-d{self.n_features}-K{self.n_components}"

    @property
    def useful_flops(self):
        """Floating-point operations one iteration needs at least; see :func:`useful_flops`."""
        return useful_flops(self.model, self.covariance_type, self.n_samples,
                            self.n_features, self.n_components)

    @property
    def data_bytes(self):
        """Size of the data in bytes (float64)."""
        return 8 * self.n_samples * self.n_features

    @property
    def arithmetic_intensity(self):
        """Useful flops per byte of data read, if X is read once per iteration."""
        return self.useful_flops / self.data_bytes


def useful_flops(model, covariance_type, n, d, k):
    """Leading-order flop count of one EM (or Lloyd) iteration, the same for every library.

    An FMA counts as two flops. For a Gaussian mixture the E-step evaluates a
    quadratic form per (sample, component) and the M-step accumulates the
    weighted second moments:

    ==========  =====================  ================================================
    model       flops per iteration    where they go
    ==========  =====================  ================================================
    full        2 N K d^2              triangular solve d^2 + symmetric rank-1 update d^2
    tied        2 N d^2 + 5 N K d      one shared transform d^2 + X^T X d^2; 5 d per (i, k)
    diag        8 N K d                4 d in the E-step and 4 d in the M-step per (i, k)
    spherical   5 N K d                3 d in the E-step and 2 d in the M-step per (i, k)
    k-means     3 N K d                squared distance to every centre per (i, k)
    ==========  =====================  ================================================

    Only ``full`` (the count the issue fixes) is compared with the GEMM rate by
    a target; the others give the rates in the plot.
    """
    if model == "kmeans":
        return 3 * n * k * d
    counts = {
        "full": 2 * n * k * d * d,
        "tied": 2 * n * d * d + 5 * n * k * d,
        "diag": 8 * n * k * d,
        "spherical": 5 * n * k * d,
    }
    return counts[covariance_type]


def format_count(n):
    """``1000000 -> '1e6'``, ``200000 -> '2e5'``, ``150 -> '150'``.

    Examples
    --------
    >>> format_count(10**6), format_count(200_000), format_count(150), format_count(25_000)
    ('1e6', '2e5', '150', '25e3')
    """
    if n < 1000:
        return str(n)
    exponent = 0
    mantissa = n
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    return f"{mantissa}e{exponent}" if exponent >= 3 else str(n)


_NAME = re.compile(
    r"^(?P<model>gmm|kmeans)(?:-(?P<cov>full|tied|diag|spherical))?"
    r"-N(?P<n>\d+(?:e\d+)?)-d(?P<d>\d+)-K(?P<k>\d+)$"
)


def parse_case_name(name):
    """The :class:`Case` a name such as ``'gmm-diag-N1e6-d8-K8'`` describes.

    Targets are attached when the name is one of :func:`default_cases`.

    Raises
    ------
    ValueError
        If the name does not follow the pattern.
    """
    match = _NAME.match(name)
    if match is None or (match["model"] == "gmm") != (match["cov"] is not None):
        raise ValueError(
            f"cannot read the case name {name!r}; expected e.g. 'gmm-full-N1e6-d8-K8' "
            f"(covariance type one of {COVARIANCE_TYPES}) or 'kmeans-N1e6-d8-K8'."
        )
    mantissa, _, exponent = match["n"].partition("e")
    n = int(mantissa) * 10 ** int(exponent or 0)
    for known in default_cases() + quick_cases():
        if known.name == name:
            return known
    if match["model"] == "kmeans":
        return kmeans_case(n, int(match["d"]), int(match["k"]))
    return gmm_case(match["cov"], n, int(match["d"]), int(match["k"]))


def gmm_case(covariance_type, n, d, k, *, speedup=None, gemm_fraction=None, memory=True):
    """A Gaussian-mixture case with its targets (scikit-learn as the peer)."""
    targets = [TRAJECTORY_TARGET]
    if speedup is not None:
        targets.append(Target("speedup", ">=", speedup))
    if gemm_fraction is not None:
        targets.append(Target("gemm_fraction", ">=", gemm_fraction))
    if memory:
        targets.append(Target("memory_ratio", "<=", 0.10))
    return Case("gmm", n, d, k, covariance_type, targets=tuple(targets))


def kmeans_case(n, d, k, *, speedup=None):
    """A k-means case. The data overlap more (separation 2), so Lloyd's
    iterations do not stop early."""
    targets = [TRAJECTORY_TARGET]
    if speedup is not None:
        targets.append(Target("speedup", ">=", speedup))
    return Case("kmeans", n, d, k, separation=2.0, targets=tuple(targets))


def default_cases():
    """The full grid: every size the issue sets a target at, and tied/spherical for completeness."""
    return [
        gmm_case("full", 10**6, 2, 3, speedup=40),
        gmm_case("full", 10**6, 8, 8, speedup=25),
        gmm_case("full", 2 * 10**5, 32, 16, speedup=12, gemm_fraction=0.5),
        gmm_case("full", 10**5, 64, 8, speedup=8, gemm_fraction=0.5),
        gmm_case("diag", 10**6, 2, 3, speedup=40),
        gmm_case("diag", 10**6, 8, 8, speedup=25),
        gmm_case("tied", 10**6, 8, 8),
        gmm_case("spherical", 10**6, 8, 8),
        kmeans_case(10**6, 8, 8, speedup=1.0),
    ]


def quick_cases():
    """Tiny sizes for a smoke test: no speed or memory targets, only the trajectory check."""
    return [
        gmm_case("full", 20_000, 4, 3, memory=False),
        gmm_case("full", 2_000, 16, 4, memory=False),
        gmm_case("diag", 20_000, 4, 3, memory=False),
        gmm_case("tied", 20_000, 4, 3, memory=False),
        gmm_case("spherical", 20_000, 4, 3, memory=False),
        kmeans_case(20_000, 4, 4),
    ]


def select_cases(names, quick=False):
    """The cases to run: the named ones (any size), else the quick or the default grid."""
    if names:
        return [parse_case_name(name) for name in names]
    return quick_cases() if quick else default_cases()
