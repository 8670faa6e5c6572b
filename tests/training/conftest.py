"""Quickstart records shared by the training tests (written once per session, real writer)."""

import pytest

@pytest.fixture(scope="session")
def quickstart_dir(tmp_path_factory):
    from keras_wideresnet.data import quickstart_files

    root = str(tmp_path_factory.mktemp("quickstart"))
    quickstart_files("classification", "train", root)
    quickstart_files("segmentation", "train", root)
    return root
