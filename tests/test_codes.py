"""The kernel codes have one definition (fastnet._codes), which every backend follows."""
import pathlib

import numpy as np
import pytest

from fastnet import _backend, _codes, _kernel_checks
from fastnet.reference import activations, losses

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_generated_cython_codes_match_the_enums():
    pxi = REPO / "src_cython" / "_codes.pxi"
    assert pxi.read_text() == _codes.pxd_source(), (
        "src_cython/_codes.pxi is stale: regenerate it with `python -m fastnet._codes`")


def test_cython_sources_use_no_other_code_literals():
    """No .pyx/.pxd/.pxi declares its own enum of these codes (they come from _codes.pxi)."""
    names = [f"{p}_{m.name}" for p, e in _codes.ENUMS.items() for m in e]
    for path in (REPO / "src_cython").glob("*.p*"):
        if path.name == "_codes.pxi" or path.suffix not in (".pyx", ".pxd", ".pxi"):
            continue
        text = path.read_text()
        for name in names:
            assert f"{name} =" not in text, f"{path.name} redefines {name}"


def test_reference_classes_carry_the_enum_codes():
    for cls in activations.ACTIVATIONS.values():
        assert cls.code is _codes.by_name(_codes.Act, cls.name)
    for cls in losses.LOSSES.values():
        assert cls.code is _codes.by_name(_codes.Loss, cls.name)
    for cls in losses.PENALTIES.values():
        assert cls.code is _codes.by_name(_codes.Penalty, cls.name)


def test_backend_tables_and_kernel_checks_follow_the_enums():
    assert _backend.ACTIVATION_CODES == {m.name.lower(): int(m) for m in _codes.Act}
    assert set(_backend.LOSS_CODES.values()) == {int(m) for m in _codes.Loss}
    assert set(_backend.OPTIMIZER_CODES.values()) == {int(m) for m in _codes.Optimizer}
    assert _kernel_checks.ACTIVATIONS == {int(m): m.name.lower() for m in _codes.Act}
    assert _kernel_checks.OPTIMIZERS == {int(m): m.name.lower() for m in _codes.Optimizer}


def test_by_name_accepts_the_api_aliases_and_refuses_others():
    assert _codes.by_name(_codes.Act, " Logistic ") is _codes.Act.SIGMOID
    assert _codes.by_name(_codes.Optimizer, "gd") is _codes.Optimizer.SGD
    with pytest.raises(KeyError):
        _codes.by_name(_codes.Act, "swish")
