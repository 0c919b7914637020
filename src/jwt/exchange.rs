//! Validation of what an account shares and maps: imports (with their activation tokens),
//! exports and subject mappings, as the union of the Go jwt library's v2.3.0 and v2.8 rules.

use std::collections::BTreeMap;

use super::account::{Export, Import, Kind, WeightedMapping};
use super::subjects::{
    has_wildcards, is_contained_in, renaming_problems, renaming_to_subject, subject_problems,
};
use super::validate::{validate_info, Issues};
use super::{decode_activation, is_account_key};

/// `imports`: each import, and (v2.3.0, the stricter) no two service imports whose local
/// subjects overlap, whatever account they come from.
pub(crate) fn validate_imports(imports: &[Import], importer: &str, issues: &mut Issues) {
    let mut seen: Vec<String> = Vec::new();
    for import in imports {
        if import.kind == Kind::Service {
            let sub = if !import.to.is_empty() {
                import.to.clone()
            } else if !import.local_subject.is_empty() {
                renaming_to_subject(&import.local_subject)
            } else {
                import.subject.clone()
            };
            for k in &seen {
                if is_contained_in(&sub, k) || is_contained_in(k, &sub) {
                    issues.error(format!(
                        "overlapping subject namespace for {sub:?} and {k:?} (service imports; nats-server 2.9 refuses this even across accounts)"
                    ));
                }
            }
            seen.push(sub);
        }
        validate_import(import, importer, issues);
    }
}

fn validate_import(import: &Import, importer: &str, issues: &mut Issues) {
    let at = format!("import {:?}: ", import.subject);
    if import.kind == Kind::Unknown {
        issues.error(format!("{at}invalid import type: \"unknown\""));
    }
    if import.kind == Kind::Service && import.allow_trace {
        issues.error(format!("{at}AllowTrace only valid for stream import"));
    }
    if import.account.is_empty() {
        issues.error(format!("{at}account to import from is not specified"));
    }
    if !import.to.is_empty() {
        issues.warning(format!(
            "{at}the field to has been deprecated (use LocalSubject instead)"
        ));
    }
    issues.errors(&at, subject_problems(&import.subject));
    if !import.local_subject.is_empty() {
        issues.errors(
            &format!("{at}local_subject: "),
            renaming_problems(&import.local_subject, &import.subject),
        );
        if !import.to.is_empty() {
            issues.error(format!("{at}Local Subject replaces To"));
        }
    }
    if import.share && import.kind != Kind::Service {
        issues.error(format!(
            "{at}sharing information (for latency tracking) is only valid for services"
        ));
    }
    if !import.token.is_empty() {
        validate_activation(import, importer, &at, issues);
    }
}

/// The activation token of an import (its time checks are nats-server's, at use).
fn validate_activation(import: &Import, importer: &str, at: &str, issues: &mut Issues) {
    let (token, act) = match decode_activation(&import.token) {
        Ok(t) => t,
        Err(e) => {
            issues.error(format!("{at}contains an invalid activation token: {e}"));
            return;
        }
    };
    let iss = &token.claims.iss;
    if iss != &import.account && act.issuer_account != import.account {
        issues.error(format!("{at}activation token doesn't match account for import (issued by {iss}, import from {})", import.account));
    }
    if token.claims.sub != importer {
        issues.error(format!(
            "{at}activation token doesn't match account it is being included in, {:?}",
            token.claims.sub
        ));
    }
    if act.kind != import.kind.to_string() {
        issues.error(format!(
            "{at}mismatch between token import type {} and type of import {}",
            act.kind, import.kind
        ));
    }
    issues.errors(
        &format!("{at}activation token subject: "),
        subject_problems(&act.subject),
    );
    if !act.issuer_account.is_empty() && !is_account_key(&act.issuer_account) {
        issues.error(format!("{at}account_id is not an account public key"));
    }
    let s = if import.kind == Kind::Service && !import.to.is_empty() {
        &import.to
    } else {
        &import.subject
    };
    if !is_contained_in(s, &act.subject) {
        issues.error(format!(
            "{at}activation token import subject {:?} doesn't match import {:?}",
            act.subject, import.subject
        ));
    }
}

/// `exports`: each export, and no export of a kind containing another of the same kind.
pub(crate) fn validate_exports(exports: &[Export], issues: &mut Issues) {
    for export in exports {
        validate_export(export, issues);
    }
    for kind in [Kind::Service, Kind::Stream] {
        let of_kind = |e: &&Export| (e.kind == Kind::Service) == (kind == Kind::Service);
        let subjects: Vec<&str> = exports
            .iter()
            .filter(of_kind)
            .map(|e| e.subject.as_str())
            .collect();
        let mut reported: Vec<&str> = Vec::new();
        for (i, inner) in subjects.iter().enumerate() {
            for (j, outer) in subjects.iter().enumerate() {
                if i != j && is_contained_in(inner, outer) && !reported.contains(outer) {
                    reported.push(outer);
                    issues.error(format!(
                        "{kind} export subject {outer:?} already exports {inner:?}"
                    ));
                }
            }
        }
    }
}

fn validate_export(export: &Export, issues: &mut Issues) {
    let at = format!("export {:?}: ", export.subject);
    let service = export.kind == Kind::Service;
    let rt = export.response_type.as_str();
    match export.kind {
        Kind::Unknown => issues.error(format!("{at}invalid export type: \"unknown\"")),
        Kind::Service if !matches!(rt, "" | "Singleton" | "Stream" | "Chunked") => {
            issues.error(format!("{at}invalid response type for service: {rt:?}"))
        }
        Kind::Stream if !rt.is_empty() => {
            issues.error(format!("{at}invalid response type for stream: {rt:?}"))
        }
        _ => {}
    }
    if export.kind == Kind::Stream && export.allow_trace {
        issues.error(format!("{at}AllowTrace only valid for service export"));
    }
    if let Some(latency) = &export.service_latency {
        if !service {
            issues.error(format!("{at}latency tracking only permitted for services"));
        }
        if latency.sampling.0 != 0 && !(1..=100).contains(&latency.sampling.0) {
            issues.error(format!(
                "{at}sampling percentage needs to be between 1-100 (service_latency.sampling)"
            ));
        }
        issues.errors(
            &format!("{at}service_latency.results: "),
            subject_problems(&latency.results),
        );
        if has_wildcards(&latency.results) {
            issues.error(format!("{at}results subject can not contain wildcards"));
        }
    }
    if export.response_threshold < 0 {
        issues.error(format!("{at}negative response threshold is invalid"));
    }
    if export.response_threshold > 0 && !service {
        issues.error(format!("{at}response threshold only valid for services"));
    }
    issues.errors(&at, subject_problems(&export.subject));
    validate_token_position(export, &at, issues);
    validate_info(&export.description, &export.info_url, "export", issues);
}

fn validate_token_position(export: &Export, at: &str, issues: &mut Issues) {
    let p = export.account_token_position;
    if p == 0 {
        return;
    }
    let subject = &export.subject;
    let tokens: Vec<&str> = subject.split('.').collect();
    if !has_wildcards(subject) {
        issues.error(format!(
            "{at}Account Token Position can only be used with wildcard subjects: {subject}"
        ));
    } else if p as usize > tokens.len() {
        issues.error(format!(
            "{at}Account Token Position {p} exceeds length of subject '{subject}'"
        ));
    } else if tokens[p as usize - 1] != "*" {
        issues.error(format!(
            "{at}Account Token Position {p} matches '{}' but must match a * in: {subject}",
            tokens[p as usize - 1]
        ));
    }
}

/// `mappings`: v2.3.0 (no wildcard targets; all weights, 0 read as 100, summed in a wrapping
/// byte, at most 100) and v2.8 (no weight above 100; per cluster and cluster-less sums at most
/// 100).
pub(crate) fn validate_mappings(
    mappings: &BTreeMap<String, Vec<WeightedMapping>>,
    issues: &mut Issues,
) {
    for (from, targets) in mappings {
        let at = format!("mapping {from:?}: ");
        issues.errors(&at, subject_problems(from));
        let weight = |m: &WeightedMapping| if m.weight == 0 { 100 } else { m.weight };
        let mut v23_total: u8 = 0;
        let mut total: u32 = 0;
        let mut clusters: BTreeMap<&str, u32> = BTreeMap::new();
        let mut seen: Vec<&str> = Vec::new();
        for m in targets {
            issues.errors(&at, subject_problems(&m.subject));
            if seen.contains(&m.subject.as_str()) {
                issues.error(format!("{at}duplicate entry for {:?}", m.subject));
            }
            seen.push(&m.subject);
            if let Some(why) = transform_problem(from, &m.subject) {
                issues.error(format!(
                    "{at}-> {:?}: {why} (nats-server refuses the mapping)",
                    m.subject
                ));
            }
            if has_wildcards(&m.subject) {
                issues.error(format!(
                    "{at}Subject {:?} in weighted mapping {from:?} is not allowed to contains wildcard (nats-server 2.9)",
                    m.subject
                ));
            }
            v23_total = v23_total.wrapping_add(weight(m));
            if weight(m) > 100 {
                issues.error(format!(
                    "{at}Mapping {from:?} has a weight {} that exceeds 100",
                    weight(m)
                ));
            }
            if m.cluster.is_empty() {
                total += u32::from(weight(m));
            } else {
                let sum = clusters.entry(m.cluster.as_str()).or_default();
                *sum += u32::from(weight(m));
                if *sum > 100 {
                    issues.error(format!(
                        "{at}Mapping {from:?} in cluster {:?} exceeds 100% among all of it's weighted to mappings",
                        m.cluster
                    ));
                }
            }
        }
        if total > 100 || v23_total > 100 {
            issues.error(format!(
                "{at}Mapping {from:?} exceeds 100% among all of it's weighted to mappings"
            ));
        }
    }
}

/// Tokens of a subject with wildcards: `(number of `*`, ends in `>`)`, `None` when not a valid
/// subject (an empty token, `>` before the end).
fn subject_info(subject: &str) -> Option<(usize, bool)> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let mut stars = 0;
    for (i, t) in tokens.iter().enumerate() {
        match *t {
            "" => return None,
            ">" if i + 1 != tokens.len() => return None,
            "*" => stars += 1,
            _ => {}
        }
    }
    Some((stars, tokens.last() == Some(&">")))
}

/// Mapping functions nats-server knows in a destination token (`{{name(args)}}`).
const MAPPING_FUNCTIONS: [&str; 10] = [
    "wildcard",
    "partition",
    "splitfromleft",
    "splitfromright",
    "slicefromleft",
    "slicefromright",
    "split",
    "left",
    "right",
    "random",
];

/// nats-server's subject transform rules for a mapping `from` -> `to` (what 2.15 checks when
/// an account JWT arrives): both valid subjects, no `*` in the destination, `>` in both or in
/// neither, `$n` / `{{wildcard(n)}}` referring to a wildcard of `from`, known functions only.
fn transform_problem(from: &str, to: &str) -> Option<String> {
    let (Some((stars, full)), Some((to_stars, to_full))) = (subject_info(from), subject_info(to))
    else {
        return Some("invalid subject".into());
    };
    if to_stars > 0 || full != to_full {
        return Some(
            "invalid subject (the destination may not use *, and > must be in both or neither)"
                .into(),
        );
    }
    for token in to.split('.') {
        let index = if let Some(n) = token.strip_prefix('$') {
            n.parse::<usize>().ok()
        } else if let Some(body) = token.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) {
            let body = body.trim();
            let name = body
                .split('(')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if !MAPPING_FUNCTIONS.contains(&name.as_str()) || !body.ends_with(')') {
                return Some(format!("unknown mapping function in {token:?}"));
            }
            let args = body[name.len()..]
                .trim()
                .trim_start_matches('(')
                .trim_end_matches(')');
            args.split(',')
                .next()
                .and_then(|a| a.trim().parse::<usize>().ok())
                .filter(|_| name == "wildcard")
        } else {
            None
        };
        if let Some(i) = index {
            if i < 1 || i > stars {
                return Some(format!(
                    "{token:?} refers to a wildcard {from:?} does not have"
                ));
            }
        }
    }
    None
}
