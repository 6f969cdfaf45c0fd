"""The text primitive every one-line user error uses for an exception's message."""

from edgeprune.core.text import one_line


def test_one_line_collapses_whitespace_and_cuts_to_the_limit():
    assert one_line("conversion failed:\n  op  Foo\tis\nunsupported") == "conversion failed: op Foo is unsupported"
    assert one_line("a b\nc d", 5) == "a b c"
    assert one_line("  \n ") == "" and one_line("x" * 10, None) == "x" * 10
