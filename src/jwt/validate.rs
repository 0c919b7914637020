//! Validation of account claims as the Go jwt library (v2.3.0, used by nats-server 2.9.10) does
//! it: issues are errors (blocking), time checks (blocking when time checks are included), or
//! warnings (never blocking).

use super::{decode_activation, is_account_key, AccountClaims, Export, Import, SigningKey, Token};

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
    /// Human-readable description (Go wording where one exists).
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

#[derive(Default)]
struct Issues(Vec<Issue>);

impl Issues {
    fn error(&mut self, description: String) {
        self.0.push(Issue {
            description,
            kind: IssueKind::Error,
        });
    }
    fn warning(&mut self, description: String) {
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

/// Go `Subject.Validate`: not empty, no whitespace, no leading/trailing `.`, no empty token.
pub(crate) fn subject_problem(subject: &str) -> Option<String> {
    if subject.is_empty() {
        Some("subject cannot be empty".into())
    } else if subject.chars().any(char::is_whitespace) {
        Some(format!("subject {subject:?} cannot have spaces"))
    } else if subject.starts_with('.') || subject.ends_with('.') || subject.contains("..") {
        Some(format!("subject {subject:?} has an empty token"))
    } else {
        None
    }
}

fn has_wildcard(subject: &str) -> bool {
    subject.split('.').any(|t| t == "*" || t == ">")
}

/// Go `Subject.IsContainedIn`: every subject `inner` matches is matched by `outer`.
pub(crate) fn is_contained_in(inner: &str, outer: &str) -> bool {
    let outer: Vec<&str> = outer.split('.').collect();
    let inner: Vec<&str> = inner.split('.').collect();
    let last_is_full = outer.last() == Some(&">");
    if inner.len() > outer.len() && !last_is_full {
        return false;
    }
    if inner.len() < outer.len() {
        return false;
    }
    for (i, tok) in outer.iter().enumerate() {
        if i == outer.len() - 1 && *tok == ">" {
            return true;
        }
        if *tok != inner[i] && *tok != "*" {
            return false;
        }
    }
    true
}

fn limit(claims: &AccountClaims, name: &str) -> Option<i64> {
    claims.limits.get(name).and_then(serde_json::Value::as_i64)
}

fn validate_signing_keys(keys: &[SigningKey], issues: &mut Issues) {
    for key in keys {
        if let SigningKey::Scoped { kind, .. } = key {
            if kind != "user_scope" {
                issues.error(format!("unknown signing key scope kind {kind:?}"));
            }
        }
        if !is_account_key(key.key()) {
            issues.error(format!("{} is not an account public key", key.key()));
        }
    }
}

fn validate_import(import: &Import, importer: &str, issues: &mut Issues) {
    if import.account.is_empty() {
        issues.error(format!(
            "import {:?}: account to import from is not specified",
            import.subject
        ));
    } else if !is_account_key(&import.account) {
        issues.error(format!(
            "import {:?}: {} is not an account public key",
            import.subject, import.account
        ));
    }
    let is_stream = import.kind == "stream";
    if !is_stream && import.kind != "service" {
        issues.error(format!(
            "import {:?}: invalid import type {:?}",
            import.subject, import.kind
        ));
    }
    if let Some(p) = subject_problem(&import.subject) {
        issues.error(format!("import: {p}"));
    }
    if !import.local_subject.is_empty() {
        if let Some(p) = subject_problem(&import.local_subject) {
            issues.error(format!("import local_subject: {p}"));
        }
    }
    if !import.to.is_empty() {
        issues.warning(format!(
            "import {:?}: the field to has been deprecated (use local_subject)",
            import.subject
        ));
    }
    if import.token.is_empty() {
        return;
    }
    let (token, activation) = match decode_activation(&import.token) {
        Ok(t) => t,
        Err(e) => {
            issues.error(format!(
                "import {:?}: activation token cannot be decoded: {e}",
                import.subject
            ));
            return;
        }
    };
    let iss = &token.claims.iss;
    if iss != &import.account && activation.issuer_account != import.account {
        issues.error(format!(
            "import {:?}: activation token issuer {iss} is not the exporting account {}",
            import.subject, import.account
        ));
    }
    if token.claims.sub != importer {
        issues.error(format!(
            "import {:?}: activation token is for {} and not for this account",
            import.subject, token.claims.sub
        ));
    }
    if !activation.kind.is_empty() && activation.kind != import.kind {
        issues.error(format!(
            "import {:?}: activation token is for a {} but the import is a {}",
            import.subject, activation.kind, import.kind
        ));
    }
    if !is_contained_in(&import.subject, &activation.subject) {
        issues.error(format!(
            "activation token import subject {:?} doesn't match import {:?}",
            activation.subject, import.subject
        ));
    }
}

fn validate_export(export: &Export, wildcards_allowed: bool, issues: &mut Issues) {
    let subject = &export.subject;
    let is_service = export.kind == "service";
    if !is_service && export.kind != "stream" {
        issues.error(format!(
            "export {subject:?}: invalid export type {:?}",
            export.kind
        ));
    }
    if let Some(p) = subject_problem(subject) {
        issues.error(format!("export: {p}"));
    }
    if !wildcards_allowed && has_wildcard(subject) {
        issues.error(format!(
            "export {subject:?}: wildcard exports are not allowed by the account limits"
        ));
    }
    if !export.response_type.is_empty() {
        if !is_service {
            issues.error(format!(
                "export {subject:?}: response type is only valid for services"
            ));
        } else if !matches!(
            export.response_type.as_str(),
            "Singleton" | "Stream" | "Chunked"
        ) {
            issues.error(format!(
                "export {subject:?}: invalid response type {:?}",
                export.response_type
            ));
        }
    }
    if export.response_threshold != 0 {
        if !is_service {
            issues.error(format!(
                "export {subject:?}: response threshold is only valid for services"
            ));
        } else if export.response_threshold < 0 {
            issues.error(format!(
                "export {subject:?}: response threshold cannot be negative"
            ));
        }
    }
    if export.account_token_position > 0 {
        let tokens: Vec<&str> = subject.split('.').collect();
        let pos = export.account_token_position as usize;
        if tokens.get(pos - 1) != Some(&"*") {
            issues.error(format!(
                "export {subject:?}: account token position {pos} does not point at a * token"
            ));
        }
    }
    if let Some(latency) = export.service_latency.as_object() {
        if !is_service {
            issues.error(format!(
                "export {subject:?}: latency tracking is only valid for services"
            ));
        }
        let sampling_ok = match latency.get("sampling") {
            Some(serde_json::Value::String(s)) => s == "headers",
            Some(v) => v.as_i64().is_some_and(|n| (1..=100).contains(&n)),
            None => false,
        };
        if !sampling_ok {
            issues.error(format!(
                "export {subject:?}: latency sampling must be 1..100 or \"headers\""
            ));
        }
        match latency.get("results").and_then(|r| r.as_str()) {
            Some(r) if subject_problem(r).is_none() && !has_wildcard(r) => {}
            _ => issues.error(format!(
                "export {subject:?}: latency results must be a subject without wildcards"
            )),
        }
    }
}

/// Validates a decoded account JWT at time `now` (Unix seconds).
pub fn validate_account(token: &Token, claims: &AccountClaims, now: i64) -> Vec<Issue> {
    let mut issues = Issues::default();
    let std = &token.claims;
    if std.exp > 0 && now > std.exp {
        issues.time("claim is expired");
    }
    if std.nbf > 0 && std.nbf > now {
        issues.time("claim is not yet valid");
    }
    if !is_account_key(&std.sub) {
        issues.error(format!("{} is not an account public key", std.sub));
    }
    validate_signing_keys(&claims.signing_keys, &mut issues);

    for import in &claims.imports {
        validate_import(import, &std.sub, &mut issues);
    }
    // jwt 2.3.0: service imports may not overlap, whatever account they come from.
    let mut local: Vec<&str> = Vec::new();
    for import in claims.imports.iter().filter(|i| i.kind == "service") {
        let sub = [&import.to, &import.local_subject, &import.subject]
            .into_iter()
            .find(|s| !s.is_empty())
            .map(String::as_str)
            .unwrap_or_default();
        for seen in &local {
            if is_contained_in(sub, seen) || is_contained_in(seen, sub) {
                issues.error(format!(
                    "overlapping subject namespace for {sub:?} and {seen:?}"
                ));
            }
        }
        local.push(sub);
    }

    let wildcards_allowed = claims
        .limits
        .get("wildcards")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true);
    for export in &claims.exports {
        validate_export(export, wildcards_allowed, &mut issues);
    }
    for (i, a) in claims.exports.iter().enumerate() {
        for b in &claims.exports[i + 1..] {
            if a.kind == b.kind
                && (is_contained_in(&a.subject, &b.subject)
                    || is_contained_in(&b.subject, &a.subject))
            {
                issues.error(format!(
                    "overlapping subject namespace for {:?} and {:?}",
                    a.subject, b.subject
                ));
            }
        }
    }

    if let Some(max) = limit(claims, "imports").filter(|m| *m >= 0) {
        if claims.imports.len() as i64 > max {
            issues.error(format!(
                "the account contains more imports ({}) than allowed by the operator ({max})",
                claims.imports.len()
            ));
        }
    }
    if let Some(max) = limit(claims, "exports").filter(|m| *m >= 0) {
        if claims.exports.len() as i64 > max {
            issues.error(format!(
                "the account contains more exports ({}) than allowed by the operator ({max})",
                claims.exports.len()
            ));
        }
    }
    if std.iss == std.sub && claims.limits.as_object().is_some_and(|l| !l.is_empty()) {
        issues.warning("self-signed account JWTs shouldn't contain operator limits".into());
    }
    issues.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_follows_go() {
        assert!(is_contained_in("a.b", "a.*"));
        assert!(is_contained_in("a.b.c", "a.>"));
        assert!(is_contained_in("a.>", "a.>"));
        assert!(is_contained_in("a.>", "a.*")); // as Go: "*" accepts any token
        assert!(!is_contained_in("a", "a.b"));
        assert!(!is_contained_in("b.c", "a.*"));
        assert!(is_contained_in("a.private.>", "a.private.>"));
    }

    #[test]
    fn subject_rules() {
        assert!(subject_problem("a.b").is_none());
        for bad in ["", "a b", ".a", "a.", "a..b"] {
            assert!(subject_problem(bad).is_some(), "{bad:?}");
        }
    }
}
