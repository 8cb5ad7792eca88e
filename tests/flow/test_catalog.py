"""The flow catalog: which file a flow id or a flow path names (convo.flow.catalog)."""

from __future__ import annotations

from pathlib import Path

import pytest

from convo.exceptions import ConfigError, FlowRuntimeError
from convo.flow.catalog import FlowCatalog, declared_id, resolve
from convo.flow.loader import discover, is_conversation_test, load_flows, top_level_scalars

FLOW = 'flow: {id}\nlanguages: [en]\nstart: a\nsteps:\n  a: {{say: "hi", end: true}}\n'
TEST = "flow: {id}\ncontact: {{lang: en}}\nturns:\n  - bot: hi\n  - end: true\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- what a file declares ------------------------------------------------------------------------


def test_top_level_scalars_reads_keys_without_building_the_document(tmp_path: Path) -> None:
    path = write(
        tmp_path / "f.yaml",
        "flow: 1\nstart: ~\nsteps:\n  flow: nested\n  turns: [x]\nlanguages: [en]\n"
        "---\n- turns: 1\n---\nturns: []\n",
    )
    assert list(top_level_scalars(path)) == [
        ("flow", "1"),  # read as text, as the flow reader does
        ("start", None),
        ("steps", None),
        ("languages", None),
        ("turns", None),  # the third document; the list document has no keys
    ]


def test_top_level_scalars_stops_quietly_at_broken_yaml(tmp_path: Path) -> None:
    path = write(tmp_path / "f.yaml", "flow: early\nsteps: [unclosed\nturns: 1\n")
    assert list(top_level_scalars(path)) == [("flow", "early"), ("steps", None)]
    assert list(top_level_scalars(tmp_path / "missing.yaml")) == []
    (tmp_path / "latin.yaml").write_bytes(b"flow: caf\xe9\n")
    assert list(top_level_scalars(tmp_path / "latin.yaml")) == []


def test_declared_id_is_the_top_level_flow_text(tmp_path: Path) -> None:
    assert declared_id(write(tmp_path / "a.yaml", FLOW.format(id="bakery"))) == "bakery"
    assert declared_id(write(tmp_path / "b.yaml", "flow: ~\n")) is None
    assert declared_id(write(tmp_path / "c.yaml", "flow: [a, b]\n")) is None
    assert declared_id(write(tmp_path / "d.yaml", "steps:\n  flow: x\n")) is None
    assert declared_id(write(tmp_path / "e.yaml", "flow: 'null'\n")) == "null"  # quoted: a text


def test_a_yaml_file_with_turns_is_a_conversation_test_whatever_its_name(tmp_path: Path) -> None:
    test = write(tmp_path / "bakery.yaml", "---\nname: x\nflow: bakery\nturns: []\n")
    flow = write(tmp_path / "bakery_flow.yaml", FLOW.format(id="bakery"))
    named = write(tmp_path / "x.test.yaml", "not: a test by content\n")
    assert is_conversation_test(test)
    assert is_conversation_test(named)
    assert not is_conversation_test(flow)
    assert discover([tmp_path]) == [flow]
    assert discover([test, flow]) == [flow]  # even when given by name


def test_load_flows_skips_a_conversation_test_named_like_a_flow(tmp_path: Path) -> None:
    write(tmp_path / "bakery.yaml", TEST.format(id="bakery"))
    write(tmp_path / "flows" / "bakery.yaml", FLOW.format(id="bakery"))
    assert {i: s.path for i, s in load_flows([tmp_path]).items()} == {
        "bakery": str(tmp_path / "flows" / "bakery.yaml")
    }


# -- the catalog ---------------------------------------------------------------------------------


def test_ids_come_from_the_flow_key_not_the_file_name(tmp_path: Path) -> None:
    flow = write(tmp_path / "flows" / "one.yaml", FLOW.format(id="bakery"))
    write(tmp_path / "flows" / "bakery.yaml", TEST.format(id="bakery"))  # its test, same name
    catalog = FlowCatalog([tmp_path / "flows"])
    assert dict(catalog.files) == {"bakery": flow}
    assert catalog.resolve("bakery") == flow
    with pytest.raises(FlowRuntimeError, match="no flow with id 'one'"):
        catalog.resolve("one")


def test_folders_are_searched_recursively_unless_told_otherwise(tmp_path: Path) -> None:
    top = write(tmp_path / "top.yaml", FLOW.format(id="top"))
    deep = write(tmp_path / "sub" / "deep.yaml", FLOW.format(id="deep"))
    assert dict(FlowCatalog([tmp_path]).files) == {"top": top, "deep": deep}
    assert dict(FlowCatalog([tmp_path], recursive=False).files) == {"top": top}


def test_two_files_with_one_id_are_an_error_naming_both(tmp_path: Path) -> None:
    first = write(tmp_path / "a" / "bakery.yaml", FLOW.format(id="bakery"))
    second = write(tmp_path / "b" / "shop.yaml", FLOW.format(id="bakery"))
    with pytest.raises(ConfigError) as info:
        FlowCatalog([tmp_path / "a", tmp_path / "b"])
    assert str(info.value) == (
        f"flow id 'bakery' is used by both {first} and {second} "
        "(hint: give each flow file its own flow: id)"
    )


def test_one_file_reached_twice_is_not_a_duplicate(tmp_path: Path) -> None:
    flow = write(tmp_path / "flows" / "bakery.yaml", FLOW.format(id="bakery"))
    catalog = FlowCatalog([tmp_path / "flows", flow.resolve(), flow])
    assert catalog.ids() == ["bakery"]


def test_an_unknown_id_names_the_paths_searched_and_the_ids_found(tmp_path: Path) -> None:
    write(tmp_path / "flows" / "bakery.yaml", FLOW.format(id="bakery"))
    write(tmp_path / "flows" / "butcher.yaml", FLOW.format(id="butcher"))
    catalog = FlowCatalog([tmp_path / "flows", tmp_path / "more"])
    with pytest.raises(FlowRuntimeError) as info:
        catalog.resolve("bakry")
    assert str(info.value) == (
        f"no flow with id 'bakry' in {tmp_path / 'flows'}, {tmp_path / 'more'} (missing) "
        "(flows found: bakery, butcher); did you mean 'bakery'?"
    )


def test_an_unknown_id_points_at_a_namesake_file_without_an_id(tmp_path: Path) -> None:
    notes = write(tmp_path / "notes.yaml", "languages: [en]\n")
    with pytest.raises(FlowRuntimeError) as info:
        FlowCatalog([tmp_path]).resolve("notes")
    assert str(info.value).endswith(f"(no flows found); {notes} has no flow: id")


def test_a_path_is_relative_to_its_base_and_must_be_a_flow_file(tmp_path: Path) -> None:
    flow = write(tmp_path / "flows" / "bakery.yaml", FLOW.format(id="bakery"))
    test = write(tmp_path / "flows" / "bakery.test.yaml", TEST.format(id="bakery"))
    catalog = FlowCatalog([])
    assert catalog.resolve("flows/bakery.yaml", base=tmp_path) == flow
    assert catalog.resolve("bakery.yaml", base=tmp_path / "flows") == flow
    with pytest.raises(FlowRuntimeError) as info:
        catalog.resolve("nope.yaml", base=tmp_path)
    assert str(info.value) == f"flow file {tmp_path / 'nope.yaml'}: no such file"
    with pytest.raises(FlowRuntimeError, match="flows: a folder, not a flow file"):
        catalog.resolve(str(tmp_path / "flows") + "/")
    with pytest.raises(FlowRuntimeError, match="is a conversation-test file, not a flow"):
        catalog.resolve(str(test))


def test_the_first_catalog_with_an_id_wins(tmp_path: Path) -> None:
    near = write(tmp_path / "near" / "bakery.yaml", FLOW.format(id="bakery"))
    far = write(tmp_path / "far" / "bakery.yaml", FLOW.format(id="bakery"))
    other = write(tmp_path / "far" / "other.yaml", FLOW.format(id="other"))
    catalogs = [FlowCatalog([tmp_path / "near"]), FlowCatalog([tmp_path / "far"])]
    assert resolve("bakery", catalogs) == near
    assert resolve("bakery", catalogs[::-1]) == far
    assert resolve("other", catalogs) == other
    with pytest.raises(FlowRuntimeError, match=r"\(flows found: bakery, other\)"):
        resolve("missing", catalogs)


def test_from_config_uses_the_flow_paths_of_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVO_CONFIG", raising=False)
    flow = write(tmp_path / "somewhere" / "flows" / "b.yaml", FLOW.format(id="bakery"))
    write(tmp_path / "flows" / "x.yaml", FLOW.format(id="default"))
    write(tmp_path / "site.toml", '[flows]\npaths = ["somewhere/flows"]\n')
    configured = FlowCatalog.from_config("site.toml")
    assert configured.paths == (Path("somewhere/flows"),)
    assert configured.resolve("bakery").resolve() == flow
    assert FlowCatalog.from_config(None).ids() == ["default"]  # no config: ./flows
