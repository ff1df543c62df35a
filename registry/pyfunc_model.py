"""The pyfunc model every registered CardFlow version runs (MLflow "models from code": no pickling).

`mlflow.pyfunc.load_model` executes this file with the version's artifacts; `VariantModel.load_context`
then builds the variant over the version's own verified model store.
"""

from mlflow.models import set_model

from registry.package import VariantModel

set_model(VariantModel())
