"""The hand-written part of docs/rules.md about price models and adjustments (issue 12): what
each rule means exactly, where the schemas can only say what may be written. `schemadoc` puts
it after the introduction."""

TEXT = """\
## Price models

Each category names its model with `model:` (default `tiered`). Every amount is exact; the only
rounding is the settlement policy's. A category's billable units go to its free quota and resource
packs first (tiered and package models); what is left is pay-as-you-go and alone is priced.

- **`tiered`** — a `unit_price` per tier, optionally a `flat_amount` per tier (Stripe's
  `flat_amount` + `unit_amount`). `volume` ("all units"): the period's pay-as-you-go units pick one
  tier; all of them cost its unit price, plus its flat amount once. `graduated`: each tier prices
  the units inside it, plus the flat amount of every tier *entered*. A tier may be a flat amount
  alone (`{up_to: 10000, flat_amount: 25}`: a platform fee that includes 10,000 units). Choice:
  a period with no pay-as-you-go units reaches and enters no tier, so no flat amount is charged.
- **`package`** — a price per block of units (Lago's package charge): `package: {size: 1000,
  price: 4}`, or a `package_size` and `package_price` per tier (blocks per tier). The units after
  `free_units` are cut into blocks, a part block counted by `rounding`: `up` (the default, as Stripe
  and Lago bill), `down` or `nearest` (half a block or more is a block). Volume mode: the units after
  the free ones pick the tier and are all cut into its blocks; graduated: each tier's own units are.
  Choice: tier bounds count the units after the free units, as with a free quota.
- **`percentage`** — a rate on the transaction amount the usage carries (the usage's `amount`
  column: the total amount of the row's calls). Flat form: `percentage: {rate: 2.9, fixed_fee: 0.30,
  per_transaction_min: 0.50, per_transaction_max: 25}`: each transaction costs `rate`% of its
  amount plus the fixed fee, held between the bounds. With bounds, a usage row's calls are taken as
  transactions of equal amount (amount ÷ calls, which must be exact), so give transactions of
  different amounts as separate rows (call records are). Graduated form: `percentage: {}` and tiers
  with a `rate` each, bounded by transaction amount (Lago's graduated percentage); the flat amount
  of every tier entered is added. A percentage category has no free quota and no packs; usage of
  it without an amount is refused.
- **Decimal units** — a category with `unit: {name: GB, precision: 3}` counts quantities with up
  to 3 decimal places (tier bounds, block sizes and free units too); more are refused, as bad usage
  rows. Every other category counts whole units (calls stay whole numbers).

Usage for rules that price transaction amounts or count in decimal units is read row by row, from
CSV or JSON Lines (not Parquet), with the same checks and reconciliation as any usage; a row with
an `amount` stays its own usage item. Rule sets of whole-unit prices keep the compiled usage query.

## Adjustments

After every category is priced, adjustments are applied in this order (OpenMeter's order of
"mutators": discounts, then commitments, then credits), each on what the category or bill comes
to after the steps before it (a line's charge: rounded in per-line mode):

1. **Category discounts** (`discounts` with a `category`), in the order written: `percent` of what
   the category comes to, or a fixed `amount` off (never more than what is left).
2. **Category spend limits**: `maximum_spend` takes off what is above it, then `minimum_spend` adds
   what is missing, for a category with any usage in the period.
3. **Bill discounts** (`discounts` without a `category`), in the order written, on the lines and
   steps 1-2.
4. **Minimum commitment** (`minimum_commitment`): when the bill comes to less, the shortfall is its
   own line (Lago's true-up fee).
5. **Credits** (`credits`), in the order written, as negative lines; each takes off at most what the
   bill still comes to, unless `below_zero: true` (then the bill may end negative).

A discount, commitment or credit applies in the billing periods its window covers: `from`
(YYYY-MM) and either `until` (inclusive) or `periods` (how many, counted from `from`); without
them, always. Two discounts on the same target (a category, or the bill) in the same terms must not
share a period: stack them in one discount instead. A discount's `percent` is above 0 and at most
100.

**Account terms.** A file of `kind: account-terms` gives named accounts their negotiated terms
(validated like every rule file, versioned by `effective_from`). For that account, each kind of
term it gives replaces the price book's list terms of that kind and target *in the periods the
account's own term covers*: its discounts on a category replace the book's discounts on that
category, its bill discounts the book's bill discounts, its `minimum_commitment` the book's, its
credits the book's credits, and its `minimum_spend`/`maximum_spend` of a category that category's
own limits. The version in force is recorded in the bill (`rules.versions.account-terms`) and in
its fingerprint.

Every adjustment is a line of the bill (`adjustments` in the JSON, a readable line on every
invoice) with its name, what it was worked out from and how.

## Tax

Tax comes last: after pricing, adjustments and the settlement policy's rounding of the total. A
rule set taxes its bills when a file of `kind: tax` is in force for the period (versioned by
`effective_from` like every kind; without one, bills carry no tax and are what they always were).
Each line and adjustment is taxed on what it adds to the bill (its charge), with one treatment,
the first that applies:

1. an **exemption** naming the line's category (or every category) and the buyer's country (or
   every country): no tax, and the invoice prints the exemption's `wording`;
2. **reverse charge**, for a buyer with a tax id in one of `reverse_charge.countries`: no tax, and
   the invoice prints its `wording` (the buyer accounts for the tax);
3. the **rate** of the buyer's region (an account country written `US-CA`), else of its country;
4. **`other_countries`**: no tax, with its wording. Without it, a buyer whose country has no rate,
   or is not known, is not billed: the bill is refused and says why.

The buyer is the ledger account's `country` and `tax_id` (`ratecard account update`); `ratecard
bill` reads them from the ledger when there is one. An adjustment on the whole bill (a bill
discount, a commitment, a credit) is taxed with the lines when they all have one treatment; when
they do not, the bill is refused rather than split on a guess.

With `prices: exclusive` the prices are net: tax = net × rate / 100, gross = net + tax. With
`prices: inclusive` they include the tax: tax = gross × rate / (100 + rate), net = gross − tax (an
exempt or reverse-charge line is then charged its price, with no tax in it). Tax is rounded to the
settlement policy's quantum with the tax rules' `rounding.mode`: `per-line` rounds each line's and
adjustment's tax and adds them up, `per-invoice` rounds the tax of each tax line once. The parts
with one treatment make one tax line; the bill's `total` is the gross, which the ledger debits, and
its JSON (schema version 3) carries `tax` with the tax lines and net, tax and gross. A supplementary
invoice or credit note for a taxed invoice carries the tax of its amount: the difference of the tax
lines for a correction, and for a manual credit note or a void the share of the invoice's tax in
proportion to the amount.
"""
