"""Jinja2 templates for flow texts, rendered in a sandbox.

Every text a flow says is a Jinja2 template written by the flow's author; what a contact
typed only ever arrives as a *value* in the render context (``slots``, each slot by its own
name), never as template code. Rendering runs in :class:`jinja2.sandbox.SandboxedEnvironment`
so a template cannot reach Python internals (``''.__class__.__mro__`` and the like raise).

Choices that matter for SMS and IVR:

- ``autoescape=False``: SMS is not HTML, "R&D" must stay "R&D". (XML call instructions
  escape what they embed themselves, in the voice renderers.)
- ``StrictUndefined``: a misspelt variable is an error, never an empty string sent to
  thousands of people. ``{% if x is defined %}`` still works for optional slots.
- Filters ``date``, ``time`` and ``number`` format for the contact's language, taken from
  the render context (``contact.lang``, else a top-level ``lang``), via
  :mod:`convo.flow.i18n`.

The loader uses the static helpers (:meth:`Templates.syntax_error`,
:meth:`Templates.undeclared`, :meth:`Templates.attribute_uses`, ...) to find every template
problem at load time; the engine uses :meth:`Templates.render` and
:meth:`Templates.evaluate` (``then: - if:`` conditions) at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.parser import Parser
from jinja2.sandbox import SandboxedEnvironment

from convo.exceptions import FlowRuntimeError
from convo.flow.yamlnodes import closest

# Compiled templates are cached by source. Sources come from flow files, so the set is
# small; the bound only guards against a caller rendering ever-new strings.
_CACHE_LIMIT = 4096
# Tags that read another template: flow texts have no loader, so these fail at load.
_OTHER_TEMPLATES = (nodes.Include, nodes.Extends, nodes.Import, nodes.FromImport)
DEFAULT_LANG = "en"


def _abbrev(source: str, limit: int = 60) -> str:
    """``source`` on one line, cut to ``limit`` characters, for error messages."""
    flat = " ".join(source.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def context_lang(context: Mapping[str, Any] | jinja2.runtime.Context) -> str:
    """The contact's language in a render context: ``contact.lang``, else ``lang``."""
    contact = context.get("contact")
    lang: Any = None
    if isinstance(contact, Mapping):
        lang = contact.get("lang")
    elif contact is not None:
        lang = getattr(contact, "lang", None)
    if not lang:
        lang = context.get("lang")
    return str(lang) if lang else DEFAULT_LANG


# The filters import convo.flow.i18n lazily: it is an optional neighbour (babel-backed) and
# importing it at module load would make every template user pay for it.


@jinja2.pass_context
def _date_filter(ctx: jinja2.runtime.Context, value: Any, fmt: str = "long") -> str:
    from convo.flow.i18n import format_date

    return format_date(value, context_lang(ctx), fmt=fmt)


@jinja2.pass_context
def _time_filter(ctx: jinja2.runtime.Context, value: Any) -> str:
    from convo.flow.i18n import format_time

    return format_time(value, context_lang(ctx))


@jinja2.pass_context
def _number_filter(ctx: jinja2.runtime.Context, value: Any, decimals: int | None = None) -> str:
    from convo.flow.i18n import format_number

    return format_number(value, context_lang(ctx), decimals=decimals)


# What a template can do wrong at run time. Anything else is a bug in convo and propagates.
# Anything that fails inside a flow author's template (a filter given None, a method of a
# value raising) is that template's failure, reported as such, never a crash of the turn.
_RENDER_ERRORS = (Exception,)


def _nothing_for_none(value: Any) -> Any:
    return "" if value is None else value


class Templates:
    """A sandboxed Jinja2 environment with caches and load-time analysis helpers."""

    def __init__(self) -> None:
        self.env = SandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=False,
            # A slot that is not set yet is None: it renders as nothing, not as "None".
            finalize=_nothing_for_none,
        )
        self.env.filters["date"] = _date_filter
        self.env.filters["time"] = _time_filter
        self.env.filters["number"] = _number_filter
        # The context of a render is the caller's dict laid over these (see ``render``).
        self._globals = dict(self.env.globals)
        self._templates: dict[str, jinja2.Template] = {}
        self._expressions: dict[str, Callable[..., Any]] = {}

    @property
    def global_names(self) -> frozenset[str]:
        """Names every template may use without declaring them (``range``, ``dict``, ...)."""
        return frozenset(self.env.globals)

    # -- run time -------------------------------------------------------------------------

    def render(self, source: str, context: Mapping[str, Any]) -> str:
        """Render template ``source`` with ``context``.

        Raises FlowRuntimeError (naming the abbreviated template) when the source does not
        compile, uses an undefined variable, trips the sandbox, or a filter refuses a value.
        """
        if "{" not in source and "\r" not in source:
            # No Jinja2 syntax at all (most texts): the output is the text itself, less the
            # one trailing newline Jinja2 drops. Skips the context set-up.
            return source.removesuffix("\n")
        try:
            template = self._templates.get(source)
            if template is None:
                template = self.env.from_string(source)
                self._remember(self._templates, source, template)
            # What Template.render does, less flattening the globals: Jinja2 keeps them in a
            # ChainMap that it copies into a new dict and a new set for every render (about
            # two thirds of the cost of rendering a short SMS text). The set serves only
            # templates used as modules (``{% import %}``), which flows cannot do.
            variables = {**self._globals, **context}
            ctx = self.env.context_class(self.env, variables, template.name, template.blocks)
            return self.env.concat(template.root_render_func(ctx))
        except _RENDER_ERRORS as exc:
            raise FlowRuntimeError(f"template {_abbrev(source)!r} failed: {exc}") from exc

    def evaluate(self, expression: str, context: Mapping[str, Any]) -> Any:
        """Evaluate a Jinja2 expression (a ``then: - if:`` condition) with ``context``.

        An expression whose result is undefined (``slots.x`` with no slot ``x`` yet) gives
        None; using an undefined value (``slots.x == 1``) raises. Raises FlowRuntimeError
        like :meth:`render`.
        """
        try:
            compiled = self._expressions.get(expression)
            if compiled is None:
                compiled = self.env.compile_expression(expression)
                self._remember(self._expressions, expression, compiled)
            return compiled(**dict(context))
        except _RENDER_ERRORS as exc:
            raise FlowRuntimeError(f"expression {_abbrev(expression)!r} failed: {exc}") from exc

    @staticmethod
    def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = value

    # -- load time ------------------------------------------------------------------------

    def syntax_error(self, source: str) -> tuple[int, str] | None:
        """``(line in the template, message)`` when ``source`` does not compile, else None.

        Unknown filters and tests are errors here (Jinja2 itself defers those inside an
        ``if`` to render time). A flow text stands alone: ``include``, ``extends`` and
        ``import`` have no loader to read from."""
        try:
            tree = self.env.parse(source)
            if unknown := self._unknown_name(tree):
                return unknown
            self.env.compile(tree)
        except jinja2.TemplateSyntaxError as exc:  # TemplateAssertionError too
            return exc.lineno, exc.message or str(exc)
        for node in tree.find_all(_OTHER_TEMPLATES):
            return node.lineno, "a flow text cannot include, extend or import other templates"
        return None

    def expression_error(self, expression: str) -> str | None:
        """The message when ``expression`` is not a valid Jinja2 expression, else None."""
        try:
            tree = self._parse_expression(expression)
            if unknown := self._unknown_name(tree):
                return unknown[1]
            self.env.compile(tree)
        except jinja2.TemplateSyntaxError as exc:  # TemplateAssertionError too
            return exc.message or str(exc)
        return None

    def _unknown_name(self, tree: nodes.Template) -> tuple[int, str] | None:
        for node in tree.find_all((nodes.Filter, nodes.Test)):
            is_filter = isinstance(node, nodes.Filter)
            known = self.env.filters if is_filter else self.env.tests
            if node.name not in known:
                kind = "filter" if is_filter else "test"
                close = closest(node.name, known)
                hint = f" (did you mean {close!r}?)" if close else ""
                return node.lineno, f"No {kind} named {node.name!r}.{hint}"
        return None

    def undeclared(self, source: str) -> set[str]:
        """Names ``source`` reads but does not define itself (``{% set %}``, loops).

        Jinja2's globals (``range``, ``dict``, ...) are left out. A source that does not
        compile gives an empty set (:meth:`syntax_error` reports it).
        """
        try:
            tree = self.env.parse(source)
            names = meta.find_undeclared_variables(tree)
        except jinja2.TemplateSyntaxError:
            return set()
        return set(names) - self.global_names

    def undeclared_in_expression(self, expression: str) -> set[str]:
        """Like :meth:`undeclared`, for an expression."""
        try:
            names = meta.find_undeclared_variables(self._parse_expression(expression))
        except jinja2.TemplateSyntaxError:
            return set()
        return set(names) - self.global_names

    def attribute_uses(self, source: str, *, expression: bool = False) -> set[tuple[str, str]]:
        """Every ``name.attr`` / ``name["attr"]`` read directly on a variable.

        ``{{ params.patient }}`` gives ``("params", "patient")``; the loader checks these
        against the declared params and slots. A source that does not compile gives an
        empty set.
        """
        try:
            tree = self._parse_expression(source) if expression else self.env.parse(source)
        except jinja2.TemplateSyntaxError:
            return set()
        out: set[tuple[str, str]] = set()
        for get in tree.find_all(nodes.Getattr):
            if isinstance(get.node, nodes.Name):
                out.add((get.node.name, get.attr))
        for item in tree.find_all(nodes.Getitem):
            arg = item.arg
            if (
                isinstance(item.node, nodes.Name)
                and isinstance(arg, nodes.Const)
                and isinstance(arg.value, str)
            ):
                out.add((item.node.name, arg.value))
        return out

    def _parse_expression(self, expression: str) -> nodes.Template:
        """The AST of ``expression``, wrapped as Jinja2's ``compile_expression`` does."""
        parser = Parser(self.env, expression, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise jinja2.TemplateSyntaxError(
                f"unexpected {token.value!r} after the expression", token.lineno
            )
        assign = nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)
        tree = nodes.Template([assign], lineno=1)
        tree.set_environment(self.env)
        return tree


TEMPLATES = Templates()
"""The shared instance the engine and the loader use."""
