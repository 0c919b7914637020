//! Validation of account claims as the union of the Go jwt library's v2.3.0 (nats-server 2.9)
//! and v2.8 (nats-server 2.10 to 2.15): an account JWT refused by either version is refused, so
//! what we store works on every nats-server from 2.9 to 2.15. Issues are errors (blocking), time
//! checks (blocking when time checks are included) or warnings (never blocking). Imports, exports
//! and mappings are in `exchange.rs`, subject rules in `subjects.rs`.

use super::account::{Limits, Permissions, SigningKey};
use super::exchange::{validate_exports, validate_imports, validate_mappings};
use super::subjects::{has_wildcards, permission_problems, subject_problems};
use super::{is_account_key, key_type, AccountClaims, Token};

/// How serious a validation issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    /// Always blocking.
    Error,
    /// `claim is expired` / `claim is not yet valid`: blocking when time checks are included.
    TimeCheck,
    /// Never blocking.
    Warning,
}

/// One validation finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Human-readable description (Go wording where one exists), naming the claim.
    pub description: String,
    /// Its severity.
    pub kind: IssueKind,
}

impl Issue {
    /// Go's `IsBlocking(includeTimeChecks)` for one issue.
    pub fn is_blocking(&self, include_time_checks: bool) -> bool {
        match self.kind {
            IssueKind::Error => true,
            IssueKind::TimeCheck => include_time_checks,
            IssueKind::Warning => false,
        }
    }
}

/// Issues collected while validating.
#[derive(Default)]
pub(crate) struct Issues(Vec<Issue>);

impl Issues {
    pub(crate) fn error(&mut self, description: String) {
        self.0.push(Issue {
            description,
            kind: IssueKind::Error,
        });
    }
    pub(crate) fn errors(&mut self, prefix: &str, descriptions: Vec<String>) {
        for d in descriptions {
            self.error(format!("{prefix}{d}"));
        }
    }
    pub(crate) fn warning(&mut self, description: String) {
        self.0.push(Issue {
            description,
            kind: IssueKind::Warning,
        });
    }
    fn time(&mut self, description: &str) {
        self.0.push(Issue {
            description: description.to_string(),
            kind: IssueKind::TimeCheck,
        });
    }
}

/// Validates a decoded account JWT at time `now` (Unix seconds).
pub fn validate_account(token: &Token, claims: &AccountClaims, now: i64) -> Vec<Issue> {
    let mut issues = Issues::default();
    let std = &token.claims;
    // Go's Validate ignores a negative `exp`, but nats-server treats any non-zero `exp` that is
    // not in the future as expired (and refuses the account): so do we.
    if std.exp != 0 && std.exp <= now {
        issues.time("claim is expired");
    }
    if std.nbf > 0 && std.nbf > now {
        issues.time("claim is not yet valid");
    }
    validate_imports(&claims.imports, &std.sub, &mut issues);
    validate_exports(&claims.exports, &mut issues);
    validate_tiers(&claims.limits, &mut issues);
    validate_permissions(
        &claims.default_permissions,
        "default_permissions",
        &mut issues,
    );
    validate_mappings(&claims.mappings, &mut issues);
    validate_authorization(claims, &mut issues);
    validate_trace(claims, &mut issues);
    validate_counts(claims, &mut issues);
    validate_signing_keys(&claims.signing_keys, &mut issues);
    validate_info(
        &claims.description,
        &claims.info_url,
        "account",
        &mut issues,
    );
    if !matches!(claims.cluster_traffic.as_str(), "" | "system" | "owner") {
        issues.error(format!(
            "unknown cluster traffic option: {:?} (cluster_traffic must be \"system\" or \"owner\")",
            claims.cluster_traffic
        ));
    }
    if is_account_key(&std.iss) && !limits_empty(&claims.limits) {
        issues.warning("self-signed account JWTs shouldn't contain operator limits".into());
    }
    issues.0
}

/// Go `OperatorLimits.IsEmpty`: every limit zero and no tiers.
fn limits_empty(l: &Limits) -> bool {
    *l == Limits::default()
}

fn validate_tiers(limits: &Limits, issues: &mut Issues) {
    if limits.tiered_limits.is_empty() {
        return;
    }
    if limits.jetstream.is_set() {
        issues.error("JetStream Limits and tiered JetStream Limits are mutually exclusive".into());
    }
    if limits.tiered_limits.contains_key("") {
        issues.error("Tiered JetStream Limits can not contain a blank \"\" tier name".into());
    }
}

/// Go's import/export count and wildcard-export rules; absent limits are 0, as in Go.
fn validate_counts(claims: &AccountClaims, issues: &mut Issues) {
    let l = &claims.limits;
    let imports = claims.imports.len() as i64;
    let exports = claims.exports.len() as i64;
    if l.imports != -1 && imports > l.imports {
        issues.error(format!(
            "the account contains more imports ({imports}) than allowed by the operator (limits.imports {})",
            l.imports
        ));
    }
    if l.exports == -1 {
        return;
    }
    if exports > l.exports {
        issues.error(format!(
            "the account contains more exports ({exports}) than allowed by the operator (limits.exports {})",
            l.exports
        ));
    }
    if !l.wildcards {
        for e in claims.exports.iter().filter(|e| has_wildcards(&e.subject)) {
            issues.error(format!(
                "the account contains wildcard exports that are not allowed by the operator (export {:?}; limits.wildcards is false or absent)",
                e.subject
            ));
        }
    }
}

/// `default_permissions` (and the same shape elsewhere): subjects, queues only for `sub`.
pub(crate) fn validate_permissions(p: &Permissions, what: &str, issues: &mut Issues) {
    for (list, name, queue) in [
        (&p.subscribe.allow, "sub.allow", true),
        (&p.subscribe.deny, "sub.deny", true),
        (&p.publish.allow, "pub.allow", false),
        (&p.publish.deny, "pub.deny", false),
    ] {
        for subject in list {
            issues.errors(
                &format!("{what}.{name}: "),
                permission_problems(subject, queue),
            );
        }
    }
}

fn validate_authorization(claims: &AccountClaims, issues: &mut Issues) {
    let auth = &claims.authorization;
    if !auth.allowed_accounts.is_empty() && auth.auth_users.is_empty() {
        issues.error(
            "External authorization cannot have accounts without users specified (authorization.allowed_accounts needs auth_users)".into(),
        );
    }
    for user in &auth.auth_users {
        if key_type(user) != Some(nkeys::KeyPairType::User) {
            issues.error(format!(
                "AuthUser {user:?} is not a valid user public key (authorization.auth_users)"
            ));
        }
    }
    let many = auth.allowed_accounts.len() > 1;
    for account in &auth.allowed_accounts {
        if account == "*" {
            if many {
                issues.error(
                    "AllowedAccounts can only be a list of accounts or \"*\" (authorization.allowed_accounts)".into(),
                );
            }
        } else if !is_account_key(account) {
            issues.error(format!(
                "Account {account:?} is not a valid account public key (authorization.allowed_accounts)"
            ));
        }
    }
    if !auth.xkey.is_empty() && key_type(&auth.xkey) != Some(nkeys::KeyPairType::Curve) {
        issues.error(format!(
            "XKey {:?} is not a valid public xkey (authorization.xkey)",
            auth.xkey
        ));
    }
}

fn validate_trace(claims: &AccountClaims, issues: &mut Issues) {
    let Some(trace) = &claims.trace else {
        return;
    };
    if let Some(first) = subject_problems(&trace.dest).into_iter().next() {
        issues.error(format!("the account Trace.Destination {first}"));
    }
    if has_wildcards(&trace.dest) {
        issues.error(format!(
            "the account Trace.Destination subject {:?} is not a valid publish subject",
            trace.dest
        ));
    }
    if !(0..=100).contains(&trace.sampling) {
        issues.error(format!(
            "the account Trace.Sampling value '{}' is not valid, should be in the range [1..100]",
            trace.sampling
        ));
    }
}

fn validate_signing_keys(keys: &[SigningKey], issues: &mut Issues) {
    for key in keys {
        match key {
            SigningKey::Scoped(scope) if !is_account_key(&scope.key) => issues.error(format!(
                "{} is not an account public key (scoped signing key)",
                scope.key
            )),
            SigningKey::Plain(k) if !is_account_key(k) => {
                issues.error(format!("{k:?} is not a valid account signing key"))
            }
            _ => {}
        }
    }
}

/// Go `Info.Validate`: `description` and `info_url` of the account or an export.
pub(crate) fn validate_info(description: &str, info_url: &str, what: &str, issues: &mut Issues) {
    const MAX: usize = 8192;
    if description.len() > MAX {
        issues.error(format!("Description is too long ({what} description)"));
    }
    if info_url.is_empty() {
        return;
    }
    if info_url.len() > MAX {
        issues.error(format!("Info URL is too long ({what} info_url)"));
        return;
    }
    match url::Url::parse(info_url) {
        Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {}
        Ok(_) => issues.error(format!(
            "error parsing info url: no hostname or scheme ({what} info_url {info_url:?})"
        )),
        Err(e) => issues.error(format!(
            "error parsing info url: {e} ({what} info_url {info_url:?})"
        )),
    }
}
