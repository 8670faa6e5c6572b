"""Errors raised on bad input data."""


class DataError(ValueError):
    """Bad input data: names the file and record and says what to do."""
