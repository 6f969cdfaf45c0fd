"""One module per CLI command (the click commands in :mod:`edgeprune.cli` call one function each), and the
human-readable tables they print (``render``). The top layer: nothing in the library imports it."""
