"""Compiled Cython extension modules land here (built by ``setup.py`` from ``src_cython/``).

:mod:`fastnet._cython.backend` gathers them into the ``cython`` backend's kernel table.
"""
#: Extension modules the cython backend needs (``fastnet._cython.<name>``).
REQUIRED_MODULES = ("activations", "mlp", "linear", "word2vec", "conv", "rnn")
