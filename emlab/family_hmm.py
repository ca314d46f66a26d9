"""Hidden Markov models whose emissions are any component family (:mod:`emlab.families`)."""

import numpy as np

from .em import ChunkedData, SufficientStatistics
from .families import Family
from .hmm import DEFAULT_MAX_ITER, BaseHMM, _doc
from .kmeans import KMeans
from .mixture import align_to_labels


class HMM(BaseHMM):
    __doc__ = _doc("""Hidden Markov model with emissions from any component family.

    The family that is a mixture component in :class:`emlab.MixtureModel` is
    here the emission of each state: its log-density, statistics (weighted by
    the state posteriors) and M-step are the same code.

    Parameters
    ----------
    family : emlab.families.Family
        ``Gaussian(covariance_type)``, ``StudentT``, ``Bernoulli``,
        ``Categorical``, ``Poisson``, ``Exponential``, or your own.
    n_components : int, default=1
        Number of hidden states.
    %(common)s
    params : str, default='ste'
        The parameters fit updates: 's' ``startprob_``, 't' ``transmat_``, and
        the emission's: 'e' all of them, or the family's own letters ('m'
        means, 'c' covariances, 'd' degrees of freedom, 'p' probabilities,
        'r' rates) to update only some (``params='stm'`` holds a Gaussian
        family's covariances fixed).
    init_params : str, default='ste'
        The parameters fit initialises (uniform ``startprob_`` and
        ``transmat_``; the emissions from k-means on the data, as the
        mixtures start). A letter left out means the attribute set before
        fit is the start.

    Attributes
    ----------
    <family attributes> : the emission parameters per state, named as in
        :class:`emlab.MixtureModel` (``means_``, ``covariances_``,
        ``probabilities_``, ``rates_``, ``dofs_``).
    %(attributes)s

    Notes
    -----
    :class:`emlab.GaussianHMM`, :class:`emlab.CategoricalHMM` and
    :class:`emlab.PoissonHMM` are the fused fast paths of the matching
    families; from the same start they give the same fit.
    %(notes)s
    """)

    def __init__(self, family=None, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 algorithm="viterbi", random_state=None, *, max_iter=DEFAULT_MAX_ITER, tol=1e-3,
                 verbose=0, params="ste", init_params="ste", implementation="log", n_init=1,
                 on_decrease="warn", **aliases):
        self.family = family
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.n_init = n_init
        self.on_decrease = on_decrease
        self._take_aliases(aliases)

    # ----------------------------------------------------------------------- the family

    def _family(self):
        if not isinstance(self.family, Family):
            raise ValueError(f"family must be an emlab.families.Family (Gaussian(), Poisson(), "
                             f"...); got {self.family!r}.")
        prepared = getattr(self, "_prepared", None)  # with its data-driven prior, after fit
        return prepared[1] if prepared is not None and prepared[0] is self.family else self.family

    @property
    def _emission_letters(self):
        return "e" + self._family().letters

    @property
    def _emission_attributes(self):
        family = self._family()
        return tuple(attr for name, attr in family.attributes.items()
                     if name != "precisions_cholesky")

    def _letters(self, value):
        """The family letters that ``value`` (params or init_params) selects ('e': all)."""
        family = self._family()
        return family.letters if "e" in value else "".join(c for c in value if c in family.letters)

    # ----------------------------------------------------------------------- checks

    def _check_X(self, X, fitting):
        family = self._family()
        fitted = not fitting and hasattr(self, "n_features_in_")
        params = self._emission_from_attributes() if fitted else None
        return family.check_X(X, n_features=self.n_features_in_ if fitted else None,
                              params=params)

    def _check_values(self, X, name):
        self._family().check_X(X, name)

    # ----------------------------------------------------------------------- emission hooks

    def _emission_from_attributes(self):
        family = self._family()
        values = {}
        for name, attr in family.attributes.items():
            if hasattr(self, attr):
                values[name] = getattr(self, attr)
            elif name != "precisions_cholesky":
                raise ValueError(f"{attr} is not set: set it before fit, or keep its letter in "
                                 f"init_params (init_params={self.init_params!r}).")
        values.update(getattr(self, "_hidden", {}))
        d = next(iter(values.values())).shape[1]
        checked = family.check_params(values, self.n_components, d)
        for name, value in values.items():
            checked.setdefault(name, value)
        return checked

    def _init_emission(self, X, rng, summary=None):
        self._prepared = None
        self._prepared = (self.family, self._family().prepare(X, None, self.n_components))
        family = self._family()
        letters = self._letters(self.init_params)
        if not letters:
            return self._emission_from_attributes()
        if isinstance(X, ChunkedData):
            raise ValueError(f"{type(self).__name__}.fit on chunked data starts from given "
                             f"emission parameters: set them as attributes and leave 'e' out of "
                             f"init_params.")
        X = self._as_family_data(X)
        k = self.n_components
        features = family.start_features(X)
        labels = KMeans(n_clusters=k, n_init=1, random_state=rng).fit(features).labels_
        labels = align_to_labels(labels, getattr(self, "_fit_labels", None), k)
        eps = family.start_smoothing
        resp = np.full((X.shape[0], k), eps / k)
        resp[np.arange(X.shape[0]), labels] += 1.0 - eps
        start, _ = family.m_step(family.statistics(X, resp, None), None, family.letters)
        if letters != family.letters:  # the rest from the attributes the user set
            for letter in family.letters:
                if letter not in letters:
                    for name in family.letter_params[letter]:
                        attr = family.attributes[name]
                        if name != "precisions_cholesky":
                            start[name] = self._given(attr, letter)
            start = dict(family.check_params(start, k, X.shape[1]), **{
                name: value for name, value in start.items() if name not in family.attributes})
        return start

    def _as_family_data(self, X):
        if type(self._family()).__name__ == "Categorical" and X.dtype != np.int64:
            return X.astype(np.int64)
        return X

    def _set_emission(self, emission):
        family = self._family()
        self._hidden = {}
        for name, value in emission.items():
            if name in family.attributes:
                setattr(self, family.attributes[name], value)
            else:
                self._hidden[name] = value

    def _log_emission(self, X, emission):
        return self._family().log_prob(self._as_family_data(X), emission)

    def _emission_statistics(self, X, gamma, emission):
        if not self._letters(self.params):
            return SufficientStatistics(0.0, X.shape[0])
        stats = self._family().statistics(self._as_family_data(X), gamma, emission)
        return stats._new(0.0, X.shape[0], stats.arrays)

    def _emission_from_statistics(self, stats, emission):
        learn = self._letters(self.params)
        if not learn:
            return emission, 0.0
        new, deficit = self._family().m_step(stats, emission, learn)
        for name, value in emission.items():
            new.setdefault(name, value)
        return new, deficit

    def _log_emission_prior(self, emission):
        return self._family().log_prior(emission)

    def _n_emission_parameters(self):
        if not self._letters(self.params):
            return 0
        return self._family().n_parameters(self._emission_from_attributes())

    def _sample_emission(self, emission, states, rng):
        family = self._family()
        out = None
        for k in np.unique(states):
            where = np.flatnonzero(states == k)
            draws = family.sample(emission, k, where.size, rng)
            if out is None:
                out = np.empty((len(states), draws.shape[1]), dtype=draws.dtype)
            out[where] = draws
        return out
