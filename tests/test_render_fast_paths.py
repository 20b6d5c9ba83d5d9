"""The sandbox's quick paths (engine/render.py `_Sandbox`) mean what Jinja's own steps mean.

The sandboxed environment reads attributes, calls `_()`, `gettext()`, `ngettext()` and macros, pads
columns and finalizes output values in fewer steps than Jinja's sandbox takes (issue 10: rendering
is most of `settle`). Each case here renders the same template in the sandboxed environment and in
the plain one, whose steps are Jinja's own (`Context.call`, `Environment.getattr`, the i18n alias),
and requires the same text or the same error; then what the sandbox must still refuse.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from ratecard.i18n import DocumentFormat
from ratecard.render import TemplateError, make_environment, render
from ratecard.templatelimits import TemplateLimits

MACRO = '{% macro m(s) %}<{{ s }}>{% endmacro %}'


class Shout(str):
    """A str subclass from the data: printed as it is, never taken for a plain text."""

    def __str__(self):
        return self.upper()


class Row:
    name = "search"
    calls = 3_000_001
    __secret = "hidden"

    def label(self, suffix):
        return self.name + suffix


SAME_AS_JINJA = [
    # `_()` resolves `gettext` where it is called: a loop's, a block's or the template's own binding
    MACRO + '{% for gettext in [m] %}{{ _("a") }}{% endfor %}{{ _("b") }}',
    MACRO + '{% for i in [1, 2] %}{% set gettext = m %}{{ _("a") }}{% endfor %}{{ _("b") }}',
    MACRO + '{% block b %}{% set gettext = m %}{{ _("a") }}{% endblock %}{{ _("c") }}',
    MACRO + '{% set gettext = m %}{{ _("a") }}{{ gettext("d") }}',
    MACRO + '{% set _ = m %}{{ _("a") }}',
    MACRO + '{% set ngettext = m %}{{ ngettext("a") }}',
    '{% for i in [1] %}{{ _("%(n)s of %(m)s", n=i, m=2) }}{{ ngettext("%(num)s day", "%(num)s days", i) }}{% endfor %}',
    '{{ _("100%% of %(x)s", x=3) }} {{ gettext("plain") }} {{ ngettext("one", "%(num)s many", 5) }}',
    '{% for i in [1] %}{% set x = i %}{{ _("%(x)s", x=x) }}{% endfor %}',
    # a context's own gettext, and a macro that translates
    '{{ _("Subtotal") }}',
    '{% macro t(v) %}{{ _(v) }}{% endmacro %}{% for v in ["a", "b"] %}{{ t(v) }}{% endfor %}',
    # macros: defaults, varargs, kwargs, caller, recursion, in loops with variables set
    '{% macro m(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}{{ m(1) }}{{ m(1, 3, 4, z=5) }}',
    '{% macro m(s) %}[{{ caller(s) }}]{% endmacro %}{% call(x) m("x") %}in{{ x }}{% endcall %}',
    '{% macro f(n) %}{{ n }}{% if n %}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(5) }}',
    MACRO + '{% for i in range(3) %}{% set j = i * 2 %}{{ m(j) }}{% endfor %}',
    # attributes: an object's, a dict's key as attribute, a method, str.format, missing ones
    '{{ row.name }} {{ row.calls }} {{ row.label("!") }} {{ d.key }} {{ d.items()|list }} {{ "{}-{}".format(1, 2) }}',
    '{{ d.missing is defined }} {{ row.missing is defined }} {{ (d.nested.deep if d.nested is defined) }}',
    '{{ row.missing }}',
    '{{ d.missing }}',
    # output values: Markup, a str subclass, numbers, None, containers, layout characters
    '{{ "<b>x</b>"|safe }} {{ shout }} {{ 3 }} {{ 2.5 }} {{ none }} {{ [1, "a"] }} {{ {"k": 1} }} {{ amount }}',
    '{{ "a\\tb\\nc" }} {{ "full\u3000width space" }} {{ "non\u00a0breaking" }}',
    # padding: texts, numbers, None, a str subclass, negative and zero widths, wide characters
    '{{ "ab"|ljust(5) }}|{{ 7|rjust(4) }}|{{ none|ljust(6) }}|{{ shout|rjust(6) }}|{{ "abc"|ljust(-3) }}|'
    '{{ "人脸"|ljust(6) }}|{{ [1]|rjust(5) }}|{{ "x"|ljust(0) }}',
]


@pytest.fixture(scope="module")
def environments():
    return make_environment(), make_environment(sandboxed=False)


def _outcome(env, text: str, **context):
    try:
        return env.from_string(text).render(**context)
    except Exception as error:  # the same error type and message
        return f"{type(error).__name__}: {error}"


@pytest.mark.parametrize("text", SAME_AS_JINJA)
def test_the_sandbox_renders_what_jinja_renders(environments, text):
    sandboxed, plain = environments
    context = dict(row=Row(), d={"key": "value"}, shout=Shout("loud"), amount=Decimal("1.50"))
    expected = _outcome(plain, text, **context)
    assert _outcome(sandboxed, text, **context) == expected


def test_a_gettext_given_in_the_context_is_used_by_underscore(environments):
    for env in environments:
        assert env.from_string('{{ _("a") }}').render(gettext=lambda s: s.upper()) == "A"


def test_html_translations_escape_their_variables_as_jinja_does(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    (folder / "x.html.j2").write_text('{{ _("%(v)s!", v=v) }}|{{ gettext("<%(v)s>", v=v) }}|'
                                      '{{ ngettext("%(num)s <a>", "%(num)s <b>", 2) }}', encoding="utf-8")
    texts = {render("x.html.j2", {"v": "<i>"}, make_environment(folder, sandboxed=s)) for s in (True, False)}
    assert texts == {"&lt;i&gt;!|<&lt;i&gt;>|2 <b>"}


def test_output_values_unsafe_on_a_terminal_show_as_replacement_characters(environments):
    sandboxed, _ = environments
    text = sandboxed.from_string("{{ a }}|{{ b }}|{{ c }}").render(a="x\x1b[2Jy", b="bidi\u202eevil", c="\u3000ok\n")
    assert text == "x\ufffd[2Jy|bidi\ufffdevil|\u3000ok\n"


# -- what the sandbox still refuses, on every path ---------------------------------------------------

REFUSED = [
    ("{{ row._Row__secret }}", "unsafe"),
    ("{{ row.__class__ }}", "unsafe"),
    ("{{ row.label.__func__ }}", "unsafe"),
    ("{{ gettext.__globals__ }}", "unsafe"),
    ("{{ _.__code__ }}", "unsafe"),
    ("{{ lst.append(1) }}", "unsafe"),
    ("{{ d.update({'a': 1}) }}", "unsafe"),
    ("{% macro m() %}{% endmacro %}{{ m._func.__globals__ }}", "unsafe"),
    # a template's own gettext is called through the sandbox's checks, before it makes anything (Jinja's
    # alias called it unchecked: ten gigabytes of spaces, refused only once made)
    ('{% set gettext = "a".center %}{{ _(10**10) }}', r"the center\(\) width of 10,000,000,000"),
    ('{% set gettext = lst.append %}{{ _(1) }}', "unsafe"),
    ('{% for i in [1] %}{% set gettext = "a".ljust %}{{ _(10**10) }}{% endfor %}', r"the ljust\(\) width"),
    ('{% set gettext = "{:>10000000000}".format %}{{ _(1) }}', "a field width of 10,000,000,000"),
    # limits on padding and output
    ("{{ 'a'|ljust(10**10) }}", "TemplateLimitExceeded"),
    ("{{ 'a'|rjust(-10**10) }}", "TemplateLimitExceeded"),
    ("{{ ('x' * 2000)|ljust(3) }}", "TemplateLimitExceeded"),
    ("{{ ['x' * 600, 'y' * 600]|ljust(3) }}", "TemplateLimitExceeded"),
    ("{{ 'x' * 1001 }}", "TemplateLimitExceeded"),
    ("{{ ['x' * 600, 'y' * 600] }}", "TemplateLimitExceeded"),
]


@pytest.mark.parametrize("text, refusal", REFUSED)
def test_the_sandbox_still_refuses(tmp_path, text, refusal):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "evil.txt.j2").write_text("first line\n" + text + "\n", encoding="utf-8")
    env = make_environment(folder, limits=TemplateLimits(max_output=1000))
    with pytest.raises(TemplateError, match=r"evil\.txt\.j2:2: .*" + refusal):
        render("evil.txt.j2", {"row": Row(), "lst": [1], "d": {}}, env)


def test_the_plain_environment_would_not_refuse(tmp_path):
    # The cases above are refused by the sandbox, not by the template's own error.
    env = make_environment(sandboxed=False)
    assert env.from_string('{% set gettext = "a".center %}{{ _(5) }}').render() == "  a  "
    assert env.from_string("{{ row._Row__secret }}").render(row=Row()) == "hidden"


# -- remembered number and date texts ----------------------------------------------------------------

def test_remembered_texts_keep_values_that_are_equal_but_written_differently_apart():
    fmt = DocumentFormat("en")
    assert (fmt.count(1234), fmt.count(Decimal("1234.50")), fmt.count(1234)) == ("1,234", "1,234.5", "1,234")
    assert (fmt.amount(Decimal("1.5")), fmt.amount(Decimal("1.2345")), fmt.amount(1)) == ("1.50", "1.2345", "1.00")
    moment = datetime(2020, 9, 30, 20, tzinfo=timezone.utc)
    shifted = moment.astimezone(timezone(timedelta(hours=8)))  # equal to `moment`, another day
    assert fmt.date(moment) == "2020-09-30" and fmt.date(shifted) == "2020-10-01"
    assert fmt.date(date(2020, 9, 30)) == fmt.date("2020-09-30") == "2020-09-30"
    assert fmt.amount(Decimal("2"), "JPY") == "2" and fmt.amount(Decimal("2"), "USD") == "2.00"
