"""scikit-learn's estimator conventions, without depending on scikit-learn."""

import inspect


class ParamsMixin:
    """``get_params`` / ``set_params`` read from ``__init__``'s signature.

    ``__init__`` stores its arguments unchanged under their own names, so
    ``sklearn.base.clone``, ``Pipeline`` and ``GridSearchCV`` can rebuild an
    estimator from its parameters.
    """

    @classmethod
    def _param_names(cls):
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    #: scikit-learn's estimator type ('density_estimator', 'clusterer', ...)
    _estimator_type = None
    #: whether ``transform`` maps X to new features (scikit-learn's transformer tags)
    _is_transformer = False

    def _allows_nan(self):
        """Whether ``fit`` accepts NaN as missing values (scikit-learn's ``allow_nan`` tag)."""
        return False

    def __sklearn_tags__(self):
        """scikit-learn's tags; only scikit-learn calls this, so it imports it lazily."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=False),
                    transformer_tags=(TransformerTags(preserves_dtype=["float64", "float32"])
                                      if self._is_transformer else None),
                    input_tags=InputTags(allow_nan=self._allows_nan()))

    def get_params(self, deep=True):
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"invalid parameter {name!r} for {type(self).__name__}; "
                    f"valid parameters are {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self):
        sig = inspect.signature(type(self).__init__)
        changed = []
        for name, p in sig.parameters.items():
            if name == "self":
                continue
            value = getattr(self, name)
            default = p.default
            try:
                same = value is default or bool(value == default)
            except Exception:  # arrays and the like
                same = False
            if not same:
                changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"
