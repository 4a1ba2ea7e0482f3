"""Templates compiled once per language, with their literal messages translated at compile time.

A Settings page says about fifty `_("…")`; each was a call at render time (a catalog lookup, a Markup
built and formatted, its escaping): half the page's calls from its templates, about 8% of its CPU. The
words of a `_("literal")` never change within one language, so each language gets its own environment whose
parser output is rewritten before compilation: a `_("literal")` becomes constant markup (and Jinja's code
generator then merges it into the template's static text), a `_("literal", name=value)` a call that only
formats the already translated message. Messages from a variable, `ngettext` and everything else stay
calls. The output is the same as `web.i18n.page_gettext` gives; `pybabel extract` still reads the same
`_()` in the sources.

Hand-written because Jinja has no hook for it: its optimizer folds operators and pure filters on
constants, never a call, and the i18n extension only offers run-time gettext callables.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, nodes
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from db import i18n

FORMAT = "_translated"  # the global that formats a message translated at compile time


def format_translated(message: Markup, /, **variables: Any) -> Markup:
    """`_("literal", name=value)` once its message is translated: the values are escaped into it."""
    return message % variables


class _Translate(NodeTransformer):
    def __init__(self, locale: str) -> None:
        self.catalog = i18n.translations(locale)

    def visit_Call(self, call: nodes.Call) -> nodes.Node:
        node = self.generic_visit(call)
        if not isinstance(node, nodes.Call) or not _literal_gettext(node):
            return node
        message = Markup(self.catalog.gettext(node.args[0].value))  # type: ignore[attr-defined]
        if node.kwargs:
            return nodes.Call(
                nodes.Name(FORMAT, "load"), [nodes.MarkSafe(nodes.Const(message))], node.kwargs, None, None
            ).set_lineno(node.lineno)
        try:
            text = message % {}  # as page_gettext formats it: "%%" is "%"
        except (KeyError, ValueError, TypeError):
            return node  # a message that fails to format fails at render time, as before
        return nodes.MarkSafe(nodes.Const(text)).set_lineno(node.lineno)


def _literal_gettext(node: nodes.Call) -> bool:
    return (
        isinstance(node.node, nodes.Name)
        and node.node.name == "_"
        and len(node.args) == 1
        and isinstance(node.args[0], nodes.Const)
        and isinstance(node.args[0].value, str)
        and node.dyn_args is None
        and node.dyn_kwargs is None
    )


class LocaleEnvironment(Environment):
    """An environment for one language: every template it compiles has that language's words built in."""

    def __init__(self, locale: str, **options: Any) -> None:
        super().__init__(**options)
        self.locale = locale
        self.globals[FORMAT] = format_translated

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        translated: nodes.Template = _Translate(self.locale).visit(tree)
        translated.set_environment(self)  # the new nodes too
        return translated
