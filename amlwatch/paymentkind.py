"""Which large-value reporting line a payment falls under (PBOC Order 2016 No. 3, Art. 5).

The lines are per customer per event-time day and differ by payment kind:
cash (and digital RMB, which the central bank issues as cash: M0) 50,000 CNY;
an individual's domestic transfer 500,000; an individual's cross-border
transfer 200,000; an organisation's transfer 2,000,000. A card, Alipay or
WeChat Pay payment is a transfer, not cash. The one mapping from the
contract's payment fields to these kinds lives here, shared by the
structuring detector and the large-value reports, so both apply the same line.

The event contract carries no account type and no cross-border flag, so
organisation and cross-border kinds come only from an account state that
says so (`organisation` true, or a `region` outside mainland China, `CN-`);
without one, every transfer is an individual's domestic transfer.
"""

from __future__ import annotations

PAYMENT_KINDS = ("cash", "individual_domestic", "individual_cross_border", "organisation")
CASH_METHODS = frozenset({"digital_rmb", "cash"})


def payment_kind(trade, buyer_state=None) -> str:
    """One of PAYMENT_KINDS for a paid trade; `buyer_state` (the payer's registry state) may be None."""
    if (trade.payment_method or "") in CASH_METHODS:
        return "cash"
    if buyer_state is not None:
        if getattr(buyer_state, "organisation", False):
            return "organisation"
        region = getattr(buyer_state, "region", None)
        if region and not region.upper().startswith("CN"):
            return "individual_cross_border"
    return "individual_domestic"
