"""A missing optional dependency names the extra that installs it."""

import pytest

from keras_wideresnet import _extras


def test_require_returns_the_module():
    import json

    assert _extras.require("json", "quickstart", "Anything") is json


def test_a_missing_module_names_its_extra():
    with pytest.raises(ImportError, match=r"pip install 'keras_wideresnet\[analysis\]'") as e:
        _extras.require("no_such_module_xyz.sub", "analysis", "The path-analysis plots")
    assert isinstance(e.value, _extras.MissingExtraError)
    assert "The path-analysis plots needs the optional dependency 'no_such_module_xyz'" in str(e.value)
