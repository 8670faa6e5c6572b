"""The configuration edge: gin registration and parsing for the command-line tools.

Only the tools (and a user's own scripts) import this part; the library below it takes explicit
arguments (docs/architecture.md §9.1).
"""
