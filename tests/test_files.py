import pytest

from edgeprune.core.errors import FileFormatError
from edgeprune.core.files import field, read_json


def test_reads_an_object_with_its_keys_and_format(tmp_path):
    p = tmp_path / "a.json"
    p.write_text('{"format": "x", "a": 1}')
    assert read_json(p, "thing", required=["a"], format="x") == {"format": "x", "a": 1}


@pytest.mark.parametrize("text, message", [
    (None, "thing '{p}' does not exist"),
    ('{"a": 1', "thing '{p}' is not valid JSON (Expecting ',' delimiter at line 1); it is corrupt or truncated: "
                "delete it or give another file"),
    ("[1, 2]", "thing '{p}' holds a JSON list, not a JSON object: it is not a thing"),
    ('{"format": "y", "a": 1}', "thing '{p}' is not a thing (format 'y', expected 'x')"),
    ('{"format": "x"}', "thing '{p}' lacks 'a': it is not a thing this edgeprune writes"),
    (b"\xff\xfe\x00", "thing '{p}' cannot be read (UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff in "
                       "position 0: invalid start byte)"),
])
def test_every_bad_file_is_one_line_that_names_it(tmp_path, text, message):
    p = tmp_path / "a.json"
    if isinstance(text, bytes):
        p.write_bytes(text)
    elif text is not None:
        p.write_text(text)
    with pytest.raises(FileFormatError) as info:
        read_json(p, "thing", required=["a"], format="x")
    assert str(info.value) == message.format(p=p)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(FileFormatError, match="cannot be read"):
        read_json(tmp_path, "thing")


def test_lists_are_allowed_when_asked_for(tmp_path):
    p = tmp_path / "a.json"
    p.write_text("[1]")
    assert read_json(p, "list", kind=list) == [1]


def test_field_checks_types(tmp_path):
    assert field({"n": 3}, "n", int, "thing", "p") == 3
    with pytest.raises(FileFormatError, match="field 'n' is True"):
        field({"n": True}, "n", int, "thing", "p")
    with pytest.raises(FileFormatError, match="field 'n' is None"):
        field({}, "n", int, "thing", "p")
