//! Reasons and amounts in words, for people: token units (symbol and decimals read from the
//! chain, made printable), and each policy reason as a sentence. The API's `reasons_text`,
//! the console, the exports and the notifications all word them here.

use std::collections::HashMap;

use chaperone_core::{
    policy::{Reason, Token},
    readable::{TokenUnits, reason_text},
};

use crate::AppState;

/// The most characters of a token's symbol shown (its deployer chose it).
const SYMBOL_MAX_CHARS: usize = 32;

/// Token symbols and decimals for the tokens in `tokens`, read from the chain once each.
///
/// Every reader of token units (console pages, compliance API, notifications) goes through
/// here, so this is where a symbol read from a contract is made [`printable`].
pub(crate) async fn units_of(state: &AppState, tokens: Vec<Token>) -> HashMap<Token, TokenUnits> {
    let mut out = HashMap::new();
    for token in tokens {
        if let std::collections::hash_map::Entry::Vacant(slot) = out.entry(token) {
            let mut units = state.token_units(token).await;
            units.symbol = printable(&units.symbol, SYMBOL_MAX_CHARS);
            slot.insert(units);
        }
    }
    out
}

/// `text` read from a contract (a token's `symbol()` or `name()`), cut to `max_chars`
/// characters (with "…") and with every character that would move or hide text (controls
/// and line breaks, bidirectional overrides, zero-width characters) shown as U+FFFD.
///
/// This is not escaping: each place the text lands still escapes it for its own syntax
/// (maud for HTML, [`crate::webhooks`] for Slack, the CSV writer). It keeps a symbol from
/// forging a line of its own, reordering the sentence around it, or filling the page.
pub(crate) fn printable(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if hides_text(c) { '\u{FFFD}' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
}

/// Whether `c` would hide or move text around it where a person reads it: a control (C0, DEL,
/// C1), a format character (Unicode category Cf: bidirectional overrides and isolates,
/// zero-width characters, invisible operators, tags), a line or paragraph separator, or any
/// other character Unicode says to draw as nothing (Default_Ignorable_Code_Point).
pub(crate) fn hides_text(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{00AD}' | '\u{0600}'..='\u{0605}' | '\u{061C}' | '\u{06DD}' | '\u{070F}'
            | '\u{0890}'..='\u{0891}' | '\u{08E2}' | '\u{180E}' | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}' | '\u{E0020}'..='\u{E007F}'
            // The rest of Unicode's Default_Ignorable_Code_Point (drawn as nothing, though not
            // format characters: variation selectors, Hangul fillers, the combining grapheme
            // joiner…) and the braille blank, which draws as a space (red team i30c round 3).
            | '\u{034F}' | '\u{115F}'..='\u{1160}' | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{2800}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}'
            | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}' | '\u{E0000}'..='\u{E0FFF}')
}

/// `text` with every character that [`hides_text`] written as `\uXXXX` (UTF-16 units, as
/// JSON writes them: inside a JSON string the result is the same JSON). For what an approver
/// reads of an agent's call (its arguments, tool name, reasons): a U+202E in an argument must
/// not make `1000` read `0001`, nor a zero-width space hide a difference (red team i30c #5).
/// Not escaping for HTML: maud still escapes the result.
pub(crate) fn shown_escaped(text: &str) -> std::borrow::Cow<'_, str> {
    use std::fmt::Write;
    if !text.chars().any(hides_text) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if hides_text(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04X}");
            }
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// The token a reason names, if any.
pub(crate) fn reason_token(reason: &Reason) -> Option<Token> {
    match reason {
        Reason::TokenNotAllowed { token }
        | Reason::PerTransactionCap { token, .. }
        | Reason::WindowCap { token, .. }
        | Reason::NeedsHumanApproval { token, .. } => Some(*token),
        _ => None,
    }
}

/// The tokens reasons name.
pub(crate) fn reason_tokens(reasons: &[Reason]) -> Vec<Token> {
    reasons.iter().filter_map(reason_token).collect()
}

/// A reason in words, with the units looked up.
pub(crate) fn reason_words(reason: &Reason, units: &HashMap<Token, TokenUnits>) -> String {
    reason_text(reason, |token| {
        units.get(token).cloned().unwrap_or_else(TokenUnits::native)
    })
}

/// Each of `reasons` in words, the units of their tokens looked up (nothing for none).
pub(crate) async fn reasons_in_words(state: &AppState, reasons: &[Reason]) -> Vec<String> {
    let units = units_of(state, reason_tokens(reasons)).await;
    reasons.iter().map(|r| reason_words(r, &units)).collect()
}

#[cfg(test)]
mod tests {
    use super::shown_escaped;

    #[test]
    fn characters_drawn_as_nothing_are_shown_escaped_to_the_approver() {
        // Each would make `alice<c>` look like `alice` while other bytes are forwarded.
        for c in [
            '\u{E0100}',
            '\u{FE0F}',
            '\u{034F}',
            '\u{115F}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{17B4}',
            '\u{180B}',
            '\u{2800}',
            '\u{202E}',
            '\u{200B}',
        ] {
            let name = format!("alice{c}");
            let shown = shown_escaped(&name);
            assert!(
                shown.starts_with("alice\\u") && !shown.contains(c),
                "U+{:04X} was shown as {shown:?}",
                c as u32
            );
        }
        assert_eq!(shown_escaped("alice é 日本"), "alice é 日本");
    }
}
