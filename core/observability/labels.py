"""The fixed label values of Pay2Slay's metrics, which keep every metric's series count bounded.

A value outside its set is counted under `OTHER` by the `Metrics` helpers.
"""

from __future__ import annotations

OTHER = "other"

PAYOUT_STATES = ("pending", "signed", "submitted", "confirmed", "failed", "dry_run")

SETTLEMENT_OUTCOMES = ("completed", "skipped_paused", "skipped_floor", "skipped_locked", "failed")

SKIP_REASONS = ("daily_cap", "weekly_cap", "kill_cap", "floor", "batch", "ineligible")

RECONCILER_ACTIONS = ("confirmed", "resubmitted", "failed", "still_pending", "unknown")

STATS_OUTCOMES = ("ok", "private", "not_found", "unavailable", "rate_limited", "error")

# Request outcomes of the Yunite API: 401, 402 (the guild has no Yunite Premium), 403 (the app
# is not authorised for the guild), 429, and 5xx or time-outs as unavailable.
YUNITE_OUTCOMES = (
    "ok",
    "unauthorized",
    "payment_required",
    "forbidden",
    "rate_limited",
    "unavailable",
    "error",
)

# Banano node RPC actions that the faucet sends.
NODE_RPC_ACTIONS = (
    "account_balance",
    "account_history",
    "account_info",
    "block_count",
    "block_info",
    "blocks_info",
    "process",
    "receivable",
    "receive",
    "send",
    "version",
    "work_cancel",
    "work_generate",
)

# ok: the node replied without an error field. error: it replied with one. unavailable: no
# connection, or a 5xx. invalid_response: a body that is not the expected JSON.
NODE_RPC_OUTCOMES = ("ok", "error", "timeout", "unavailable", "invalid_response")

ACCRUAL_KINDS = ("open", "held")

ABUSE_FLAG_KINDS = (
    "kill_rate",
    "epic_account_conflict",
    "wallet_in_use",
    "kill_count_drop",
    "implausible_kills",
)

OAUTH_OUTCOMES = (
    "ok",
    "denied",
    "invalid_state",
    "expired_state",
    "not_member",
    "not_linked",
    "upstream_error",
    "rate_limited",
)

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

HTTP_STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

UNKNOWN_COUNTRY = "unknown"

# The 249 officially assigned ISO 3166-1 alpha-2 codes, as listed in the IANA time zone
# database's iso3166.tab (tzdata 2025b).
_COUNTRY_CODE_TEXT = (
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN "
    "BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ "
    "DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL "
    "GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM "
    "JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME "
    "MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP "
    "NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD "
    "SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO "
    "TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW"
)
COUNTRY_CODES = frozenset(_COUNTRY_CODE_TEXT.split())
