"""AutoML for the edge: the best int8 model for a board budget, and fit-to-budget of a given model.

A stage above the others: it drives models, train, compress, deploy, verify and measure in a
loop, and only the CLI and the lessons import it.

- :func:`run_search` (``labkit search``): an Optuna study over the kit's families; every
  candidate's flash, RAM and instructions measured as linked for the nRF52840 before training;
  int8 accuracy on a validation split as the objective; NetScore per trial; the best retrained,
  converted and verified bit for bit.
- :func:`fit_to_budget` (``labkit fit``): a user's model made narrower until it fits.
"""

from labkit.automl.budget import Budget, netscore, parse_count, parse_size
from labkit.automl.costs import measure_candidate
from labkit.automl.fit import fit_to_budget
from labkit.automl.search import run_search
from labkit.automl.space import FAMILIES, suggest_model

__all__ = ["Budget", "FAMILIES", "fit_to_budget", "measure_candidate", "netscore", "parse_count", "parse_size",
           "run_search", "suggest_model"]
