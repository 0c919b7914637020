//! Creds files (user JWT + seed, decorated) as written by nsc and read by NATS clients.

/// Formats a creds file exactly as Go's `jwt.FormatUserConfig` does (BEGIN lines with 5 dashes,
/// END lines with 6, the IMPORTANT banner).
pub fn format_user_creds(user_jwt: &str, user_seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n\
************************* IMPORTANT *************************\n\
NKEY Seed printed below can be used to sign and prove identity.\n\
NKEYs are sensitive and should be treated as secrets.\n\n\
-----BEGIN USER NKEY SEED-----\n{user_seed}\n------END USER NKEY SEED------\n\n\
*************************************************************\n"
    )
}

/// Extracts the first decorated JWT from text (`-----BEGIN ... JWT-----` framing), or returns the
/// trimmed input when it holds no framing (Go `ParseDecoratedJWT`).
pub fn parse_decorated_jwt(text: &str) -> String {
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if is_dash_line(line) {
            if let Some(token) = lines.next() {
                if !token.is_empty()
                    && token
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "_-.=".contains(c))
                {
                    return token.to_string();
                }
            }
        }
    }
    text.trim().to_string()
}

/// `---... text ...---` (3 or more dashes on both ends).
fn is_dash_line(line: &str) -> bool {
    line.len() >= 6 && line.starts_with("---") && line.ends_with("---")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_go_written_creds_file_byte_for_byte() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/go-jwt/users/ua.creds"
        );
        let go = std::fs::read_to_string(path).unwrap();
        let jwt = parse_decorated_jwt(&go);
        let seed = go.lines().find(|l| l.starts_with("SU")).unwrap();
        assert!(jwt.starts_with("eyJ"));
        assert_eq!(format_user_creds(&jwt, seed), go);
    }

    #[test]
    fn raw_tokens_pass_through_trimmed() {
        assert_eq!(parse_decorated_jwt("  eyJabc.def.ghi\n"), "eyJabc.def.ghi");
        let decorated =
            "-----BEGIN NATS OPERATOR JWT-----\neyJx.y.z\n------END NATS OPERATOR JWT------\n";
        assert_eq!(parse_decorated_jwt(decorated), "eyJx.y.z");
    }
}
