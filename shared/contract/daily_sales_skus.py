"""How many SKUs one day of the ``daily_sales`` read model lists: the bound the projector keeps
(``projector/projections/daily_sales.py``) and the read side reports (``read_side/views.py``).

A ``daily_sales`` document holds a whole UTC day. Listing every (currency, SKU) placed that day
made its size unbounded: about 860 orders of 100 distinct 64-character SKUs (544 with SKUs the
API accepts made mostly of dots, which a field name escapes to three bytes) took it past
MongoDB's 16 MiB document limit; MongoDB refused the write and the projection stalled for every
user, and the report of that day grew as large.

So a day lists at most ``MAX_SKUS_PER_DAY`` (currency, SKU) entries, whatever their currency.
Once it lists that many, the lines of a SKU new to that day are added to their currency's
"other SKUs" sums (units and value) instead; the SKUs listed keep being counted. The day's
totals (``placed_value``, ``revenue``) do not depend on the bound and stay exact.

The worst-case document with this bound is about 0.66 MiB (692,823 bytes of BSON), a 24th of
the limit: 1,000 entries of 657 bytes (a SKU of 64 characters of four UTF-8 bytes each, in the
entry and in its key; units and value as 40-digit decimal strings, which a sum reaches only
after 10^22 maximal orders in a day) plus, for each of the 165 currencies an order may be in,
its placed value, revenue and other-SKU sums at 40 digits (``tests/projections/
test_daily_sales_projection.py`` builds that document and measures it). A day's report lists
at most as many SKUs.
"""

from __future__ import annotations

MAX_SKUS_PER_DAY = 1000
