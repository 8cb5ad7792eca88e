"""Which flow file a ``FLOW`` argument names: a path to a flow file, or a flow id.

A :class:`FlowCatalog` maps each flow id to its file for a list of flow paths (files, and
folders searched recursively, as :func:`~convo.flow.loader.discover` finds them: never a
conversation-test file, whatever its name). The id of a file is the text of its top-level
``flow:`` key, read from the YAML parser's events without building the document, so
building a catalog stays cheap enough for every ``convo test`` and ``convo chat``.

Resolution rules (:func:`resolve`):

* a reference ending in ``.yaml`` / ``.yml``, or containing a ``/``, is a path, relative to
  ``base`` (the current directory by default). It must be an existing file and not a
  conversation-test file; whether it is a valid flow is for the loader to say, with
  positions;
* anything else is a flow id, matched exactly against the ``flow:`` keys of the catalogs'
  files, the first catalog that has it winning. The file name plays no part: a file without
  a readable ``flow:`` id is no flow, and an unknown id whose name matches such a file says
  so;
* two files of one catalog declaring the same id are an error naming both, as the server
  refuses them (``convo.flow.loader.load_flows``);
* an unknown id is an error listing the paths searched and the ids found, with the nearest
  id when one is close.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from convo.exceptions import ConfigError, FlowRuntimeError
from convo.flow.loader import discover, is_conversation_test, top_level_scalars

__all__ = ["FlowCatalog", "declared_id", "flow_file", "is_path_ref", "resolve"]

FLOW_SUFFIXES = (".yaml", ".yml")


def declared_id(path: Path) -> str | None:
    """The flow id ``path`` declares (its top-level ``flow:`` text), or None when it has none
    that can be read: no such key, not a text, unreadable file or broken YAML before it."""
    for key, value in top_level_scalars(path):
        if key == "flow":
            return value or None
    return None


def is_path_ref(ref: str) -> bool:
    """Whether a ``FLOW`` argument is a path (ends in .yaml/.yml or has a ``/``) rather than
    a flow id. Flow ids are plain names, so the two never overlap."""
    return ref.endswith(FLOW_SUFFIXES) or "/" in ref or "\\" in ref


def flow_file(path: Path) -> Path:
    """``path`` when it is an existing file and not a conversation test; else
    FlowRuntimeError saying which of the two it is not."""
    if not path.is_file():
        what = "a folder, not a flow file" if path.is_dir() else "no such file"
        raise FlowRuntimeError(f"flow file {path}: {what}")
    if is_conversation_test(path):
        raise FlowRuntimeError(f"{path} is a conversation-test file, not a flow")
    return path


class FlowCatalog:
    """The flow files found in ``paths``, by the flow id each declares.

    Folders are searched recursively, or only for their own files when ``recursive`` is
    false. Paths that do not exist are searched as empty (a project without ``./flows`` has
    no flows, not an error). Raises ConfigError when two files declare the same id, naming
    both: ids must be unique wherever they are looked up.
    """

    def __init__(self, paths: Sequence[str | Path], *, recursive: bool = True) -> None:
        self.paths: tuple[Path, ...] = tuple(Path(p) for p in paths)
        files: dict[str, Path] = {}
        unnamed: list[Path] = []
        for path in discover([q for p in self.paths if p.exists() for q in _listed(p, recursive)]):
            flow_id = declared_id(path)
            if flow_id is None:
                unnamed.append(path)
            elif flow_id in files and files[flow_id].resolve() != path.resolve():
                raise ConfigError(
                    f"flow id {flow_id!r} is used by both {files[flow_id]} and {path} "
                    "(hint: give each flow file its own flow: id)"
                )
            else:
                files.setdefault(flow_id, path)
        self._files = files
        # Files that declare no readable flow id: no flows, but named in "unknown id" errors.
        self.unnamed: tuple[Path, ...] = tuple(unnamed)

    @classmethod
    def from_config(cls, config: str | Path | None = None) -> FlowCatalog:
        """The catalog of ``flows.paths`` of the configuration: ``config``, else
        ``$CONVO_CONFIG``, else ``./convo.toml``, else the default ``./flows``. Relative flow
        paths are relative to the current directory, as for ``convo serve``."""
        from convo.config import load_settings

        return cls(load_settings(config).flows.paths)

    @property
    def files(self) -> Mapping[str, Path]:
        """Flow id -> flow file, in the order found."""
        return MappingProxyType(self._files)

    def ids(self) -> list[str]:
        """Every flow id found, sorted."""
        return sorted(self._files)

    def get(self, flow_id: str) -> Path | None:
        """The file declaring ``flow_id``, or None."""
        return self._files.get(flow_id)

    def resolve(self, ref: str, *, base: Path | None = None) -> Path:
        """The flow file ``ref`` names (see the module docstring): :func:`resolve` over this
        catalog alone."""
        return resolve(ref, [self], base=base)


def _listed(path: Path, recursive: bool) -> list[Path]:
    """``path`` itself, or for a folder searched alone its own flow-looking files."""
    if recursive or not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir() if p.suffix in FLOW_SUFFIXES and p.is_file())


def resolve(ref: str, catalogs: Sequence[FlowCatalog], *, base: Path | None = None) -> Path:
    """The flow file ``ref`` names: a path (relative to ``base``, else the current
    directory) checked by :func:`flow_file`, or a flow id looked up in ``catalogs`` in
    order. Raises FlowRuntimeError for a bad path or an unknown id."""
    if is_path_ref(ref):
        return flow_file(base / ref if base is not None else Path(ref))
    for catalog in catalogs:
        found = catalog.get(ref)
        if found is not None:
            return found
    raise FlowRuntimeError(_unknown(ref, catalogs))


def _unknown(ref: str, catalogs: Sequence[FlowCatalog]) -> str:
    searched = list(
        dict.fromkeys(str(p) if p.exists() else f"{p} (missing)" for c in catalogs for p in c.paths)
    )
    ids = sorted({i for c in catalogs for i in c.ids()})
    text = f"no flow with id {ref!r} in {', '.join(searched) or 'no flow paths'}"
    text += f" (flows found: {', '.join(ids)})" if ids else " (no flows found)"
    close = difflib.get_close_matches(ref, ids, n=1)
    if close:
        text += f"; did you mean {close[0]!r}?"
    # A file named like the id but declaring none is what the user most likely meant.
    namesakes = [p for c in catalogs for p in c.unnamed if p.stem == ref]
    if namesakes:
        text += f"; {namesakes[0]} has no flow: id"
    return text
