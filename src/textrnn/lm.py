"""`LanguageModel`: the language model users hold, a scikit-learn estimator, and `TextGenerator`.

`LanguageModel` is `language_model.BaseLanguageModel` (where the parameters, `fit`, `perplexity`,
`save_pretrained` and `from_pretrained` live) with scikit-learn's `BaseEstimator`, so that `get_params`,
`set_params` and `clone` work. Importing scikit-learn's base class imports SciPy too, more than half a second on a
2-core machine, which is why the command line trains and generates with the base class and `TextGenerator`.
"""

from __future__ import annotations

from sklearn.base import BaseEstimator

from .language_model import BaseLanguageModel, TextGenerator, stream_of

__all__ = ["LanguageModel", "TextGenerator", "stream_of"]


class LanguageModel(BaseLanguageModel, BaseEstimator):
    __doc__ = BaseLanguageModel.__doc__ + """
    A scikit-learn estimator: `get_params`, `set_params` and `clone` work.
    """
