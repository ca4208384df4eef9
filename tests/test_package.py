"""The public API: ``import feature_unlearning as fu`` is cheap and every name in ``fu.__all__`` resolves."""

import subprocess
import sys


def test_importing_the_package_loads_no_model_and_no_heavy_library():
    code = (
        "import sys, feature_unlearning as fu, feature_unlearning.oracles as o;"
        "assert o.bundled_classifier.cache_info().currsize == 0, 'a model was loaded';"
        "heavy = [m for m in ('gradio', 'torchmetrics', 'matplotlib') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_public_name_resolves_and_unlearn_stays_the_function():
    import feature_unlearning as fu
    import feature_unlearning.feature  # noqa: F401 - imports the unlearn module as a side effect

    for name in fu.__all__:
        assert getattr(fu, name) is not None, name
    assert callable(fu.unlearn) and fu.unlearn.__module__ == "feature_unlearning.unlearn"
    assert fu.Feature.__module__ == "feature_unlearning.feature" and fu.compare.__module__ == "feature_unlearning.metrics"
