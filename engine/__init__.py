"""ratecard: a data-driven billing engine. Rules + usage in, exact bills out.

    import engine
    rules = engine.load_rules("rules/face-recognition")
    bill = engine.rate(rules, {"SearchFaces": 3_000_001}, period="2020-09")
    bill.total  # Decimal('1800.00')
"""

from .errors import (Location, NoRulesInForce, PeriodError, Problem, ProblemsError, RatecardError,
                     RatingError, RuleSetInvalid, UnknownApi, UsageInvalid)
from .model import RuleSet
from .rules import check_rules, load_rules

__all__ = [
    "Location", "NoRulesInForce", "PeriodError", "Problem", "ProblemsError", "RatecardError",
    "RatingError", "RuleSet", "RuleSetInvalid", "UnknownApi", "UsageInvalid", "check_rules",
    "load_rules",
]
