"""`TextClassifier`: the estimator users hold, a scikit-learn estimator.

It is `classifier.BaseTextClassifier` (where the parameters, `fit`, `predict`, `save_pretrained` and
`from_pretrained` live) with scikit-learn's `BaseEstimator` and `ClassifierMixin`, so that `get_params`,
`set_params`, `clone`, `cross_val_score` and `GridSearchCV` work. Importing scikit-learn's base classes imports
SciPy too, about a second on a 2-core machine, which is why the command line trains with the base class.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator, ClassifierMixin

from .classifier import BaseTextClassifier


class TextClassifier(BaseTextClassifier, ClassifierMixin, BaseEstimator):
    # The base class comes first so that its `score` (accuracy from the network's own logits, labels as `fit`
    # took them) wins over ClassifierMixin's, which it computes the same way.
    __doc__ = BaseTextClassifier.__doc__ + """
    A scikit-learn estimator: `get_params`, `set_params`, `clone`, `cross_val_score` and `GridSearchCV` work.
    """
