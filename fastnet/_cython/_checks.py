"""The argument checks of the Cython kernels' wrappers live in :mod:`fastnet._kernel_checks`
(shared by every compiled backend); this name is kept for the extension modules."""
from fastnet._kernel_checks import *  # noqa: F401,F403

