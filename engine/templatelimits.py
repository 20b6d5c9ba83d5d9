"""Resource bounds for sandboxed templates: output size, sizes of what a template builds, time.

Jinja's sandbox stops a template from reaching Python's internals, not from asking for a billion
of something: ``[1] * 10**9``, ``'a'|ljust(10**10)``, ``'{:>10000000000}'.format(1)`` or nested
loops over ``range(100000)`` would exhaust memory or never end. A template of a rules repository
is an analyst's file, so every operation through which it can make something big is bounded
before it runs, and rendering has a deadline checked at every loop step, call and output part.
A template that goes past a bound fails with `TemplateLimitExceeded`, which the renderer reports
at the template's file and line like any other template error.

What is measured is the *size* of a value: a string's characters, a collection's items plus the
sizes of what it holds (shared parts counted each time they appear, as printing it would).
"""

from __future__ import annotations

import contextvars
import decimal
import re
import string
import time
import types
from collections import ChainMap
from contextlib import contextmanager
from dataclasses import dataclass
from functools import update_wrapper
from itertools import islice

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.runtime import new_context
from jinja2.sandbox import SecurityError


@dataclass(frozen=True)
class TemplateLimits:
    """Bounds of one rendering. The defaults leave room for a statement of many thousand entries."""

    max_output: int = 16 * 2**20  # characters of a rendered document or of any text it builds
    max_items: int = 1_000_000  # items of a list, string or other collection a template builds
    max_seconds: float = 10.0  # wall-clock time of one rendering, included templates and macros
    max_int_bits: int = 64 * 1024  # size of a whole number a template computes (10**10**9 never ends)


DEFAULT_LIMITS = TemplateLimits()


class TemplateLimitExceeded(SecurityError):
    """A template asked for more than its limits allow."""


class _Rendering:
    """The budget of one rendering in progress: its deadline and the loop steps taken so far."""

    __slots__ = ("due", "steps")

    def __init__(self, due: float):
        self.due = due
        self.steps = 0


_active: contextvars.ContextVar = contextvars.ContextVar("ratecard_template_rendering", default=None)


@contextmanager
def deadline(limits: TemplateLimits):
    """The budget of one rendering; nested renderings (an include) share the outer one."""
    token = _started(limits)
    try:
        yield
    finally:
        if token is not None:
            _active.reset(token)


def _started(limits: TemplateLimits):
    """A rendering's clock started, unless one is running already (the outer rendering's counts): the
    token that stops it, or None."""
    return None if _active.get() is not None else _active.set(_Rendering(time.monotonic() + limits.max_seconds))


def check_time(limits: TemplateLimits) -> None:
    rendering = _active.get()
    if rendering is not None and time.monotonic() > rendering.due:
        raise TemplateLimitExceeded(f"rendering took longer than {limits.max_seconds:g} seconds; "
                                    "expected a template that renders one document quickly")


def size(value, limit: int) -> int:
    """A value's size as printing it would make it (see module docstring), counted no further than
    just past `limit` so that measuring a huge value stays cheap."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 1
        if total > limit:
            return total
    return total


_CONTAINERS = (list, tuple, set, frozenset, dict)


def check_size(value, limits: TemplateLimits, what: str = "a value") -> None:
    # Only text and built-in collections can be big: a number, a date or a model object prints
    # as what the data says. This runs on every filter argument and output value, so it is quick.
    if isinstance(value, str):
        if len(value) > limits.max_output:
            raise TemplateLimitExceeded(f"{what} would be larger than {limits.max_output:,} characters")
        return
    if not isinstance(value, _CONTAINERS) and not isinstance(value, bytes):
        return
    if not isinstance(value, bytes) and len(value) > limits.max_items:
        raise TemplateLimitExceeded(f"{what} would have {len(value):,} items, more than the limit of "
                                    f"{limits.max_items:,}")
    if size(value, limits.max_output) > limits.max_output:
        raise TemplateLimitExceeded(f"{what} would be larger than {limits.max_output:,} characters")


def _check_width(number, limits: TemplateLimits, what: str) -> None:
    if isinstance(number, int) and not isinstance(number, bool) and abs(number) > limits.max_output:
        raise TemplateLimitExceeded(f"{what} of {number:,} is larger than the limit of {limits.max_output:,}")


def _check_int(number, limits: TemplateLimits) -> None:
    if isinstance(number, int) and number.bit_length() > limits.max_int_bits:
        raise TemplateLimitExceeded(f"a whole number of more than {limits.max_int_bits:,} bits")


def _is_seq(value) -> bool:
    return isinstance(value, (str, bytes, list, tuple))


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- operators ------------------------------------------------------------------------------------

INTERCEPTED_BINOPS = frozenset({"*", "**", "%", "+", "-", "/"})

# Money shown on a document is computed (`balance - frozen`) in a context as wide as the engine's,
# never in Python's default 28 digits, which would round a large amount without a word.
_WIDE = decimal.Context(prec=200, traps=[decimal.InvalidOperation, decimal.Overflow, decimal.DivisionByZero])
_DECIMAL_OPS = {"+": _WIDE.add, "-": _WIDE.subtract, "*": _WIDE.multiply, "/": _WIDE.divide}


def decimal_binop(operator: str, left, right):
    """The result of a template's arithmetic on Decimals, in the wide context; None for other operands."""
    op = _DECIMAL_OPS.get(operator)
    if op is None or not (isinstance(left, decimal.Decimal) or isinstance(right, decimal.Decimal)):
        return None
    if not all(isinstance(x, (decimal.Decimal, int)) and not isinstance(x, bool) for x in (left, right)):
        return None  # a float or text: Python's own operator says what it says
    return op(left, right)


def check_binop(limits: TemplateLimits, operator: str, left, right) -> None:
    """Refuse an operation whose result would be past the limits, before it is computed."""
    if operator == "*":
        seq, times = (left, right) if _is_seq(left) and _is_int(right) else (right, left)
        if _is_seq(seq) and _is_int(times):
            if times > 0 and len(seq) * times > limits.max_items and not isinstance(seq, str):
                raise TemplateLimitExceeded(f"a sequence of {len(seq) * times:,} items, more than the limit of "
                                            f"{limits.max_items:,}")
            if times > 0 and size(seq, limits.max_output) * times > limits.max_output:
                raise TemplateLimitExceeded(f"a value larger than {limits.max_output:,} characters")
        elif _is_int(left) and _is_int(right) and left.bit_length() + right.bit_length() > limits.max_int_bits:
            raise TemplateLimitExceeded(f"a whole number of more than {limits.max_int_bits:,} bits")
    elif operator == "**":
        if _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1 \
                and (abs(left).bit_length() - 1) * right > limits.max_int_bits:
            raise TemplateLimitExceeded(f"a whole number of more than {limits.max_int_bits:,} bits")
    elif operator == "%" and isinstance(left, str):
        check_percent_format(left, right, limits)
    elif operator == "+" and _is_seq(left) and _is_seq(right):
        if not isinstance(left, str) and len(left) + len(right) > limits.max_items:
            raise TemplateLimitExceeded(f"a sequence of {len(left) + len(right):,} items, more than the limit of "
                                        f"{limits.max_items:,}")
        if isinstance(left, str) and len(left) + len(right) > limits.max_output:
            raise TemplateLimitExceeded(f"a text of more than {limits.max_output:,} characters")


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|[0-9]+)?(?:\.(\*|[0-9]+))?")


def check_percent_format(text: str, args, limits: TemplateLimits) -> None:
    values = args if isinstance(args, tuple) else (args,)
    for match in _PERCENT_SPEC.finditer(text):
        for part in match.groups():
            if part == "*":
                for value in values:
                    _check_width(value, limits, "a field width")
            elif part:
                _check_width(int(part), limits, "a field width")
    for value in values:
        check_size(value, limits, "a formatted value")


def check_format(text: str, args, kwargs, limits: TemplateLimits) -> None:
    """`str.format`: widths and precisions written in the format, or taken from the arguments."""
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # str.format reports a malformed format itself
    for _, _, spec, _ in fields:
        if not spec:
            continue
        if "{" in spec:  # a width given as an argument, e.g. '{:>{w}}'
            for value in (*args, *kwargs.values()):
                _check_width(value, limits, "a field width")
        for digits in re.findall(r"[0-9]+", spec):
            _check_width(int(digits), limits, "a field width")
    for value in (*args, *kwargs.values()):
        check_size(value, limits, "a formatted value")


# -- calls: methods of built-in types and globals -------------------------------------------------

_WIDTH_METHODS = {"center", "ljust", "rjust", "zfill", "expandtabs"}


def check_call(obj, args, kwargs, limits: TemplateLimits) -> None:
    check_time(limits)
    owner = getattr(obj, "__self__", None)
    if isinstance(obj, types.BuiltinMethodType) and isinstance(owner, (str, bytes, int, list, tuple, dict)):
        name = obj.__name__
        for value in (*args, *kwargs.values()):
            check_size(value, limits, "an argument")
            if name in _WIDTH_METHODS or isinstance(owner, int):  # int.to_bytes(10**10)
                _check_width(value, limits, f"the {name}() width")
        if name == "replace" and isinstance(owner, str) and len(args) >= 2 \
                and isinstance(args[0], str) and isinstance(args[1], str):
            found = owner.count(args[0]) if args[0] else len(owner) + 1
            if len(args) > 2 and _is_int(args[2]) and args[2] >= 0:
                found = min(found, args[2])
            if len(owner) + found * (len(args[1]) - len(args[0])) > limits.max_output:
                raise TemplateLimitExceeded(f"replace() would make a text of more than {limits.max_output:,} "
                                            "characters")
        if name == "join":
            for value in args:
                check_size(value, limits, "what is joined")


def bounded_lipsum(limits: TemplateLimits, lipsum):
    def bounded(n: int = 5, html: bool = True, min: int = 20, max: int = 100):
        for value in (n, min, max):
            _check_width(value, limits, "lipsum's size")
        if _is_int(n) and _is_int(max) and n * max > limits.max_output:
            raise TemplateLimitExceeded(f"lipsum() would be larger than {limits.max_output:,} characters")
        return lipsum(n=n, html=html, min=min, max=max)

    return bounded


# -- filters --------------------------------------------------------------------------------------

# Arguments that say how big the result is: (position after the value, keyword).
_FILTER_WIDTHS = {
    "center": (0, "width"), "indent": (0, "width"),
    "batch": (0, "linecount"), "slice": (0, "slices"), "tojson": (0, "indent"),
    "truncate": (0, "length"), "wordwrap": (0, "width"),
}


def padding_filter(pad, limits: TemplateLimits):
    """ratecard's `ljust`/`rjust` filters (column layout of text invoices), width-bounded."""

    most = limits.max_output

    def bounded(value, width):
        # The common case in one test: a text within the limits, a width within them (negative pads nothing).
        if type(value) is str and type(width) is int and len(value) <= most and -most <= width <= most:
            return pad(value, width)
        _check_width(width, limits, f"the {pad.__name__} filter's width")
        check_size(value, limits, f"the input of the {pad.__name__} filter")
        return pad(value, width)

    return update_wrapper(bounded, pad)


def bounded_filter(name: str, function, limits: TemplateLimits):
    """The filter, refusing oversized arguments before it runs and an oversized result after."""
    width = _FILTER_WIDTHS.get(name)
    passes_first = getattr(function, "jinja_pass_arg", None) is not None

    def bounded(*args, **kwargs):
        values = args[1:] if passes_first else args
        for value in (*values, *kwargs.values()):
            check_size(value, limits, f"the input of the {name} filter")
        if width is not None:
            position, keyword = width
            after = values[1 + position] if len(values) > 1 + position else kwargs.get(keyword)
            _check_width(after, limits, f"the {name} filter's {keyword}")
        if name == "format" and values and isinstance(values[0], str):
            check_percent_format(values[0], tuple(values[1:]) or tuple(kwargs.values()), limits)
        if name == "replace" and len(values) >= 3 and all(isinstance(v, str) for v in values[:3]):
            check_call(values[0].replace, values[1:], {}, limits)
        result = function(*args, **kwargs)
        check_size(result, limits, f"the result of the {name} filter")
        return result

    return update_wrapper(bounded, function)


# -- compiled templates: loops and ~ --------------------------------------------------------------

class BoundedCodeGenerator(CodeGenerator):
    """Every `{% for %}` iterates through `environment.bounded_iter` (the deadline, and a bound on
    the loop steps of the rendering) and every `~` checks the size of what it joined."""

    def visit_For(self, node: nodes.For, frame) -> None:
        if not _is_bounded(node.iter):
            node.iter = nodes.Call(nodes.EnvironmentAttribute("bounded_iter"), [node.iter], [], None, None,
                                   lineno=node.lineno)
        super().visit_For(node, frame)

    def visit_Call(self, node: nodes.Call, frame, forward_caller: bool = False) -> None:
        if _is_bounded(node):  # called directly: the sandbox's call() has nothing to check here
            self.write("environment.bounded_iter(")
            self.visit(node.args[0], frame)
            self.write(")")
            return
        super().visit_Call(node, frame, forward_caller=forward_caller)

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.bounded_join(")
        super().visit_Concat(node, frame)
        self.write(")")


def _is_bounded(node) -> bool:
    return isinstance(node, nodes.Call) and isinstance(node.node, nodes.EnvironmentAttribute) \
        and node.node.name == "bounded_iter"


_SIZED = (list, tuple, range, dict, str, set, frozenset)


def bounded_iter(limits: TemplateLimits, iterable):
    """Count a loop's steps against the rendering's budget of `max_items` (nested loops multiply),
    and look at the clock. A list or range is counted whole and iterated as it is, so that the
    common loop costs nothing per step; anything else is counted step by step."""
    check_time(limits)
    rendering = _active.get()
    if rendering is None:
        rendering = _Rendering(time.monotonic() + limits.max_seconds)
    if isinstance(iterable, _SIZED):
        rendering.steps += len(iterable)
        if rendering.steps > limits.max_items:
            raise TemplateLimitExceeded(f"the loops of this rendering would run more than {limits.max_items:,} "
                                        "steps")
        return iterable
    return _counted(iterable, rendering, limits)


def _counted(iterable, rendering: _Rendering, limits: TemplateLimits):
    for item in iterable:
        rendering.steps += 1
        if rendering.steps > limits.max_items:
            raise TemplateLimitExceeded(f"the loops of this rendering would run more than {limits.max_items:,} "
                                        "steps")
        if not rendering.steps & 255:
            check_time(limits)
        yield item


def bounded_concat(parts, limits: TemplateLimits) -> str:
    """Jinja's concat of rendered parts, stopping once the output passes its limit or the rendering
    its deadline (looked at every 256 parts: a part is small, the clock is not free). The error is
    thrown into the template's generator, so that it is reported at the template line that made
    the part."""
    if isinstance(parts, list):  # a macro's or block's buffer: already made, only its size to check
        joined = "".join(parts)
        check_size(joined, limits, "the output of a block or macro")
        return joined
    total = 0
    out: list = []
    while True:
        chunk = list(islice(parts, 256))
        if not chunk:
            return "".join(out)
        total += sum(map(len, chunk))
        out += chunk
        try:
            if total > limits.max_output:
                raise TemplateLimitExceeded(f"the output is larger than {limits.max_output:,} characters")
            check_time(limits)
        except TemplateLimitExceeded as error:
            if hasattr(parts, "throw"):
                parts.throw(error)
            raise


class LimitedEnvironment(jinja2.Environment):
    """An environment that carries its template limits (render._Sandbox is one)."""

    limits: TemplateLimits


class BoundedTemplate(jinja2.Template):
    """A template whose every rendering runs under its environment's deadline."""

    environment: LimitedEnvironment  # only a LimitedEnvironment makes BoundedTemplates (its template_class)

    def render(self, *args, **kwargs) -> str:
        # `deadline` without its context manager's frames: a text invoice is one rendering.
        token = _started(self.environment.limits)
        try:
            return super().render(*args, **kwargs)
        finally:
            if token is not None:
                _active.reset(token)

    def new_context(self, vars=None, shared: bool = False, locals=None):
        # Jinja's, with the template's globals (a ChainMap of its own over the environment's) made one
        # dict at C speed: Jinja copies them key by key through the ChainMap on every rendering. The
        # same keys, values and order (the template's own first in precedence, as the ChainMap has it).
        chained = self.globals
        if type(chained) is ChainMap and len(chained.maps) == 2 \
                and type(chained.maps[0]) is dict and type(chained.maps[1]) is dict:
            chained = {**chained.maps[1], **chained.maps[0]}
        return new_context(self.environment, self.name, self.blocks, vars, shared, chained, locals)

    def generate(self, *args, **kwargs):
        with deadline(self.environment.limits):
            yield from super().generate(*args, **kwargs)
