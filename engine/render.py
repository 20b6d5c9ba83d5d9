"""Jinja rendering of invoices and rate cards from the templates in reports/.

The environment is sandboxed (templates are edited by analysts and may come from a rules
repository, so a template must not reach Python internals), HTML is autoescaped, and undefined
names fail loudly with the template's file and line instead of rendering as blanks. Output size,
the sizes of what a template builds and rendering time are bounded (`templatelimits`).
"""

from __future__ import annotations

import re
import types
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from jinja2.runtime import Macro, missing
from markupsafe import Markup
from jinja2.sandbox import ImmutableSandboxedEnvironment

from . import resources
from . import templatelimits as limits_module
from .bill import Bill
from .displaytext import visible
from .errors import RatecardError
from .formatting import charge_label
from .i18n import DEFAULT_LOCALE, DocumentFormat, ljust, rjust, text_width, translations
from .invoice import invoice_meta
from .ratecard_terms import book_terms, category_terms, tier_price

FORMATS = {"text": "txt", "markdown": "md", "html": "html"}


class TemplateError(RatecardError):
    """A template that fails to load or render, located at its file and line."""


def _is_html(name: str | None) -> bool:
    return name is not None and (name.endswith(".html") or ".html." in name)


# Parentheses stay: without `[`/`]` they make no link, and entry reasons hold many of them.
_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_{}[]#+!|~"} | {"<": "&lt;", ">": "&gt;", "&": "&amp;"})


def _plain(message) -> str:
    """A translated message as plain text, so that autoescaping writes its `<`, `>` and `&` as text:
    newstyle gettext marks a message as markup (its variables escaped), right for HTML-only messages."""
    return Markup(message).unescape()


def _md(value) -> str:
    """Text from the data (an account id, an API name) made inert in Markdown: a Markdown invoice is
    often turned into HTML, where `<script>` or a `|` in a table cell would do harm; a line break
    would end the table row, so it is shown as U+FFFD like any other control character."""
    return visible(str(value)).translate(_MD_SPECIAL)


def _code(value) -> str:
    """Text from the data as a Markdown code span: shown literally (a code span does not interpret
    Markdown or HTML), fenced by more backticks than it holds so that it cannot end the span."""
    text = visible(str(value))
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


class _Sandbox(ImmutableSandboxedEnvironment, limits_module.LimitedEnvironment):
    """Jinja's immutable sandbox, deciding once per type and attribute name, and bounded.

    Whether a template may read ``obj.name`` depends only on the type of `obj` and on `name`
    (`jinja2.sandbox.is_internal_attribute`, `modifies_known_mutable`, the leading underscore), so
    the verdict is kept per (type, name). An invoice reads about a hundred attributes of a dozen
    types, and the checks made each read cost more than the rest of the rendering: the same
    answers, remembered, halve the time of a text invoice. The sandbox's own checks stay in
    charge of every new pair, and of calls and str.format.

    The sandbox keeps a template from Python's internals, not from asking for a billion of
    something: `templatelimits` bounds output, what a template builds, and rendering time.
    """

    code_generator_class = limits_module.BoundedCodeGenerator
    template_class = limits_module.BoundedTemplate
    intercepted_binops = limits_module.INTERCEPTED_BINOPS

    def __init__(self, *args, limits: limits_module.TemplateLimits = limits_module.DEFAULT_LIMITS, **kwargs):
        self.limits = limits
        super().__init__(*args, **kwargs)
        self._verdicts: dict[tuple[type, str], bool] = {}
        # ratecard's gettext functions (`_direct_gettext`), called without the checks a template's own
        # callables need; None until installed.
        self._alias: Any = None
        self._gettext: Any = None
        self._ngettext: Any = None
        self._catalog_gettext: Any = None
        self.globals["lipsum"] = limits_module.bounded_lipsum(limits, self.globals["lipsum"])

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        key = (type(obj), attr)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self._verdicts[key] = super().is_safe_attribute(obj, attr, value)
        return verdict

    def getattr(self, obj, attribute: str):
        """`obj.attribute` in a template: `SandboxedEnvironment.getattr` in one frame (a text invoice
        reads a hundred attributes). The same steps in the same order: the attribute, else the item;
        a str.format method wrapped; the verdict for (type, name), refused as unsafe when it says so."""
        try:
            value = getattr(obj, attribute)
        except AttributeError:
            try:
                return obj[attribute]
            except (TypeError, LookupError):
                return self.undefined(obj=obj, name=attribute)
        kind = type(value)
        if kind is types.MethodType or kind is types.BuiltinMethodType:
            fmt = self.wrap_str_format(value)
            if fmt is not None:
                return fmt
        key = (type(obj), attribute)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = self.is_safe_attribute(obj, attribute, value)
        return value if verdict else self.unsafe_undefined(obj, attribute)

    def call_binop(self, context, operator, left, right):
        # A column width (`W - 58`) or a rule (`"-" * W`): what check_binop, decimal_binop and Jinja's
        # operator table do with two whole numbers added or subtracted, or a text repeated, in one step.
        kind = type(left)
        if kind is int and type(right) is int and (operator == "-" or operator == "+"):
            return left - right if operator == "-" else left + right
        if kind is str and type(right) is int and operator == "*" and len(left) * right <= self.limits.max_output:
            return left * right
        limits_module.check_binop(self.limits, operator, left, right)
        exact = limits_module.decimal_binop(operator, left, right)
        return super().call_binop(context, operator, left, right) if exact is None else exact

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (Jinja's own signature)
        if __obj is __self._alias:
            # `_()`, a third of a text invoice's calls: the alias, its `gettext` and the message in one
            # step, as `_direct_gettext`'s functions do them (a template's own `gettext` is called).
            limits_module.check_time(__self.limits)
            block_vars, loop_vars = kwargs.pop("_block_vars", None), kwargs.pop("_loop_vars", None)
            # The variables of the loop or block the call is in first, as in the context Jinja derives.
            found = block_vars.get("gettext", missing) if block_vars else missing
            if found is missing and loop_vars:
                found = loop_vars.get("gettext", missing)
            if found is missing:
                found = __context.resolve_or_missing("gettext")
            if found is __self._gettext:
                if len(args) != 1:
                    return found(__context, *args, **kwargs)  # the error gettext() gives
                rv = __self._catalog_gettext(args[0])  # what `gettext` does, one call fewer
                if __context.eval_ctx.autoescape:
                    rv = Markup(rv)
                return rv % kwargs
            # A template's own `gettext` (`{% set gettext = ... %}`), called in the context Jinja's alias
            # would call it in, and checked as any other call of the template's (Jinja's alias calls it
            # unchecked: `"a".center` as `gettext` made a text of any width).
            if loop_vars:
                __context = __context.derived(loop_vars)
            if block_vars:
                __context = __context.derived(block_vars)
            if found is missing:
                found = __context.environment.undefined(name="gettext")
            return __self.call(__context, found, *args, **kwargs)
        if __obj is __self._gettext or __obj is __self._ngettext:
            # ratecard's own, safe, building nothing a limit bounds; they read only the context's
            # autoescape, the same in a context derived for loop and block variables.
            limits_module.check_time(__self.limits)
            kwargs.pop("_loop_vars", None)
            kwargs.pop("_block_vars", None)
            return __obj(__context, *args, **kwargs)
        if type(__obj) is Macro:
            # A template's macro: nothing of Python's to reach (it has no `__self__`, and is not
            # marked unsafe), its own statements checked as they run. Called as `Context.call` calls
            # it (`Macro.__call__` takes the evaluation context).
            limits_module.check_time(__self.limits)
            kwargs.pop("_loop_vars", None)
            kwargs.pop("_block_vars", None)
            try:
                return __obj(__context.eval_ctx, *args, **kwargs)
            except StopIteration:
                return __context.environment.undefined("value was undefined because a callable raised a"
                                                       " StopIteration exception")
        limits_module.check_call(__obj, args, kwargs, __self.limits)
        return super().call(__context, __obj, *args, **kwargs)

    def wrap_str_format(self, value):
        if not isinstance(value, (types.MethodType, types.BuiltinMethodType)):
            return None  # every attribute read comes here: most are not methods
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        text, limits, is_map = value.__self__, self.limits, value.__name__ == "format_map"
        if not isinstance(text, str):  # Jinja wraps only str.format and str.format_map
            return wrapped

        def checked(*args, **kwargs):
            mapping = args[0] if is_map and args and isinstance(args[0], dict) else kwargs
            limits_module.check_format(text, () if is_map else args, mapping, limits)
            return wrapped(*args, **kwargs)

        return checked

    def concat(self, parts) -> str:
        return limits_module.bounded_concat(parts, self.limits)

    def bounded_iter(self, iterable):
        return limits_module.bounded_iter(self.limits, iterable)

    def bounded_join(self, joined: str) -> str:
        limits_module.check_size(joined, self.limits, "a text joined with ~")
        return joined

    def finalize_output(self, value):
        if type(value) is str:  # not Markup: a template's own HTML stays as it made it
            if len(value) > self.limits.max_output:
                limits_module.check_size(value, self.limits, "an output value")
            # An ANSI escape or bidi control recorded before names were checked at input shows as
            # U+FFFD in every format; line breaks and tabs stay, a template's layout may need them.
            # A printable text holds none of them (each is a control, format or separator character).
            return value if value.isprintable() else visible(value, keep_lines=True)
        limits_module.check_size(value, self.limits, "an output value")
        return value


def _direct_gettext(env: jinja2.Environment, catalog) -> None:
    """`_()`, `gettext()` and `ngettext()` as the i18n extension's newstyle ones, calling the catalog
    directly. Jinja's pass through the context's (sandboxed) `call` three times a message — `_`, then
    `gettext`, then the catalog's own method — and an invoice translates about sixty messages (the
    names macros translate their whole vocabulary on each use): the same texts, a third of the calls.
    The template's own call of `_()` still goes through the sandbox and its limits."""
    from jinja2 import pass_context

    raw = getattr(catalog, "ugettext", None) or catalog.gettext
    raw_n = getattr(catalog, "ungettext", None) or catalog.ngettext

    @pass_context
    def gettext(__context, __string: str, **variables):
        rv = raw(__string)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables  # always a format string, as Jinja's newstyle gettext

    @pass_context
    def ngettext(__context, __singular: str, __plural: str, __num: int, **variables):
        variables.setdefault("num", __num)
        rv = raw_n(__singular, __plural, __num)
        if __context.eval_ctx.autoescape:
            rv = Markup(rv)
        return rv % variables

    @pass_context
    def alias(__context, *args, **kwargs):
        found = __context.resolve("gettext")  # as Jinja's alias: a template's own `gettext` is used
        if found is gettext:
            return gettext(__context, *args, **kwargs)
        return __context.call(found, *args, **kwargs)

    env.globals.update(gettext=gettext, ngettext=ngettext, _=alias)
    if isinstance(env, _Sandbox):
        env._alias, env._gettext, env._ngettext, env._catalog_gettext = alias, gettext, ngettext, raw


def make_environment(template_dir: Path | None = None, *, sandboxed: bool = True,
                     locale: str = DEFAULT_LOCALE,
                     limits: limits_module.TemplateLimits = limits_module.DEFAULT_LIMITS,
                     reload: bool = True) -> jinja2.Environment:
    """The templates of `template_dir` (default: the shipped ones) writing in `locale`: its catalog's
    wording (`{% trans %}`, `_()`), its numbers, money and dates (the `count`, `amount`, `money`,
    `price`, `date` and `month` filters). Sandboxed, it refuses a template that reaches Python's
    internals or goes past `limits` (output size, sizes of what it builds, rendering time),
    reporting the template's file and line. `reload` false: each template file is read once, for a
    run that renders many documents from templates that must not change under it (Jinja otherwise
    looks at each file's time every time a template is used: three `stat`s a text invoice, a tenth
    of its rendering)."""
    options: dict[str, Any] = dict(
        loader=jinja2.FileSystemLoader(str(template_dir or resources.reports_dir())),
        auto_reload=reload,
        autoescape=_is_html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    sandbox = _Sandbox(limits=limits, **options) if sandboxed else None
    env = sandbox if sandbox is not None else jinja2.Environment(**options)
    # A `{% trans %}` block spread over lines is one message with single spaces, as extracted.
    env.policies["ext.i18n.trimmed"] = True
    catalog = translations(locale)
    env.install_gettext_translations(catalog, newstyle=True)  # type: ignore[attr-defined]  # added by the i18n extension
    _direct_gettext(env, catalog)
    fmt = DocumentFormat(locale)
    filters = dict(money=fmt.money, amount=fmt.amount, count=fmt.count, price=fmt.price, date=fmt.date,
                   month=fmt.month, ljust=ljust, rjust=rjust, width=text_width, md=_md, code=_code, plain=_plain,
                   part=lambda c, mode, unit="": charge_label(c, mode, unit, fmt))
    if sandbox is not None:
        env.finalize = sandbox.finalize_output
        env.filters.update({name: limits_module.bounded_filter(name, f, limits) for name, f in env.filters.items()})
        # ratecard's number and date filters make a short text of one value whatever they are given,
        # and run a hundred times an invoice: they go unwrapped.
        filters.update(ljust=limits_module.padding_filter(ljust, limits),
                       rjust=limits_module.padding_filter(rjust, limits),
                       **{name: limits_module.bounded_filter(name, filters[name], limits)
                          for name in ("md", "code", "plain", "width")})
    env.filters.update(filters)
    env.globals["locale"] = str(fmt.locale)
    env.globals["lang"] = str(fmt.locale).replace("_", "-")  # BCP 47, for <html lang>
    return env


@lru_cache(maxsize=8)
def _default_environment(locale: str = DEFAULT_LOCALE) -> jinja2.Environment:
    return make_environment(locale=locale)


def render(template_name: str, context: dict, env: jinja2.Environment | None = None,
           locale: str = DEFAULT_LOCALE) -> str:
    env = env or _default_environment(locale)
    try:
        return env.get_template(template_name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or exc.name}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.TemplateNotFound as exc:
        where = _template_location(exc, env, "")
        folders = ", ".join(getattr(env.loader, "searchpath", None) or [str(resources.reports_dir())])
        raise TemplateError(f"{where + ': ' if where else ''}template {exc.name} not found in {folders}") from None
    # Whatever a template's own expressions can raise (a sandbox refusal, 1/0, a range too big for
    # the sandbox, a missing key, runaway recursion) is the template's problem: located, no traceback.
    except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError,
            RecursionError, MemoryError) as exc:
        raise TemplateError(f"{_template_location(exc, env, template_name)}: {type(exc).__name__}: {exc}") from None


def _template_location(exc: BaseException, env, fallback: str) -> str:
    """The template file and line where rendering failed, from the traceback Jinja rewrites."""
    tb = exc.__traceback__
    where = fallback
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2") or filename.endswith(".html") or filename.endswith(".txt"):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def invoice_context(bill: Bill, policy, meta=None, seller=None, buyer=None, paper: str = "A4") -> dict:
    return {"bill": bill, "invoice": meta or invoice_meta(bill, policy), "seller": seller, "buyer": buyer,
            "paper": paper}


def render_invoice(bill: Bill, policy, fmt: str = "text", env=None, meta=None, seller=None, buyer=None,
                   paper: str = "A4") -> str:
    """`meta`: the recorded invoice's number and dates (`invoice.invoice_meta`); without it, a preview.
    `seller` and `buyer` (`model.Party`) print when known; `paper` is the PDF's page size."""
    if fmt not in FORMATS:
        raise RatecardError(f"unknown invoice format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    return render(f"invoice.{FORMATS[fmt]}.j2", invoice_context(bill, policy, meta, seller, buyer, paper), env,
                  policy.locale)


def render_document(view, fmt: str = "text", env=None, locale: str = DEFAULT_LOCALE) -> str:
    """A supplementary invoice or a credit note (`documents.DocumentView`)."""
    if fmt not in FORMATS:
        raise RatecardError(f"unknown document format {fmt!r}; expected one of: {', '.join(FORMATS)}")
    return render(f"correction.{FORMATS[fmt]}.j2", document_context(view), env, locale)


def document_context(view) -> dict:
    return {"doc": view, "seller": view.seller, "buyer": view.buyer, "paper": view.paper}


def rate_card_context(rules, period: str | None = None) -> dict:
    book, mapping, policy = rules.in_force(period) if period else rules.latest
    categories = []
    for cat in book.categories.values():
        tiers = []
        lower = 1
        for number, tier in enumerate(cat.tiers, 1):
            tiers.append({"number": number, "lower": lower, "up_to": tier.up_to, "unit_price": tier.unit_price,
                          "price_text": tier_price(cat, tier)})
            lower = (tier.up_to or 0) + 1
        categories.append({
            "id": cat.id, "name": cat.name, "description": cat.description, "tier_mode": cat.tier_mode,
            "tiers": tiers, "free_quota": cat.free_quota, "packs": cat.packs,
            "billable_apis": mapping.apis_of(cat.id, billable=True),
            "free_apis": mapping.apis_of(cat.id, billable=False),
            "model": cat.model, "terms": category_terms(cat, book.currency),
        })
    max_tiers = max(len(c["tiers"]) for c in categories)
    same_bounds = len({tuple(t["up_to"] for t in c["tiers"]) for c in categories}) == 1
    return {"rules": rules, "book": book, "mapping": mapping, "policy": policy, "categories": categories,
            # of the versions shown, as a bill records it: a later version does not change this card
            "fingerprint": rules.fingerprint_of(book, mapping, policy),
            "max_tiers": max_tiers, "same_bounds": same_bounds, "book_terms": book_terms(book),
            "billable_error_codes": sorted(mapping.billable_error_codes)}


def render_rate_card(rules, fmt: str = "markdown", period: str | None = None, env=None) -> str:
    ext = {"markdown": "md", "html": "html"}.get(fmt)
    if ext is None:
        raise RatecardError(f"unknown rate card format {fmt!r}; expected markdown or html")
    context = rate_card_context(rules, period)
    return render(f"ratecard.{ext}.j2", context, env, context["policy"].locale)


def rate_card_document(rules, period: str | None = None) -> dict:
    """The rate card as data: what the HTML and Markdown cards show, with exact decimals as strings."""
    from .bill import money
    from .exact import decimal_text

    c = rate_card_context(rules, period)
    book = c["book"]
    return {
        "rules": {"name": rules.name, "fingerprint": c["fingerprint"],
                  "versions": {"pricing": book.effective_from.isoformat(),
                               "api-mapping": c["mapping"].effective_from.isoformat(),
                               "settlement": c["policy"].effective_from.isoformat()}},
        "currency": book.currency, "unit": book.unit, "tier_mode": book.tier_mode,
        "time_zone": c["policy"].time_zone,
        "categories": [{
            "id": cat["id"], "name": cat["name"], "description": cat["description"], "tier_mode": cat["tier_mode"],
            "tiers": [{"tier": t["number"], "from": t["lower"], "up_to": t["up_to"],
                       "unit_price": decimal_text(t["unit_price"])} for t in cat["tiers"]],
            "free_quota": cat["free_quota"],
            "packs": [{"units": p.units, "price": money(p.price)} for p in cat["packs"]],
            "billable_apis": list(cat["billable_apis"]), "free_apis": list(cat["free_apis"]),
        } for cat in c["categories"]],
        "billable_error_codes": c["billable_error_codes"],
    }
