//! Amounts and times as people read them: base units in token units ("0.5 ETH"), Unix
//! seconds in ISO 8601 UTC, and a policy reason in words. The exact values stay beside these
//! wherever they are shown.

use alloy_primitives::U256;

use crate::policy::{Reason, Token};

/// How a token's amounts are written: its symbol and decimals (native currency: ETH, 18).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUnits {
    /// The symbol, e.g. "USDC".
    pub symbol: String,
    /// The decimals, e.g. 6.
    pub decimals: u8,
}

impl TokenUnits {
    /// The chain's native currency.
    pub fn native() -> Self {
        Self {
            symbol: "ETH".into(),
            decimals: 18,
        }
    }

    /// `amount` base units as a decimal with the symbol, trailing zeros dropped:
    ///
    /// ```
    /// use chaperone_core::{U256, readable::TokenUnits};
    ///
    /// let eth = TokenUnits::native();
    /// assert_eq!(eth.format(U256::from(500_000_000_000_000_000u64)), "0.5 ETH");
    /// assert_eq!(eth.format(U256::from(1u64)), "0.000000000000000001 ETH");
    /// let usdc = TokenUnits { symbol: "USDC".into(), decimals: 6 };
    /// assert_eq!(usdc.format(U256::from(12_340_000u64)), "12.34 USDC");
    /// assert_eq!(usdc.format(U256::ZERO), "0 USDC");
    /// ```
    pub fn format(&self, amount: U256) -> String {
        format!("{} {}", units(amount, self.decimals), self.symbol)
    }
}

/// `amount` base units as a decimal number of units with `decimals` decimals.
pub fn units(amount: U256, decimals: u8) -> String {
    let digits = amount.to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// Unix seconds as ISO 8601 UTC:
///
/// ```
/// assert_eq!(chaperone_core::readable::iso8601(0), "1970-01-01T00:00:00Z");
/// assert_eq!(chaperone_core::readable::iso8601(1_796_180_102), "2026-12-02T02:55:02Z");
/// assert_eq!(chaperone_core::readable::iso8601(951_782_400), "2000-02-29T00:00:00Z");
/// assert_eq!(chaperone_core::readable::iso8601(4_102_444_799), "2099-12-31T23:59:59Z");
/// ```
pub fn iso8601(unix: u64) -> String {
    let days = (unix / 86_400) as i64;
    let seconds = unix % 86_400;
    // Howard Hinnant's days-to-civil: the proleptic Gregorian calendar from day counts.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3_600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The Unix time of midnight UTC at the start of a `YYYY-MM-DD` date (an HTML date input's
/// value), or `None` if it is not one:
///
/// ```
/// use chaperone_core::readable::{date_start, iso8601};
///
/// assert_eq!(date_start("2000-02-29").map(iso8601).as_deref(), Some("2000-02-29T00:00:00Z"));
/// assert_eq!(date_start("2026-12-02"), Some(1_796_169_600));
/// assert_eq!(date_start("2026-13-01"), None);
/// assert_eq!(date_start("yesterday"), None);
/// ```
pub fn date_start(date: &str) -> Option<u64> {
    let mut parts = date.splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || !(1970..=9999).contains(&year) {
        return None;
    }
    // Hinnant's days-from-civil, the inverse of `iso8601`'s conversion.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    let unix = u64::try_from(days).ok()? * 86_400;
    // 2026-02-31 would land in March: only dates that exist.
    iso8601(unix).starts_with(date).then_some(unix)
}

/// A duration in seconds as the policy writes windows: "1h", "24h", "90s", "7d".
pub fn duration(seconds: u64) -> String {
    match seconds {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s >= 3_600 && s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// A reason in words, amounts in `units` of their token:
///
/// ```
/// use chaperone_core::{U256, policy::{Reason, Token}, readable::{TokenUnits, reason_text}};
///
/// let reason = Reason::PerTransactionCap {
///     token: Token::Native,
///     amount: U256::from(500_000_000_000_000_000u64),
///     cap: U256::from(100_000_000_000_000_000u64),
/// };
/// assert_eq!(
///     reason_text(&reason, |_| TokenUnits::native()),
///     "0.5 ETH is over the per-payment cap of 0.1 ETH"
/// );
/// ```
pub fn reason_text(reason: &Reason, units: impl Fn(&Token) -> TokenUnits) -> String {
    let amount = |token: &Token, value: U256| units(token).format(value);
    match reason {
        Reason::ChainNotAllowed { chain_id } => {
            format!("chain {chain_id} is not one the policy allows")
        }
        Reason::RateLimited {
            max_requests,
            window,
        } => format!(
            "over the rate limit of {max_requests} requests per {}",
            duration(*window)
        ),
        Reason::UndecodableCall { to, selector } => {
            format!("a call to {to} (selector {selector}) that no rule allows")
        }
        Reason::ArgumentRule { to, index } => {
            format!("argument {index} of a call to {to} breaks its rule")
        }
        Reason::RecipientDenied { recipient } => format!("{recipient} is on the deny list"),
        Reason::RecipientNotAllowed { recipient } => {
            format!("{recipient} is not on the allow list")
        }
        Reason::TokenNotAllowed { token } => {
            format!(
                "the policy has no limits for {}, so it cannot be spent",
                units(token).symbol
            )
        }
        Reason::PerTransactionCap {
            token,
            amount: a,
            cap,
        } => format!(
            "{} is over the per-payment cap of {}",
            amount(token, *a),
            amount(token, *cap)
        ),
        Reason::WindowCap {
            token,
            window,
            spent,
            amount: a,
            max,
        } => format!(
            "{} on top of {} already spent in {} is over the cap of {}",
            amount(token, *a),
            amount(token, *spent),
            duration(*window),
            amount(token, *max)
        ),
        Reason::Expired { valid_until, now } => format!(
            "it would already be void (valid until {}, decided at {})",
            iso8601(*valid_until),
            iso8601(*now)
        ),
        Reason::ValidTooLong {
            valid_until,
            max_valid_until,
        } => format!(
            "it would stay valid until {}, past the policy's limit of {}",
            iso8601(*valid_until),
            iso8601(*max_valid_until)
        ),
        Reason::NotYetValid { valid_after, now } => format!(
            "it only becomes valid at {} (decided at {})",
            iso8601(*valid_after),
            iso8601(*now)
        ),
        Reason::TypedDataNotAllowed { primary_type } => {
            format!("no rule allows signing a {primary_type}")
        }
        Reason::MalformedTypedData { detail } => format!("the typed data is malformed: {detail}"),
        Reason::NeedsHumanApproval {
            token,
            amount: a,
            threshold,
        } => format!(
            "{} is above the approval threshold of {}: a human must approve",
            amount(token, *a),
            amount(token, *threshold)
        ),
        Reason::ShadowMode => "shadow mode: decided and recorded, never co-signed".into(),
        Reason::ApprovalDenied => "a human approver denied it".into(),
        Reason::ApprovalExpired { expired_at } => format!(
            "no approval was used before it expired at {}",
            iso8601(*expired_at)
        ),
    }
}
