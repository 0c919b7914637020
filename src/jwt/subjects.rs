//! Subject rules of the Go jwt library, as the union of v2.3.0 (nats-server 2.9) and v2.8
//! (nats-server 2.10 to 2.15): a subject either version refuses is refused.

/// Go `Subject.Validate` of both versions: not empty, no space, and (v2.8) no leading or
/// trailing `.` and no `..`. Each problem is one message.
pub(crate) fn subject_problems(subject: &str) -> Vec<String> {
    if subject.is_empty() {
        return vec!["subject cannot be empty".into()];
    }
    let mut out = Vec::new();
    if subject.contains(' ') {
        out.push(format!("subject {subject:?} cannot have spaces"));
    }
    if subject.starts_with('.') || subject.ends_with('.') {
        out.push(format!(
            "subject {subject:?} cannot start or end with a `.`"
        ));
    }
    if subject.contains("..") {
        out.push(format!(
            "subject {subject:?} cannot contain consecutive `.`"
        ));
    }
    out
}

/// Go `Subject.HasWildCards`.
pub(crate) fn has_wildcards(subject: &str) -> bool {
    subject.ends_with(".>")
        || subject.contains(".*.")
        || subject.ends_with(".*")
        || subject.starts_with("*.")
        || subject == "*"
        || subject == ">"
}

/// Go `Subject.IsContainedIn`: every subject `inner` matches is matched by `outer`.
pub(crate) fn is_contained_in(inner: &str, outer: &str) -> bool {
    let outer: Vec<&str> = outer.split('.').collect();
    let inner: Vec<&str> = inner.split('.').collect();
    if inner.len() > outer.len() && outer.last() != Some(&">") {
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

fn is_full_wildcard(subject: &str) -> bool {
    subject == ">" || subject.ends_with(".>")
}

/// A `$<n>` reference token (Go `strconv.Atoi` of what follows `$`).
fn reference(token: &str) -> Option<i64> {
    let rest = token.strip_prefix('$').filter(|r| !r.is_empty())?;
    let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.parse().ok()
}

/// Go `RenamingSubject.Validate(local, from)`: an import's `local_subject`.
pub(crate) fn renaming_problems(local: &str, from: &str) -> Vec<String> {
    let mut out = subject_problems(local);
    if from.is_empty() {
        out.push("subject cannot be empty".into());
    }
    if is_full_wildcard(local) != is_full_wildcard(from) {
        out.push("both, renaming subject and subject, need to end or not end in >".into());
    }
    let from_count = from.split('.').filter(|t| *t == "*").count() as i64;
    let mut refs = 0;
    for token in local.split('.') {
        if token == "*" {
            refs += 1;
        } else if let Some(n) = reference(token) {
            if n > from_count {
                out.push(format!(
                    "Reference ${n} in {local:?} reference * in {from:?} that do not exist"
                ));
            } else {
                refs += 1;
            }
        }
    }
    if refs != from_count {
        out.push("subject does not contain enough * or reference wildcards $[0-9]".into());
    }
    out
}

/// Go `RenamingSubject.ToSubject`: `$<n>` tokens read as `*`.
pub(crate) fn renaming_to_subject(local: &str) -> String {
    local
        .split('.')
        .map(|t| if reference(t).is_some() { "*" } else { t })
        .collect::<Vec<_>>()
        .join(".")
}

/// Go `checkPermission`: a subject, or (where queues are allowed) `subject queue`.
pub(crate) fn permission_problems(subject: &str, queue_allowed: bool) -> Vec<String> {
    let tokens: Vec<&str> = subject.split(' ').collect();
    match tokens.as_slice() {
        [one] => subject_problems(one),
        [subj, queue] => {
            let mut out = subject_problems(subj);
            out.extend(subject_problems(queue));
            if !queue_allowed {
                out.push(format!(
                    "Permission Subject {subject:?} is not allowed to contain queue"
                ));
            }
            out
        }
        _ => vec![format!(
            "Permission Subject {subject:?} contains too many spaces"
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containment_follows_go() {
        assert!(is_contained_in("a.b", "a.*"));
        assert!(is_contained_in("a.b.c", "a.>"));
        assert!(is_contained_in("a.>", "a.>"));
        assert!(is_contained_in("a.>", "a.*"));
        assert!(!is_contained_in("a", "a.b"));
        assert!(!is_contained_in("b.c", "a.*"));
    }

    #[test]
    fn subject_rules_of_both_versions() {
        assert!(subject_problems("a.b").is_empty());
        assert!(subject_problems("a\tb").is_empty(), "Go checks spaces only");
        for bad in ["", "a b", ".a", "a.", "a..b"] {
            assert!(!subject_problems(bad).is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn wildcards_as_go_sees_them() {
        for w in ["*", ">", "a.>", "a.*", "*.a", "a.*.b"] {
            assert!(has_wildcards(w), "{w}");
        }
        for n in ["a*", ">.a", "a.b", "a.>.b"] {
            assert!(!has_wildcards(n), "{n}");
        }
    }

    #[test]
    fn renaming_needs_matching_wildcards() {
        assert!(renaming_problems("x.$1", "a.*").is_empty());
        assert!(renaming_problems("x.*", "a.*").is_empty());
        assert!(!renaming_problems("x.$2", "a.*").is_empty());
        assert!(!renaming_problems("x", "a.*").is_empty());
        assert!(!renaming_problems("x.>", "a.b").is_empty());
        assert_eq!(renaming_to_subject("x.$1.y"), "x.*.y");
    }

    #[test]
    fn permissions_allow_queues_only_where_asked() {
        assert!(permission_problems("a.b q", true).is_empty());
        assert!(!permission_problems("a.b q", false).is_empty());
        assert!(!permission_problems("a b c", true).is_empty());
    }
}
