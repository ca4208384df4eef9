"""The test suite runs each notebook top to bottom with nbmake, in its quick setting.

The kernels nbmake starts inherit this process's environment, so setting the variable here reaches them.
Run ``FU_TUTORIAL_FAST=0 pytest tutorials`` to execute the full setting instead.
"""

import os

os.environ.setdefault("FU_TUTORIAL_FAST", "1")
os.environ.setdefault("FEATURE_UNLEARNING_PROGRESS", "0")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
