"""Errors raised on bad input data (issue #3 "Bad input")."""


class DataError(ValueError):
    """Bad input data: names the file and record and says what to do."""
