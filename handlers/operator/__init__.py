"""Operator commands as use cases: what `signpost …` does at the server's terminal.

Each use case takes the Signpost context and plain arguments, writes its audit event through the
one factory with ``Origin.TERMINAL`` (``who`` is the operator's local account), and returns a
result for the command line to print. bot/cli parses arguments and prints; it runs no SQL.
"""
