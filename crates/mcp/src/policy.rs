//! The tool policy: which upstreams' tools an agent may call, with which arguments, how
//! often, and which wait for a human. Declarative (the `[policy]` table of the gateway's
//! TOML), versioned, and hashed: every decision carries the version and the hash, so an
//! auditor can tell which policy allowed a call.
//!
//! Rules are read in order and the first whose `upstream` and `name` globs match the call
//! decides. A call no rule names is denied, unless the policy says `allow = "*"`.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The `[policy]` table.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolPolicy {
    /// The policy's version, named in every decision with its hash.
    #[serde(default = "one")]
    pub version: u64,
    /// `"*"` allows every tool no rule names; absent, those are denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<String>,
    /// The rules, first match decides (`[[policy.tool]]`).
    #[serde(default, rename = "tool")]
    pub rules: Vec<ToolRule>,
}

fn one() -> u64 {
    1
}

fn any() -> String {
    "*".into()
}

/// One rule: the tools it names and what happens to their calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// A glob over upstream names (default `*`).
    #[serde(default = "any")]
    pub upstream: String,
    /// A glob over the upstream's own tool names (without the namespace prefix).
    pub name: String,
    /// What to do (default `allow`).
    #[serde(default)]
    pub action: Action,
    /// At most this many calls of each tool the rule names in a sliding window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Constraints on named arguments; a call that breaks one is denied.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, ArgRule>,
    /// The most a paid call of these tools may cost, in the token's base units (a decimal
    /// string): a cap on top of the wallet policy's. Requirements above it are not paid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_price: Option<String>,
    /// How long an `approve` call waits for a human, in seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_timeout_seconds: Option<u64>,
}

/// What a rule does with the calls it names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The call goes to the upstream (if its arguments and the rate limit allow).
    #[default]
    Allow,
    /// The call is refused.
    Deny,
    /// The call waits for a human's approval.
    Approve,
}

/// A sliding-window rate limit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Calls allowed in the window.
    pub calls: u32,
    /// The window, in seconds.
    pub per_seconds: u64,
}

/// JSON-Schema-style constraints on one argument.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgRule {
    /// The argument must be present.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Its JSON type: string, number, integer, boolean, array, object, null.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// A regular expression a string must match (anchor it with `^…$` to match whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The values allowed.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// The smallest number allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// The largest number allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// The longest string allowed, in characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

/// The outcome of one decision: the wire type, one definition (crates/api).
pub use chaperone_api::tools::ToolOutcome;

/// A decision on one call: outcome, reasons, and the policy that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDecision {
    /// What happens to the call.
    pub outcome: ToolOutcome,
    /// Why, in words (empty when allowed).
    pub reasons: Vec<String>,
    /// The index of the rule that decided, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    /// The policy's version.
    pub policy_version: u64,
    /// SHA-256 of the policy's canonical JSON, `0x`-hex.
    pub policy_hash: String,
    /// For `ApprovalRequired`: how long to wait.
    #[serde(skip)]
    pub approval_timeout: Option<Duration>,
}

impl ToolPolicy {
    /// Checks what parsing cannot: `allow` is `"*"` if present, globs and patterns compile,
    /// rate limits are positive, types are JSON types.
    pub fn check(&self) -> Result<()> {
        if let Some(allow) = &self.allow
            && allow != "*"
        {
            return Err(Error::Config(format!(
                "policy.allow may only be \"*\" (got {allow:?}); name tools in [[policy.tool]] rules"
            )));
        }
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |what: String| Error::Config(format!("policy.tool[{i}]: {what}"));
            for glob in [&rule.upstream, &rule.name] {
                glob::Pattern::new(glob).map_err(|e| at(format!("glob {glob:?}: {e}")))?;
            }
            if let Some(limit) = rule.rate_limit
                && (limit.calls == 0 || limit.per_seconds == 0)
            {
                return Err(at("rate_limit needs calls and per_seconds above 0".into()));
            }
            if let Some(price) = &rule.max_price
                && chaperone_sdk::U256::from_str_radix(price, 10).is_err()
            {
                return Err(at(format!(
                    "max_price {price:?} is not a whole number of base units"
                )));
            }
            for (arg, constraint) in &rule.args {
                if let Some(pattern) = &constraint.pattern {
                    regex::Regex::new(pattern)
                        .map_err(|e| at(format!("args.{arg}.pattern: {e}")))?;
                }
                if let Some(kind) = &constraint.kind
                    && !matches!(
                        kind.as_str(),
                        "string" | "number" | "integer" | "boolean" | "array" | "object" | "null"
                    )
                {
                    return Err(at(format!("args.{arg}.type {kind:?} is not a JSON type")));
                }
            }
        }
        Ok(())
    }

    /// SHA-256 of the canonical JSON of the parsed policy (fields in declaration order, maps
    /// sorted), `0x`-hex: comments and formatting of the file do not change it.
    pub fn hash(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        let mut hex = String::with_capacity(66);
        hex.push_str("0x");
        for byte in digest {
            hex.push_str(&format!("{byte:02x}"));
        }
        hex
    }
}

/// How many rate-limit windows are kept before those that ended are swept.
const MAX_WINDOWS: usize = 10_000;

/// A policy ready to decide: compiled patterns and the rate limits' windows.
#[derive(Debug)]
pub struct PolicyEngine {
    policy: ToolPolicy,
    hash: String,
    globs: Vec<(glob::Pattern, glob::Pattern)>,
    patterns: Vec<BTreeMap<String, regex::Regex>>,
    /// Call times per (rule, upstream, tool) inside the rule's window.
    windows: Mutex<HashMap<(usize, String, String), VecDeque<Instant>>>,
}

impl PolicyEngine {
    /// Compiles a checked policy.
    pub fn new(policy: ToolPolicy) -> Result<Self> {
        policy.check()?;
        let mut globs = Vec::new();
        let mut patterns = Vec::new();
        for rule in &policy.rules {
            let compile = |g: &str| glob::Pattern::new(g).map_err(|e| Error::Config(e.to_string()));
            globs.push((compile(&rule.upstream)?, compile(&rule.name)?));
            let mut compiled = BTreeMap::new();
            for (arg, constraint) in &rule.args {
                if let Some(pattern) = &constraint.pattern {
                    let regex =
                        regex::Regex::new(pattern).map_err(|e| Error::Config(e.to_string()))?;
                    compiled.insert(arg.clone(), regex);
                }
            }
            patterns.push(compiled);
        }
        Ok(Self {
            hash: policy.hash(),
            policy,
            globs,
            patterns,
            windows: Mutex::new(HashMap::new()),
        })
    }

    /// The policy's hash.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The policy's version.
    pub fn version(&self) -> u64 {
        self.policy.version
    }

    /// The per-call price cap of rule `index` (checked when the policy was), if it has one.
    pub fn max_price(&self, index: usize) -> Option<chaperone_sdk::U256> {
        let price = self.policy.rules.get(index)?.max_price.as_ref()?;
        chaperone_sdk::U256::from_str_radix(price, 10).ok()
    }

    /// Decides one call of `tool` on `upstream` with `arguments`, at `now`. An allowed call
    /// takes a place in its rule's rate-limit window.
    pub fn decide(
        &self,
        upstream: &str,
        tool: &str,
        arguments: &Map<String, Value>,
        now: Instant,
    ) -> PolicyDecision {
        let decision = |outcome, reasons, rule| PolicyDecision {
            outcome,
            reasons,
            rule,
            policy_version: self.policy.version,
            policy_hash: self.hash.clone(),
            approval_timeout: None,
        };
        let Some(index) = self
            .globs
            .iter()
            .position(|(u, n)| u.matches(upstream) && n.matches(tool))
        else {
            return if self.policy.allow.is_some() {
                decision(ToolOutcome::Allowed, Vec::new(), None)
            } else {
                decision(
                    ToolOutcome::Denied,
                    vec![format!(
                        "no rule of the tool policy names `{tool}` on `{upstream}` (default deny)"
                    )],
                    None,
                )
            };
        };
        let rule = &self.policy.rules[index];
        if rule.action == Action::Deny {
            return decision(
                ToolOutcome::Denied,
                vec![format!("rule {index} denies `{tool}` on `{upstream}`")],
                Some(index),
            );
        }
        let reasons = self.argument_reasons(index, arguments);
        if !reasons.is_empty() {
            return decision(ToolOutcome::Denied, reasons, Some(index));
        }
        if let Some(limit) = rule.rate_limit {
            let window = Duration::from_secs(limit.per_seconds);
            let mut windows = self
                .windows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Every distinct tool name a rule with a limit matched has an entry: an agent
            // calling ever new names must not grow the map without bound.
            if windows.len() >= MAX_WINDOWS {
                let rules = &self.policy.rules;
                windows.retain(|(rule, _, _), times| {
                    // Each entry by its own rule's window: an entry still inside it stays.
                    let span = rules[*rule]
                        .rate_limit
                        .map_or(Duration::ZERO, |l| Duration::from_secs(l.per_seconds));
                    times
                        .back()
                        .is_some_and(|t| now.saturating_duration_since(*t) < span)
                });
            }
            let times = windows
                .entry((index, upstream.to_owned(), tool.to_owned()))
                .or_default();
            while times
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= window)
            {
                times.pop_front();
            }
            if times.len() >= limit.calls as usize {
                return decision(
                    ToolOutcome::Denied,
                    vec![format!(
                        "rate limit: at most {} calls of `{tool}` per {} s",
                        limit.calls, limit.per_seconds
                    )],
                    Some(index),
                );
            }
            times.push_back(now);
        }
        if rule.action == Action::Approve {
            let mut decision = decision(
                ToolOutcome::ApprovalRequired,
                vec![format!("rule {index} asks a human to approve `{tool}`")],
                Some(index),
            );
            decision.approval_timeout = Some(Duration::from_secs(
                rule.approval_timeout_seconds.unwrap_or(300),
            ));
            return decision;
        }
        decision(ToolOutcome::Allowed, Vec::new(), Some(index))
    }

    fn argument_reasons(&self, index: usize, arguments: &Map<String, Value>) -> Vec<String> {
        let mut reasons = Vec::new();
        for (arg, constraint) in &self.policy.rules[index].args {
            let Some(value) = arguments.get(arg) else {
                if constraint.required {
                    reasons.push(format!("argument `{arg}` is required"));
                }
                continue;
            };
            if let Some(kind) = &constraint.kind
                && !is_of_type(value, kind)
            {
                reasons.push(format!("argument `{arg}` must be of type {kind}"));
                continue;
            }
            if let Some(one_of) = &constraint.one_of
                && !one_of.contains(value)
            {
                reasons.push(format!("argument `{arg}` is not one of the allowed values"));
            }
            if let Some(number) = value.as_f64() {
                if constraint.minimum.is_some_and(|min| number < min) {
                    reasons.push(format!("argument `{arg}` is below its minimum"));
                }
                if constraint.maximum.is_some_and(|max| number > max) {
                    reasons.push(format!("argument `{arg}` is above its maximum"));
                }
            } else if constraint.minimum.is_some() || constraint.maximum.is_some() {
                reasons.push(format!("argument `{arg}` must be a number"));
            }
            if constraint.pattern.is_some() || constraint.max_length.is_some() {
                let Some(text) = value.as_str() else {
                    reasons.push(format!("argument `{arg}` must be a string"));
                    continue;
                };
                if constraint
                    .max_length
                    .is_some_and(|max| text.chars().count() > max)
                {
                    reasons.push(format!("argument `{arg}` is longer than allowed"));
                }
                if let Some(regex) = self.patterns[index].get(arg)
                    && !regex.is_match(text)
                {
                    reasons.push(format!("argument `{arg}` does not match its pattern"));
                }
            }
        }
        reasons
    }
}

fn is_of_type(value: &Value, kind: &str) -> bool {
    match kind {
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn engine(toml_text: &str) -> PolicyEngine {
        let policy: ToolPolicy = toml::from_str(toml_text).expect("policy parses");
        PolicyEngine::new(policy).expect("policy compiles")
    }

    fn args(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn default_deny_and_allow_star() {
        let now = Instant::now();
        let strict = engine("");
        let d = strict.decide("everything", "echo", &Map::new(), now);
        assert_eq!(d.outcome, ToolOutcome::Denied);
        assert!(d.reasons[0].contains("default deny"));
        let open = engine("allow = \"*\"");
        assert_eq!(
            open.decide("everything", "echo", &Map::new(), now).outcome,
            ToolOutcome::Allowed
        );
        assert!(toml::from_str::<ToolPolicy>("allow = \"echo\"").is_ok_and(|p| p.check().is_err()));
    }

    #[test]
    fn first_matching_rule_decides_by_glob() {
        let e = engine(
            r#"
            [[tool]]
            upstream = "fs"
            name = "write_*"
            action = "deny"
            [[tool]]
            name = "*"
            "#,
        );
        let now = Instant::now();
        assert_eq!(
            e.decide("fs", "write_file", &Map::new(), now).outcome,
            ToolOutcome::Denied
        );
        assert_eq!(
            e.decide("fs", "read_file", &Map::new(), now).outcome,
            ToolOutcome::Allowed
        );
        assert_eq!(
            e.decide("web", "write_x", &Map::new(), now).outcome,
            ToolOutcome::Allowed
        );
    }

    #[test]
    fn argument_rules() {
        let e = engine(
            r#"
            [[tool]]
            name = "echo"
            [tool.args.message]
            required = true
            type = "string"
            pattern = "^[a-z ]+$"
            max_length = 10
            [tool.args.n]
            minimum = 1
            maximum = 5
            "#,
        );
        let now = Instant::now();
        let ok = e.decide(
            "u",
            "echo",
            &args(json!({"message": "hi there", "n": 3})),
            now,
        );
        assert_eq!(ok.outcome, ToolOutcome::Allowed, "{:?}", ok.reasons);
        for (bad, why) in [
            (json!({}), "required"),
            (json!({"message": 5}), "type string"),
            (json!({"message": "Hi"}), "pattern"),
            (json!({"message": "far too long here"}), "longer"),
            (json!({"message": "ok", "n": 9}), "maximum"),
            (json!({"message": "ok", "n": "2"}), "number"),
        ] {
            let d = e.decide("u", "echo", &args(bad.clone()), now);
            assert_eq!(d.outcome, ToolOutcome::Denied, "{bad}");
            assert!(
                d.reasons.iter().any(|r| r.contains(why)),
                "{bad}: {:?}",
                d.reasons
            );
        }
    }

    #[test]
    fn rate_limit_slides() {
        let e = engine(
            r#"
            [[tool]]
            name = "add"
            rate_limit = { calls = 2, per_seconds = 10 }
            "#,
        );
        let t0 = Instant::now();
        let call = |t| e.decide("u", "add", &Map::new(), t).outcome;
        assert_eq!(call(t0), ToolOutcome::Allowed);
        assert_eq!(call(t0 + Duration::from_secs(1)), ToolOutcome::Allowed);
        assert_eq!(call(t0 + Duration::from_secs(2)), ToolOutcome::Denied);
        // The first call leaves the window at t0 + 10 s.
        assert_eq!(call(t0 + Duration::from_secs(10)), ToolOutcome::Allowed);
        assert_eq!(call(t0 + Duration::from_secs(10)), ToolOutcome::Denied);
    }

    #[test]
    fn many_tool_names_do_not_grow_the_windows_or_reset_a_long_one() {
        let e = engine(
            r#"
            [[tool]]
            name = "slow"
            rate_limit = { calls = 1, per_seconds = 86400 }
            [[tool]]
            name = "*"
            rate_limit = { calls = 1, per_seconds = 1 }
            "#,
        );
        let t0 = Instant::now();
        assert_eq!(
            e.decide("u", "slow", &Map::new(), t0).outcome,
            ToolOutcome::Allowed
        );
        // A new name every second, each allowed once per second: the old ones' windows end.
        for i in 0..(MAX_WINDOWS + 10) {
            let at = t0 + Duration::from_secs(2 + i as u64);
            e.decide("u", &format!("t{i}"), &Map::new(), at);
        }
        let kept = e.windows.lock().map(|w| w.len()).unwrap_or(usize::MAX);
        assert!(kept <= MAX_WINDOWS + 1, "{kept} windows kept");
        // The day-long window survived the sweep: a second call is still over the limit.
        let later = t0 + Duration::from_secs(MAX_WINDOWS as u64 + 20);
        let again = e.decide("u", "slow", &Map::new(), later);
        assert_eq!(again.outcome, ToolOutcome::Denied);
    }

    #[test]
    fn hash_names_the_policy_not_its_formatting() {
        let a = engine("version = 3\n[[tool]]\nname = \"echo\"\n");
        let b = engine("# a comment\nversion = 3\n\n[[tool]]\n  name = 'echo'\n");
        let c = engine("version = 3\n[[tool]]\nname = \"add\"\n");
        assert_eq!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        let d = a.decide("u", "echo", &Map::new(), Instant::now());
        assert_eq!((d.policy_version, d.policy_hash.as_str()), (3, a.hash()));
    }
}
