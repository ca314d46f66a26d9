"""Mixtures of experts trained by EM (Jordan and Jacobs, 1994; Ng and McLachlan, 2004).

A softmax gating network ``g_j(x) = softmax_j(V_j^T [x, 1])`` chooses among
``K`` experts: multinomial-logit classifiers
(:class:`MixtureOfExpertsClassifier`) or linear-Gaussian regressions, each with
its own variance (:class:`MixtureOfExpertsRegressor`). The objective is the
penalised log-likelihood

    sum_i s_i log sum_j g_j(x_i) p(y_i | x_i, j)  -  alpha / 2 ||weights||^2

(``s_i`` the sample weights; the penalty is on every gate and expert weight,
never on an intercept), reported per unit of sample weight in
``lower_bounds_``. EM's E-step gives the posterior ``h_ij`` of expert j for
sample i; the M-step splits into independent blocks (the gate, fitted to the
soft targets ``h_ij`` with row weights ``s_i``; expert j, fitted with row
weights ``s_i h_ij``), each a weighted (multinomial) logistic regression or a
weighted least-squares problem.

The logistic blocks have no closed-form maximiser. ``m_step='irls'`` takes
``n_inner`` damped Newton (IRLS) steps per EM iteration on each block, with
``learning_rate`` as the damping; ``m_step='ecm'`` is Ng and McLachlan's
expectation-conditional maximisation: each multinomial logit is maximised
one class's weight vector at a time, the others held fixed, by ``n_inner``
Newton steps with step-halving. An inner loop that does not maximise Q
exactly is a *generalised* EM step: the objective still cannot fall as long as
each block's Q does not fall, which step-halving (``step_halving=True``,
the default, and always in ECM) guarantees. Plain IRLS with
``learning_rate=1`` (the paper's setting) may overshoot and lower the
objective; the driver's monotonicity guard then reports it
(``on_decrease``). Damping alone guarantees nothing either: on one of the
test problems ``learning_rate=0.5`` without step-halving lowers the objective
once, by about 2e-5 per sample (``tests/test_experts.py``).

The parameterisation of a multinomial logit with C classes and p = d + 1
inputs is the full, symmetric one (C p numbers, as scikit-learn's
``LogisticRegression``): the penalty treats all classes alike and makes the
Hessian definite in the weights. One direction remains null: adding the same
constant to every class's intercept changes no probability. The Newton
system therefore has ``(gamma / C) e e^T`` added (e the indicator of the C
intercepts, gamma their mean curvature), which changes no step since
the gradient is orthogonal to e, and makes the (C p) x (C p) matrix definite,
so a Cholesky factorisation solves it (a :class:`SingularHessianError` names
the block if it fails); intercepts are kept centred (summing to zero).

How the Newton system is solved is ``solver``'s choice. 'cholesky' forms the
matrix (``N C (C - 1) / 2 p^2 / 2`` multiply-adds: 1.1e10 for N = 1e5,
C = 10, p = 65) and factorises it. 'cg', the default, never forms it: a
truncated Newton step, as scikit-learn's ``newton-cg``, by conjugate gradients
preconditioned with the matrix's diagonal, each iteration one Hessian-vector
product ``sum_i w_i [x_i, 1] (diag(p_i) - p_i p_i^T) V [x_i, 1]`` (one pass,
2 N C p multiply-adds), stopped at a residual below a fraction of the
gradient (scikit-learn's forcing term). Its direction is approximate, but
always an ascent direction of the block's Q, so step-halving keeps every
M-step a generalised EM step exactly as with Cholesky.
"""

import numbers
import warnings
from typing import NamedTuple, Optional

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve

from . import _config
from ._base import ParamsMixin
from ._kernels.experts import (
    log_softmax_rows,
    softmax_class_terms,
    softmax_gradient_terms,
    softmax_hessian_vector,
    softmax_newton_terms,
    softmax_objective,
)
from ._kernels.gaussian import padded4
from ._kernels.mixture import log_normalize
from ._validation import (
    check_array,
    check_int,
    check_is_fitted,
    check_option,
    check_random_state,
    check_sample_weight,
    check_scalar,
)
from .em import check_em_options, fit_em
from .exceptions import (
    DegenerateCovarianceError,
    DegenerateCovarianceWarning,
    SingularHessianError,
)

M_STEPS = ("irls", "ecm")
SOLVERS = ("cg", "cholesky")
MAX_CG_ITER = 200  # scikit-learn's newton-cg: maxinner=200
INITS = ("kmeans", "random")
MAX_HALVINGS = 30
LOG_2PI = float(np.log(2 * np.pi))


# ----------------------------------------------------------------------------- logistic blocks


def _terms(X, coef, targets, weights, alpha):
    """Penalised Q of a multinomial-logit block, its gradient and negative Hessian (full C p)."""
    n, d = X.shape
    n_classes, p = coef.shape
    pp = padded4(p)
    n_pairs = max(1, n_classes * (n_classes - 1) // 2)
    grad = np.empty((n_classes, p))
    hess = np.empty((n_classes * p, n_classes * p))
    n_blocks = _config.n_blocks(n, n_pairs * pp * pp + n_classes * p + 1)
    with _config.threads_for(n * n_pairs * pp * pp):
        q = softmax_newton_terms(X, coef, targets, weights, n_blocks, grad, hess)
    w = coef[:, :d]
    q -= 0.5 * alpha * float(np.sum(w * w))
    grad[:, :d] -= alpha * w
    idx = (np.arange(n_classes)[:, None] * p + np.arange(d)[None, :]).ravel()
    hess[idx, idx] += alpha
    return q, grad, hess


def _objective(X, coef, targets, weights, alpha):
    """Penalised Q of a block (one pass, no derivatives)."""
    n, d = X.shape
    n_classes, p = coef.shape
    n_blocks = _config.n_blocks(n, 1)
    with _config.threads_for(n * n_classes * p * 4):
        q = softmax_objective(X, coef, targets, weights, n_blocks)
    return q - 0.5 * alpha * float(np.sum(coef[:, :d] ** 2))


def _solve(hess, grad, what):
    """``hess^{-1} grad`` by Cholesky; a :class:`SingularHessianError` that names ``what``.

    When the factorisation fails, it is retried with a ridge of 1e-12, 1e-10,
    1e-8, then 1e-6 times the largest diagonal entry (for a direction of
    (numerically) zero curvature, as when the probabilities of the rows have
    saturated to 0 or 1 in floating point, along which the gradient is
    negligible too); if all fail, or the system has non-finite entries, the
    error is raised.
    """
    if not np.all(np.isfinite(hess)) or not np.all(np.isfinite(grad)):
        raise SingularHessianError(
            f"the Newton system of {what} has non-finite entries (overflow: rescale X?).")
    scale = max(float(np.max(np.abs(np.diag(hess)))), np.finfo(float).tiny)
    for ridge in (0.0, 1e-12, 1e-10, 1e-8, 1e-6):
        try:
            factor = cho_factor(hess + ridge * scale * np.eye(hess.shape[0]) if ridge else hess,
                                lower=True, check_finite=False)
            break
        except LinAlgError:
            continue
    else:
        raise SingularHessianError(
            f"the Hessian of {what} is not positive definite, even with a ridge of 1e-6 "
            f"times its largest diagonal entry, so its Newton step is undefined. Use alpha > 0 "
            f"or rescale X."
        )
    return cho_solve(factor, grad, check_finite=False)


def _gradient_terms(X, coef, targets, weights, alpha):
    """Penalised Q, its gradient, the diagonal of its negative Hessian, the probabilities (C, n)."""
    n, d = X.shape
    n_classes, p = coef.shape
    grad = np.empty((n_classes, p))
    diag = np.empty((n_classes, p))
    proba = np.empty((n_classes, n))
    n_blocks = _config.n_blocks(n, 2 * n_classes * p + 1)
    with _config.threads_for(n * n_classes * p * 4):
        q = softmax_gradient_terms(X, coef, targets, weights, n_blocks, grad, diag, proba)
    w = coef[:, :d]
    q -= 0.5 * alpha * float(np.sum(w * w))
    grad[:, :d] -= alpha * w
    diag[:, :d] += alpha
    return q, grad, diag, proba


def _hessian_product(X, proba, weights, alpha, gamma):
    """``v -> H v`` (H the penalised negative Hessian plus ``(gamma / C) e e^T``), one pass each."""
    n, d = X.shape
    n_classes = proba.shape[0]
    p = d + 1
    n_blocks = _config.n_blocks(n, padded4(n_classes) * padded4(p))
    work = n * n_classes * p * 2

    def product(v):
        out = np.empty_like(v)
        with _config.threads_for(work):
            softmax_hessian_vector(X, proba, weights, v, n_blocks, out)
        out[:, :d] += alpha * v[:, :d]
        if n_classes > 1:
            out[:, d] += (gamma / n_classes) * float(np.sum(v[:, d]))
        return out

    return product


def _conjugate_gradients(product, grad, diag, rtol, max_iter, what):
    """Approximately solve ``H delta = grad`` by preconditioned conjugate gradients.

    ``product(v)`` is ``H v`` (H symmetric positive semi-definite); the
    preconditioner is ``diag`` (H's diagonal; a zero entry, whose row of H is
    zero, is taken as 1). Starts from 0 and stops, as scikit-learn's
    ``newton-cg`` inner solver, once ``||grad - H delta||_1 <= rtol ||grad||_1``,
    after ``max_iter`` products, or when a search direction has (numerically)
    no curvature. Every iterate (the first one included) is an ascent direction
    for the quadratic model: ``grad . delta > 0`` unless ``grad = 0``.
    Returns ``(delta, number of products)``.
    """
    m = np.where(diag > 0, diag, 1.0)
    delta = np.zeros_like(grad)
    r = grad.copy()
    z = r / m
    direction = z.copy()
    rz = float(np.vdot(r, z))
    tol = rtol * float(np.sum(np.abs(grad)))
    tiny = 16 * np.finfo(float).eps * float(np.max(m))
    i = 0
    while i < max_iter and float(np.sum(np.abs(r))) > tol:
        hp = product(direction)
        i += 1
        curv = float(np.vdot(direction, hp))
        if not np.isfinite(curv):
            raise SingularHessianError(
                f"a Hessian-vector product of {what} is not finite (overflow: rescale X?).")
        if curv <= tiny * float(np.vdot(direction, direction)):
            break  # no curvature left along this direction: keep the iterate
        step = rz / curv
        delta += step * direction
        r -= step * hp
        z = r / m
        rz_new = float(np.vdot(r, z))
        direction = z + (rz_new / rz) * direction
        rz = rz_new
    return delta, i


def _not_below(q_new, q_old):
    """Whether a step kept Q (to round-off: 1e-13 relative)."""
    return q_new >= q_old - 1e-13 * max(1.0, abs(q_old))


def _newton_direction(X, coef, targets, weights, alpha, solver, cg_tol, max_cg_iter, what):
    """Q at coef and the (approximate) Newton direction ``H^{-1} g`` of the penalised block.

    Both solvers solve the same system: H the penalised negative Hessian in
    the full C p parameterisation plus ``(gamma / C) e e^T`` along the
    intercepts' null direction (gamma their mean curvature; see the module
    notes). 'cholesky' forms H and factorises it; 'cg' runs preconditioned
    conjugate gradients on Hessian-vector products (:func:`_conjugate_gradients`).
    """
    n_classes, p = coef.shape
    d = p - 1
    if solver == "cholesky":
        q, grad, hess = _terms(X, coef, targets, weights, alpha)
        if n_classes > 1:
            icpt = np.arange(n_classes) * p + d
            gamma = float(np.mean(hess[icpt, icpt]))
            gamma = gamma if gamma > 0 else 1.0
            hess[np.ix_(icpt, icpt)] += gamma / n_classes
        return q, _solve(hess, grad.ravel(), what).reshape(n_classes, p)
    if solver != "cg":
        raise ValueError(f"solver must be one of {SOLVERS}; got {solver!r}.")
    q, grad, diag, proba = _gradient_terms(X, coef, targets, weights, alpha)
    if not np.all(np.isfinite(grad)) or not np.all(np.isfinite(diag)):
        raise SingularHessianError(
            f"the Newton system of {what} has non-finite entries (overflow: rescale X?).")
    gamma = 1.0
    if n_classes > 1:
        gamma = float(np.mean(diag[:, d]))
        gamma = gamma if gamma > 0 else 1.0
        diag[:, d] += gamma / n_classes
    if cg_tol is None:  # scikit-learn's forcing term, on the gradient per unit of weight
        g1 = float(np.sum(np.abs(grad))) / max(float(np.sum(weights)), np.finfo(float).tiny)
        cg_tol = min(0.5, float(np.sqrt(g1)))
    product = _hessian_product(X, proba, weights, alpha, gamma)
    delta, _ = _conjugate_gradients(product, grad, diag, cg_tol, max_cg_iter, what)
    return q, delta


def newton_logit(X, coef, targets, weights, alpha, *, learning_rate=1.0, n_steps=1,
                 step_halving=True, solver="cg", cg_tol=None, max_cg_iter=MAX_CG_ITER,
                 what="the block"):
    """``n_steps`` damped Newton (IRLS) steps on a weighted multinomial logit; a new coef.

    Each step is ``coef + learning_rate * delta`` on the penalised Q, delta the
    Newton direction ``H^{-1} g`` (H the negative Hessian in the full C p
    parameterisation, made definite along the null direction of the
    intercepts, see the module notes), computed by ``solver``:

    'cg' (truncated Newton, as scikit-learn's ``newton-cg``)
        One pass over the rows for Q, the gradient, H's diagonal and the
        probabilities, then preconditioned conjugate gradients (Jacobi:
        H's diagonal) on Hessian-vector products, one pass each, 2 C p
        multiply-adds per row, H never formed. Stops when the residual's
        L1 norm is below ``cg_tol`` times the gradient's (None:
        scikit-learn's forcing term ``min(0.5, sqrt(||g||_1 / sum(weights)))``,
        loose far from the maximum and tight near it, which keeps Newton's
        fast local convergence), or after ``max_cg_iter`` products. delta is
        then an approximate Newton direction, but always an ascent direction.
    'cholesky' (exact Newton)
        Forms H (``C (C - 1) / 2 (d + 1)^2 / 2`` multiply-adds per row) and
        solves by Cholesky: the exact direction, at a cost that grows as
        C^2 d^2 where CG's grows as C d per product.

    With ``step_halving`` the step is halved until Q does not fall (at most 30
    times; then the block keeps its coefficients), so Q never decreases,
    whichever the solver.
    """
    n_classes, p = coef.shape
    d = p - 1
    coef = coef.copy()
    for _ in range(n_steps):
        q, delta = _newton_direction(X, coef, targets, weights, alpha, solver, cg_tol,
                                     max_cg_iter, what)
        step = float(learning_rate)
        new = coef + step * delta
        if step_halving:
            for _ in range(MAX_HALVINGS):
                if _not_below(_objective(X, new, targets, weights, alpha), q):
                    break
                step *= 0.5
                new = coef + step * delta
            else:
                new = coef
        coef = new
    if n_classes > 1:
        coef[:, d] -= coef[:, d].mean()
    return coef


def cm_logit(X, coef, targets, weights, alpha, *, n_steps=1, what="the block"):
    """Conditional maximisation of a weighted multinomial logit, one class at a time (ECM).

    For each class in turn, the others fixed: ``n_steps`` Newton steps on that
    class's weight vector (a (d + 1) x (d + 1) system), each halved until the
    penalised Q does not fall, so no CM step lowers Q. Then the class vectors
    are centred (a last CM step over their common shift, exact: it changes no
    probability and minimises the penalty).
    """
    n, d = X.shape
    n_classes, p = coef.shape
    coef = coef.copy()
    grad = np.empty(p)
    hess = np.empty((p, p))
    n_blocks = _config.n_blocks(n, padded4(p) ** 2 + p + 1)
    for c in range(n_classes):
        for _ in range(n_steps):
            with _config.threads_for(n * padded4(p) ** 2):
                q = softmax_class_terms(X, coef, targets, weights, c, n_blocks, grad, hess)
            q -= 0.5 * alpha * float(np.sum(coef[:, :d] ** 2))
            grad[:d] -= alpha * coef[c, :d]
            hess[np.arange(d), np.arange(d)] += alpha
            delta = _solve(hess, grad, f"{what}, class {c}")
            step = 1.0
            new = coef.copy()
            for _ in range(MAX_HALVINGS):
                new[c] = coef[c] + step * delta
                if _not_below(_objective(X, new, targets, weights, alpha), q):
                    break
                step *= 0.5
            else:
                new[c] = coef[c]
            coef = new
    if n_classes > 1:
        # One more CM step, in closed form: a common shift u of every class's vector changes
        # no probability, only the penalty sum_c ||w_c + u||^2, which the class mean minimises
        # (without it, class-by-class ascent crawls along that weakly penalised direction).
        coef -= coef.mean(axis=0)
    return coef


def _fit_logit_block(X, coef, targets, weights, alpha, m_step, learning_rate, n_inner,
                     step_halving, solver, what):
    if m_step == "ecm":
        return cm_logit(X, coef, targets, weights, alpha, n_steps=n_inner, what=what)
    return newton_logit(X, coef, targets, weights, alpha, learning_rate=learning_rate,
                        n_steps=n_inner, step_halving=step_halving, solver=solver, what=what)


def _linear(X, coef):
    """``[X, 1] @ coef.T`` for coef of shape (m, d + 1): an (n, m) array."""
    d = X.shape[1]
    return np.ascontiguousarray(X @ coef[:, :d].T + coef[:, d])


def _log_softmax(X, coef):
    eta = _linear(X, coef)
    with _config.threads_for(eta.size * 20):  # ~20 operations per entry (an exp, a log)
        log_softmax_rows(eta, _config.CHUNK_ROWS)
    return eta


# ----------------------------------------------------------------------------- the EM model


class MoEParams(NamedTuple):
    """Parameters of a mixture of experts.

    gate : (K, d + 1), the gating network's weights, intercepts last.
    experts : (K, C, d + 1) for multinomial-logit experts, (K, d + 1) for linear ones.
    sigma2 : (K,) the linear experts' variances; None for classifiers.
    """

    gate: np.ndarray
    experts: np.ndarray
    sigma2: Optional[np.ndarray] = None


class _ExpertsEM:
    """The EM model (see :class:`~emlab.em.EMModel`); subclasses supply the experts."""

    def __init__(self, s, n_experts, m_step, learning_rate, n_inner, step_halving, alpha, init,
                 solver="cg"):
        self.s = s
        self.solver = solver
        self.total = float(s.sum())
        self.n_experts = n_experts
        self.m_step_kind = m_step
        self.learning_rate = learning_rate
        self.n_inner = n_inner
        self.step_halving = step_halving
        self.alpha = alpha
        self.init = init

    def _block(self, X, coef, targets, weights, what, start=False):
        """The M-step of one logistic block; ``start``: the initialisation's three Newton steps."""
        if start:  # always safeguarded, whatever the settings of the EM iterations
            return newton_logit(X, coef, targets, weights, self.alpha, learning_rate=1.0,
                                n_steps=3, step_halving=True, solver=self.solver, what=what)
        return _fit_logit_block(X, coef, targets, weights, self.alpha, self.m_step_kind,
                                self.learning_rate, self.n_inner, self.step_halving,
                                self.solver, what)

    def _start_labels(self, X, rng):
        k = self.n_experts
        if k == 1:
            return np.zeros(X.shape[0], dtype=np.intp)
        if self.init == "random":
            return rng.integers(k, size=X.shape[0])
        from .kmeans import KMeans

        Z = self._clustering_features(X)
        return KMeans(n_clusters=k, n_init=1, random_state=rng).fit(Z).labels_

    def _clustering_features(self, X):
        return X

    def init_params(self, X, rng):
        """Hard starting labels (k-means or random), softened; three Newton steps per block."""
        k = self.n_experts
        labels = self._start_labels(X, rng)
        h = np.full((X.shape[0], k), 0.1 / k)
        h[np.arange(X.shape[0]), labels] += 0.9
        gate = np.zeros((k, X.shape[1] + 1))
        if k > 1:
            gate = self._block(X, gate, h, self.s, "the gate", start=True)
        return self._start_experts(X, h, gate)

    def penalty(self, params):
        d = params.gate.shape[1] - 1
        return 0.5 * self.alpha * (float(np.sum(params.gate[:, :d] ** 2))
                                   + float(np.sum(params.experts[..., :d] ** 2)))

    def log_gate(self, X, gate):
        if gate.shape[0] == 1:
            return np.zeros((X.shape[0], 1))
        return _log_softmax(X, gate)

    def e_step(self, X, params):
        log_joint = self.log_gate(X, params.gate) + self.expert_log_prob(X, params)
        log_norm = np.empty(X.shape[0])
        h = np.empty_like(log_joint)
        with _config.threads_for(log_joint.size * 20):
            log_normalize(log_joint, _config.CHUNK_ROWS, log_norm, h)
        total = float(self.s @ log_norm) if np.all(np.isfinite(log_norm)) else -np.inf
        return (total - self.penalty(params)) / self.total, h

    def m_step(self, X, h, params):
        gate = params.gate
        if self.n_experts > 1:
            gate = self._block(X, gate, np.ascontiguousarray(h), self.s, "the gate")
        return self.expert_step(X, h, params._replace(gate=gate))


class _ClassifierEM(_ExpertsEM):
    def __init__(self, y_idx, n_classes, s, **kw):
        super().__init__(s, **kw)
        self.y_idx = y_idx
        self.targets = np.zeros((y_idx.size, n_classes))
        self.targets[np.arange(y_idx.size), y_idx] = 1.0
        self.n_classes = n_classes

    def _start_experts(self, X, h, gate):
        experts = np.zeros((self.n_experts, self.n_classes, X.shape[1] + 1))
        for j in range(self.n_experts):
            experts[j] = self._block(X, experts[j], self.targets, self.s * h[:, j],
                                     f"expert {j}", start=True)
        return MoEParams(gate, experts)

    def expert_log_prob(self, X, params):
        out = np.empty((X.shape[0], self.n_experts))
        rows = np.arange(X.shape[0])
        for j in range(self.n_experts):
            out[:, j] = _log_softmax(X, params.experts[j])[rows, self.y_idx]
        return out

    def expert_step(self, X, h, params):
        experts = params.experts.copy()
        for j in range(self.n_experts):
            w = np.ascontiguousarray(self.s * h[:, j])
            if not np.any(w > 0):
                continue  # an expert with no responsibility keeps its coefficients
            experts[j] = self._block(X, experts[j], self.targets, w, f"expert {j}")
        return params._replace(experts=experts)


class _RegressorEM(_ExpertsEM):
    def __init__(self, y, s, reg_variance, **kw):
        super().__init__(s, **kw)
        self.y = y
        mean = float(s @ y) / float(s.sum())
        var = float(s @ (y - mean) ** 2) / float(s.sum())
        self.var_floor = reg_variance * (var if var > 0 else 1.0)
        self.collapsed = {}

    def _clustering_features(self, X):
        Z = np.column_stack([X, self.y])
        scale = Z.std(axis=0)
        return (Z - Z.mean(axis=0)) / np.where(scale > 0, scale, 1.0)

    def _wls(self, X, w, beta, sigma2, learning_rate):
        """Weighted least squares for one expert, sigma2 fixed, damped; then sigma2 given beta."""
        d = X.shape[1]
        Xw = X * w[:, None]
        sw = float(w.sum())
        a = np.empty((d + 1, d + 1))
        a[:d, :d] = Xw.T @ X
        a[:d, d] = a[d, :d] = Xw.sum(axis=0)
        a[d, d] = sw
        rhs = np.append(Xw.T @ self.y, float(w @ self.y))
        a /= sigma2
        rhs /= sigma2
        a[np.arange(d), np.arange(d)] += self.alpha
        target = _solve(a, rhs, "a linear expert's least-squares system")
        beta = beta + learning_rate * (target - beta)
        resid = self.y - (X @ beta[:d] + beta[d])
        new = float(w @ resid ** 2) / sw
        return beta, new

    def _floor(self, j, sigma2):
        if sigma2 >= self.var_floor and sigma2 > 0:
            return sigma2
        if self.var_floor <= 0:
            raise DegenerateCovarianceError(
                f"the variance of expert {j} collapsed to {sigma2:.3g}: it fits its samples "
                f"exactly, and the likelihood is unbounded. Use reg_variance > 0.")
        self.collapsed[j] = sigma2
        return self.var_floor

    def _start_experts(self, X, h, gate):
        k, d = self.n_experts, X.shape[1]
        experts = np.zeros((k, d + 1))
        sigma2 = np.empty(k)
        mean = float(self.s @ self.y) / self.total
        var0 = float(self.s @ (self.y - mean) ** 2) / self.total
        for j in range(k):
            w = self.s * h[:, j]
            experts[j], s2 = self._wls(X, w, experts[j], var0 if var0 > 0 else 1.0, 1.0)
            sigma2[j] = self._floor(j, s2)
        return MoEParams(gate, experts, sigma2)

    def expert_log_prob(self, X, params):
        mu = _linear(X, params.experts)
        s2 = params.sigma2
        return -0.5 * (LOG_2PI + np.log(s2)) - 0.5 * (self.y[:, None] - mu) ** 2 / s2

    def expert_step(self, X, h, params):
        experts = params.experts.copy()
        sigma2 = params.sigma2.copy()
        lr = self.learning_rate if self.m_step_kind == "irls" else 1.0
        for j in range(self.n_experts):
            w = self.s * h[:, j]
            if not np.any(w > 0):
                continue
            experts[j], s2 = self._wls(X, w, experts[j], sigma2[j], lr)
            sigma2[j] = self._floor(j, s2)
        return params._replace(experts=experts, sigma2=sigma2)


# ----------------------------------------------------------------------------- estimators


_INIT_KEYS = ("gate_coef", "gate_intercept", "coef", "intercept")


class _MixtureOfExperts(ParamsMixin):
    """What the classifier and the regressor share: settings, fit, the gate."""

    def __sklearn_tags__(self):
        """scikit-learn's tags of a supervised estimator (y required); imported lazily."""
        from sklearn.utils import ClassifierTags, InputTags, RegressorTags, Tags, TargetTags

        classifier = self._estimator_type == "classifier"
        return Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags() if classifier else None,
                    regressor_tags=None if classifier else RegressorTags(),
                    input_tags=InputTags())

    def _check_settings(self):
        check_int(self.verbose, "verbose", low=0)
        k = check_int(self.n_experts, "n_experts", low=1)
        check_option(self.m_step, "m_step", M_STEPS)
        check_option(self.solver, "solver", SOLVERS)
        lr = self.learning_rate
        if isinstance(lr, (bool, np.bool_)) or not isinstance(lr, numbers.Real) or not (
                np.isfinite(lr) and 0 < lr <= 1):
            raise ValueError(f"learning_rate must be a number in (0, 1]; got {lr!r}.")
        check_int(self.n_inner, "n_inner", low=1)
        if not isinstance(self.step_halving, (bool, np.bool_)):
            raise ValueError(f"step_halving must be True or False; got {self.step_halving!r}.")
        check_scalar(self.alpha, "alpha", low=0.0)
        check_em_options(self.max_iter, self.tol, self.on_decrease)
        check_int(self.n_init, "n_init", low=1)
        if isinstance(self.init, str) or not isinstance(self.init, dict):
            check_option(self.init, "init", INITS)
        return k

    def _common(self):
        return dict(n_experts=self.n_experts, m_step=self.m_step,
                    learning_rate=float(self.learning_rate), n_inner=self.n_inner,
                    step_halving=bool(self.step_halving), alpha=float(self.alpha),
                    solver=self.solver,
                    init=self.init if isinstance(self.init, str) else "kmeans")

    def _check_Xy(self, X, y, sample_weight):
        k = self._check_settings()
        X = check_array(X, min_samples=2)
        n = X.shape[0]
        y = np.asarray(y) if y is not None else None
        if y is None or y.ndim != 1:
            shape = None if y is None else y.shape
            raise ValueError(f"y must be a 1-d array of n_samples values; got shape {shape}. "
                             f"(A column vector: pass y.ravel().)")
        if y.shape[0] != n:
            raise ValueError(f"X and y have different numbers of samples: {n} and {y.shape[0]}.")
        s = check_sample_weight(sample_weight, n)
        s = np.ones(n) if s is None else s
        if k > n:
            raise ValueError(f"n_experts={k} must be <= n_samples={n}.")
        return X, y, s

    def _fit(self, model, X, start):
        rng = check_random_state(self.random_state)
        result = fit_em(model, X, n_init=self.n_init, max_iter=self.max_iter, tol=self.tol,
                        random_state=rng, on_decrease=self.on_decrease, init=start,
                        verbose=self.verbose)
        self.lower_bounds_ = result.lower_bounds
        self.lower_bound_ = float(result.lower_bounds[-1])
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.n_features_in_ = X.shape[1]
        p = result.params
        self.gate_coef_ = p.gate[:, :-1].copy()
        self.gate_intercept_ = p.gate[:, -1].copy()
        self.coef_ = p.experts[..., :-1].copy()
        self.intercept_ = p.experts[..., -1].copy()
        return p

    def _start_from_dict(self, d, extra=()):
        """``init`` given as a dict of arrays: the first run's starting parameters."""
        init = self.init
        missing = [key for key in _INIT_KEYS + tuple(extra) if key not in init]
        if missing:
            raise ValueError(f"init as a dict needs the keys {list(_INIT_KEYS + tuple(extra))}; "
                             f"missing {missing}.")
        arrays = {key: np.asarray(init[key], dtype=np.float64) for key in init}
        for key, value in arrays.items():
            if not np.all(np.isfinite(value)):
                raise ValueError(f"init[{key!r}] contains NaN or infinite values.")
        k = check_int(self.n_experts, "n_experts", low=1)
        if arrays["gate_coef"].shape != (k, d) or arrays["gate_intercept"].shape != (k,):
            raise ValueError(f"init['gate_coef'] and init['gate_intercept'] must have shapes "
                             f"({k}, {d}) and ({k},); got {arrays['gate_coef'].shape} and "
                             f"{arrays['gate_intercept'].shape}.")
        if arrays["intercept"].shape != arrays["coef"].shape[:-1]:
            raise ValueError(f"init['intercept'] must have shape init['coef'].shape[:-1] = "
                             f"{arrays['coef'].shape[:-1]}; got {arrays['intercept'].shape}.")
        gate = np.column_stack([arrays["gate_coef"], arrays["gate_intercept"]])
        experts = np.concatenate([arrays["coef"], arrays["intercept"][..., None]], axis=-1)
        return gate, experts, arrays

    def _check_X(self, X):
        check_is_fitted(self, "gate_coef_")
        return check_array(X, n_features=self.n_features_in_, estimator=type(self).__name__)

    def _gate(self):
        return np.column_stack([self.gate_coef_, self.gate_intercept_])

    def gate_proba(self, X):
        """The gating network's probabilities ``g_j(x)`` of the experts.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_experts), rows summing to 1.
        """
        X = self._check_X(X)
        if self.gate_coef_.shape[0] == 1:
            return np.ones((X.shape[0], 1))
        return np.exp(_log_softmax(X, self._gate()))


_SHARED_PARAMS = """
    n_experts : int, default=2
        Number of experts K.
    m_step : {'irls', 'ecm'}, default='irls'
        'irls': ``n_inner`` damped Newton steps per EM iteration on the gate
        and on each expert, in the full parameterisation (one (C(d+1))^2
        system per multinomial logit, solved as ``solver`` says). 'ecm': Ng and
        McLachlan's expectation-conditional maximisation: the gate, then each
        expert, each multinomial logit one class's weight vector at a time
        with the others fixed, by ``n_inner`` Newton steps with step-halving.
        Both are generalised EM: the inner loop does not maximise Q exactly.
    solver : {'cg', 'cholesky'}, default='cg'
        IRLS only: how each Newton system ``H delta = g`` is solved. 'cg': a
        truncated Newton step, as scikit-learn's ``newton-cg``: preconditioned
        conjugate gradients on Hessian-vector products (one pass over the rows
        each, 2 C (d+1) multiply-adds per row; H never formed), stopped once the
        residual is below ``min(0.5, sqrt(||g||_1 / sum of weights))`` times the
        gradient (L1 norms) or after 200 products: an approximate Newton
        direction, loose far from the maximum and accurate near it. 'cholesky':
        the exact Newton direction, from the formed Hessian (``C^2 (d+1)^2 / 4``
        multiply-adds per row) and its Cholesky factor. Prefer 'cg' when
        ``C (d + 1)`` is large (tens and up: many classes or experts, many
        features), 'cholesky' for small systems, when the exact IRLS iteration
        of the paper is wanted, or when CG needs many products (a badly
        conditioned H). Step-halving makes both monotone. (The regressor's
        only logistic block is its gate.)
    learning_rate : float in (0, 1], default=0.5
        IRLS only: the damping of each Newton step (1 is the undamped step of
        Jordan and Jacobs, which may overshoot).
    n_inner : int, default=1
        Newton steps per block (per class, for 'ecm') in each EM iteration.
    step_halving : bool, default=True
        IRLS only: halve each damped Newton step (up to 30 times, then keep the
        block as it was) until the block's penalised Q does not fall. This makes
        every M-step a generalised EM step, and the objective monotone. False:
        the plain step, as in the paper; with ``learning_rate=1`` it can
        overshoot and the objective fall, which the guard then reports (see
        ``on_decrease``). ECM always halves.
    alpha : float >= 0, default=1e-4
        L2 penalty ``alpha / 2 ||w||^2`` on every weight of the gate and of the
        experts (not on the intercepts); the objective is the penalised
        log-likelihood. With ``alpha=0`` a constant or collinear feature makes
        a Hessian singular (:class:`SingularHessianError`).
    max_iter : int, default=100
    tol : float, default=1e-6
        EM stops when the objective per unit of sample weight changes by less than tol.
    n_init : int, default=1
        Number of starts; the one with the highest final objective is kept.
    random_state : None, int or numpy.random.Generator
        Seeds the starting labels.
    init : {'kmeans', 'random'} or dict, default='kmeans'
        Starting labels: one k-means run (on X for the classifier, on the
        standardised [X, y] for the regressor) or uniform random labels;
        softened to responsibilities 0.9 + 0.1 / K, from which the gate and
        each expert get three Newton steps (or a least-squares fit) from zero.
        A dict of arrays gives the first run's starting parameters instead
        (keys 'gate_coef', 'gate_intercept', 'coef', 'intercept', and
        'sigma2' for the regressor; shaped as the fitted attributes); the
        other ``n_init - 1`` runs start from k-means.
    verbose : int, default=0
        0 silent, 1 a line per run, 2 also a line per iteration.
    on_decrease : {'warn', 'raise', 'ignore'}, default='warn'
        What the driver's monotonicity guard does when the objective falls by
        more than round-off (possible only with ``step_halving=False``):
        a :class:`~emlab.exceptions.LikelihoodDecreaseWarning`, a
        :class:`~emlab.exceptions.LikelihoodDecreaseError`, or nothing (the
        decreases stay recorded either way).
"""

_SHARED_ATTRS = """
    gate_coef_ : ndarray of shape (n_experts, n_features)
    gate_intercept_ : ndarray of shape (n_experts,)
    lower_bounds_ : ndarray, one entry per iteration
        The penalised log-likelihood per unit of sample weight: entry t that of
        the parameters after t M-steps (entry 0 the start).
    lower_bound_ : float
        Its last entry.
    converged_ : bool
    n_iter_ : int
    n_features_in_ : int
"""

_REFERENCES = """
    References
    ----------
    M. I. Jordan and R. A. Jacobs, "Hierarchical mixtures of experts and the EM
    algorithm", Neural Computation 6(2), 181-214, 1994.
    S.-K. Ng and G. J. McLachlan, "Using the EM algorithm to train neural
    networks: misconceptions and a new algorithm for multiclass
    classification", IEEE Transactions on Neural Networks 15(3), 738-749, 2004.
"""


class MixtureOfExpertsClassifier(_MixtureOfExperts):
    __doc__ = f"""Mixture of multinomial-logit experts with a softmax gate, trained by EM.

    ``p(y = c | x) = sum_j g_j(x) softmax_c(W_jc^T [x, 1])``, with
    ``g_j(x) = softmax_j(V_j^T [x, 1])``. See the module ``emlab.experts`` for the
    algorithm.

    Parameters
    ----------{_SHARED_PARAMS}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels of y, sorted (any labels numpy can sort).
    coef_ : ndarray of shape (n_experts, n_classes, n_features)
    intercept_ : ndarray of shape (n_experts, n_classes)
        The experts' weights; intercepts sum to zero over the classes.{_SHARED_ATTRS}
    Notes
    -----
    One expert is plain L2-penalised multinomial logistic regression
    (scikit-learn's ``LogisticRegression(C=1 / alpha)``, with
    ``sample_weight``), fitted by Newton's method.
    {_REFERENCES}
    Examples
    --------
    >>> import numpy as np
    >>> from emlab.experts import MixtureOfExpertsClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((200, 2))
    >>> y = np.where(X[:, 0] > 0, X[:, 1] > 0, X[:, 1] < 0).astype(int)
    >>> moe = MixtureOfExpertsClassifier(2, random_state=0, max_iter=200).fit(X, y)
    >>> bool(np.allclose(moe.predict_proba(X).sum(axis=1), 1))
    True
    """

    _estimator_type = "classifier"

    def __init__(self, n_experts=2, *, m_step="irls", solver="cg", learning_rate=0.5, n_inner=1,
                 step_halving=True, alpha=1e-4, max_iter=100, tol=1e-6, n_init=1,
                 random_state=None, init="kmeans", verbose=0, on_decrease="warn"):
        self.n_experts = n_experts
        self.m_step = m_step
        self.solver = solver
        self.learning_rate = learning_rate
        self.n_inner = n_inner
        self.step_halving = step_halving
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.random_state = random_state
        self.init = init
        self.verbose = verbose
        self.on_decrease = on_decrease

    def fit(self, X, y, sample_weight=None):
        """Fit by EM. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
            Class labels (at least two distinct ones).
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative; a row of weight m counts as m copies of it.
        """
        X, y, s = self._check_Xy(X, y, sample_weight)
        if y.dtype.kind in "fc" and not np.all(np.isfinite(y)):
            raise ValueError(f"y contains {int((~np.isfinite(y)).sum())} NaN or infinite "
                             f"label(s); remove those rows first.")
        try:
            classes, y_idx = np.unique(y, return_inverse=True)
        except TypeError as exc:
            raise ValueError(f"the labels in y cannot be sorted (mixed types?): {exc}") from None
        if y.dtype == object and any(v is None or (isinstance(v, float) and v != v)
                                     for v in classes):
            raise ValueError("y contains None or NaN labels; remove those rows first.")
        if classes.size < 2:
            raise ValueError(f"y has {classes.size} class(es); a classifier needs at least 2.")
        start = None
        if isinstance(self.init, dict):
            gate, experts, _ = self._start_from_dict(X.shape[1])
            if experts.shape != (self.n_experts, classes.size, X.shape[1] + 1):
                raise ValueError("init['coef'] / init['intercept'] must have shapes (n_experts, "
                                 "n_classes, n_features) / (n_experts, n_classes).")
            start = MoEParams(gate, experts)
        model = _ClassifierEM(y_idx.ravel().astype(np.intp), classes.size, s, **self._common())
        self._fit(model, X, start)
        self.classes_ = classes
        return self

    def predict_proba(self, X):
        """``p(y = c | x)``: an (n_samples, n_classes) array whose rows sum to 1."""
        X = self._check_X(X)
        gate = self.gate_proba(X)
        experts = np.concatenate([self.coef_, self.intercept_[..., None]], axis=-1)
        out = np.zeros((X.shape[0], self.classes_.size))
        for j in range(experts.shape[0]):
            out += gate[:, j:j + 1] * np.exp(_log_softmax(X, experts[j]))
        return out / out.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None):
        """(Weighted) accuracy of :meth:`predict`, as scikit-learn's ``ClassifierMixin``."""
        y = np.asarray(y)
        hit = (self.predict(X) == y).astype(np.float64)
        if sample_weight is None:
            return float(hit.mean())
        w = check_sample_weight(sample_weight, hit.size)
        return float(w @ hit / w.sum())


class MixtureOfExpertsRegressor(_MixtureOfExperts):
    __doc__ = f"""Mixture of linear-Gaussian experts with a softmax gate, trained by EM.

    ``p(y | x) = sum_j g_j(x) N(y | b_j^T [x, 1], sigma2_j)``, each expert with
    its own variance. Each expert's M-step is two exact conditional
    maximisations of Q: the coefficients with the variance fixed (penalised
    weighted least squares, ``(X^T W X / sigma2 + alpha I) b = X^T W y /
    sigma2``, the intercept unpenalised; for 'irls' the move towards the
    solution is damped by ``learning_rate``, which on a concave quadratic
    cannot lower Q), then the variance given the coefficients. The gate's
    M-step is as in :class:`MixtureOfExpertsClassifier`.

    Parameters
    ----------{_SHARED_PARAMS}
    reg_variance : float >= 0, default=1e-6
        Floor of every expert's variance, as a fraction of the (weighted)
        variance of y. An expert whose variance collapses below it (it fits
        its samples exactly) is held there and a
        :class:`~emlab.exceptions.DegenerateCovarianceWarning` names it; with
        ``reg_variance=0`` a collapse raises
        :class:`~emlab.exceptions.DegenerateCovarianceError`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_experts, n_features)
    intercept_ : ndarray of shape (n_experts,)
    sigma2_ : ndarray of shape (n_experts,)
        The experts' variances.{_SHARED_ATTRS}
    {_REFERENCES}
    Examples
    --------
    >>> import numpy as np
    >>> from emlab.experts import MixtureOfExpertsRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, size=(400, 1))
    >>> y = np.abs(X[:, 0]) + 0.01 * rng.standard_normal(400)
    >>> moe = MixtureOfExpertsRegressor(2, random_state=0, max_iter=300).fit(X, y)
    >>> bool(moe.score(X, y) > 0.99)
    True
    """

    _estimator_type = "regressor"

    def __init__(self, n_experts=2, *, m_step="irls", solver="cg", learning_rate=0.5, n_inner=1,
                 step_halving=True, alpha=1e-4, max_iter=100, tol=1e-6, n_init=1,
                 random_state=None, init="kmeans", verbose=0, on_decrease="warn",
                 reg_variance=1e-6):
        self.n_experts = n_experts
        self.m_step = m_step
        self.solver = solver
        self.learning_rate = learning_rate
        self.n_inner = n_inner
        self.step_halving = step_halving
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.n_init = n_init
        self.random_state = random_state
        self.init = init
        self.verbose = verbose
        self.on_decrease = on_decrease
        self.reg_variance = reg_variance

    def fit(self, X, y, sample_weight=None):
        """Fit by EM. Returns self.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,), finite real numbers
        sample_weight : array-like of shape (n_samples,), optional
        """
        X, y, s = self._check_Xy(X, y, sample_weight)
        reg = check_scalar(self.reg_variance, "reg_variance", low=0.0)
        y = check_array(y.reshape(-1, 1), "y", min_samples=2).ravel()
        start = None
        if isinstance(self.init, dict):
            gate, experts, arrays = self._start_from_dict(X.shape[1], extra=("sigma2",))
            sigma2 = arrays["sigma2"].reshape(-1)
            if experts.shape != (self.n_experts, X.shape[1] + 1) or sigma2.shape != (
                    self.n_experts,) or np.any(sigma2 <= 0):
                raise ValueError("init['coef'], ['intercept'], ['sigma2'] must have shapes "
                                 "(n_experts, n_features), (n_experts,), (n_experts,), with "
                                 "sigma2 > 0.")
            start = MoEParams(gate, experts, sigma2)
        model = _RegressorEM(y, s, reg, **self._common())
        params = self._fit(model, X, start)
        self.sigma2_ = params.sigma2.copy()
        if model.collapsed:
            j, v = next(iter(model.collapsed.items()))
            warnings.warn(
                f"the variance of expert(s) {sorted(model.collapsed)} collapsed (expert {j}: "
                f"{v:.3g}) and is held at the floor reg_variance * var(y) = "
                f"{model.var_floor:.3g}: the expert fits its samples (nearly) exactly. Consider "
                f"fewer experts.", DegenerateCovarianceWarning, stacklevel=2)
        return self

    def _expert_means(self, X):
        return X @ self.coef_.T + self.intercept_

    def predict(self, X):
        """The mixture's mean ``sum_j g_j(x) b_j^T [x, 1]``."""
        X = self._check_X(X)
        return np.sum(self.gate_proba(X) * self._expert_means(X), axis=1)

    def score(self, X, y, sample_weight=None):
        """(Weighted) coefficient of determination R^2 of :meth:`predict`, as scikit-learn's."""
        pred = self.predict(X)
        y = np.asarray(y, dtype=np.float64).ravel()
        w = np.ones(y.size) if sample_weight is None else check_sample_weight(sample_weight, y.size)
        mean = float(w @ y) / float(w.sum())
        num = float(w @ (y - pred) ** 2)
        den = float(w @ (y - mean) ** 2)
        if den == 0:
            return 1.0 if num == 0 else 0.0
        return 1.0 - num / den
