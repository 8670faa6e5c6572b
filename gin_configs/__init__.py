"""The gin experiment configs, installed as ``keras_wideresnet.gin_configs``.

Only the ``.gin`` files under this folder matter; this file makes the folder a package so that
``importlib.resources.files("keras_wideresnet.gin_configs")`` finds them in any install.
"""
