"""Mainland reporting duties (docs/REPORTING.md): large-value reports (`lvtr`), suspicious
transaction report drafts (`str_draft`), customer risk rating (`risk`) and watchlists
(`watchlist`), with their XML/JSON/CSV exports (`exports`, `xml`) and the replay hook (`pipeline`).

Everything here is pure logic on event time except `exports`, `commands` and the file loading of
`watchlist`; the reports are configurable drafts, not filings.
"""
