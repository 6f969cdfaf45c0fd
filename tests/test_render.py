from edgeprune.commands.render import si, table


def test_si():
    assert si(1_428_061_363_200) == "1.428T"
    assert si(560_091_234_304) == "560.1G"
    assert si(1728) == "1.728K"
    assert si(12) == "12"
    assert si(0) == "0"


def test_table_aligns_columns():
    out = table(["name", "n"], [["a", 1], ["bbb", 22]])
    assert out.splitlines() == ["name   n", "----  --", "a      1", "bbb   22"]
