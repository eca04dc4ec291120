"""Every class of bad notebook parameter fails at once with one line naming it."""

import pytest

from ace_utils.book.params import Bool, Choice, Float, Int, IntList, ParameterError, validate

SPEC = {
    "seed": Int(0, 10_000),
    "lr": Float(1e-5, 1.0),
    "preset": Choice("default", "paper"),
    "fast": Bool(),
    "sizes": IntList(1, 8, min_len=1, max_len=3),
}
GOOD = {"seed": 3, "lr": 0.001, "preset": "paper", "fast": False, "sizes": [2, 4]}


def test_good_parameters_pass_and_are_returned():
    import math  # modules, functions and private names in the namespace are ignored

    ns = dict(GOOD, math=math, _hidden=1, helper=lambda: 0, In=[], Out={})
    assert validate(SPEC, ns) == GOOD


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"sede": 3}, "unknown parameter 'sede': allowed parameters are fast, lr, preset, seed, sizes"),
        ({"seed": "3"}, "parameter 'seed' must be an int in [0, 10000], got '3'"),
        ({"seed": 3.0}, "parameter 'seed' must be an int"),
        ({"seed": True}, "parameter 'seed' must be an int"),
        ({"seed": -1}, "parameter 'seed' = -1 is out of range: allowed ints in [0, 10000]"),
        ({"lr": "fast"}, "parameter 'lr' must be a number"),
        ({"lr": 2.0}, "parameter 'lr' = 2.0 is out of range"),
        ({"preset": "huge"}, "parameter 'preset' = 'huge' is not allowed: choose one of 'default', 'paper'"),
        ({"fast": 1}, "parameter 'fast' must be True or False"),
        ({"sizes": [2, 9]}, "parameter 'sizes' = [2, 9] is out of range"),
        ({"sizes": []}, "parameter 'sizes' = [] is out of range"),
        ({"sizes": "2,4"}, "parameter 'sizes' must be a list"),
    ],
)
def test_bad_parameters_fail_with_one_line(change, needle):
    ns = dict(GOOD, **change)
    with pytest.raises(ParameterError) as e:
        validate(SPEC, ns)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg


def test_missing_parameter():
    ns = dict(GOOD)
    del ns["lr"]
    with pytest.raises(ParameterError, match="parameter 'lr' is missing"):
        validate(SPEC, ns)


def test_float_list():
    from ace_utils.book.params import FloatList

    spec = {"omegas": FloatList(0.0, 10.0, min_len=1, max_len=4)}
    assert validate(spec, {"omegas": [1, 2.5]}) == {"omegas": [1.0, 2.5]}
    for bad, word in (([], "out of range"), ([1, 11], "out of range"), ("1,2", "must be"), ([True], "must be")):
        with pytest.raises(ParameterError, match=word) as e:
            validate(spec, {"omegas": bad})
        assert "'omegas'" in str(e.value) and "\n" not in str(e.value)


def test_name_list_splits_and_refuses_spaces_and_too_many():
    from ace_utils.book.params import NameList

    assert NameList(3).check("m", "gpt2, gpt2-medium") == ["gpt2", "gpt2-medium"]
    for bad in ("", "a b", "a,b,c,d", 5):
        with pytest.raises(ParameterError, match="parameter 'm'"):
            NameList(3).check("m", bad)


def test_fixed_parameter_allows_one_value_and_says_why():
    from ace_utils.book.params import Fixed

    spec = {"seed": Fixed(0, "the committed long runs were made from seed 0")}
    assert validate(spec, {"seed": 0}) == {"seed": 0}
    for bad in (1, 0.0, False, "0"):
        with pytest.raises(ParameterError) as e:
            validate(spec, {"seed": bad})
        assert str(e.value) == (f"parameter 'seed' = {bad!r}: the committed long runs were made from seed 0; "
                                "allowed: 0")
