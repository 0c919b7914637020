//! The command line read as Go's `flag` package reads it.

use super::*;

fn cli(args: &[&str]) -> Cli {
    parse(std::iter::once("nas").chain(args.iter().copied())).unwrap()
}

fn err(args: &[&str]) -> CliError {
    parse(std::iter::once("nas").chain(args.iter().copied())).unwrap_err()
}

#[test]
fn go_style_single_dash_flags() {
    let c = cli(&[
        "-c",
        "nas.conf",
        "-hp",
        "127.0.0.1:9090",
        "-DV",
        "-dir",
        "/d",
    ]);
    assert_eq!(c.config_file, Some(PathBuf::from("nas.conf")));
    assert_eq!(c.overrides.host_port, Some(("127.0.0.1".into(), 9090)));
    assert!(c.overrides.debug && c.overrides.trace);
    assert_eq!(c.overrides.dir, Some(PathBuf::from("/d")));
}

#[test]
fn double_dash_and_equals_forms() {
    let c = cli(&[
        "--hp=[::1]:80",
        "--c=x.conf",
        "-D",
        "-operator=/op.jwt",
        "--nats",
        "nats://h:1",
        "-lenient",
    ]);
    assert_eq!(c.overrides.host_port, Some(("::1".into(), 80)));
    assert_eq!(c.config_file, Some(PathBuf::from("x.conf")));
    assert!(c.overrides.debug && !c.overrides.trace);
    assert_eq!(c.overrides.operator, Some(PathBuf::from("/op.jwt")));
    assert_eq!(c.overrides.nats.as_deref(), Some("nats://h:1"));
    assert!(c.lenient);
}

#[test]
fn booleans_take_only_equals_values() {
    let c = cli(&["-V=true", "-D=false", "-ro", "-dump=1"]);
    assert!(c.overrides.trace && !c.overrides.debug && c.overrides.readonly && c.dump);
    // `-D true`: "true" is the first non-flag argument, so parsing stops there.
    let c = cli(&["-D", "true", "-V"]);
    assert!(c.overrides.debug && !c.overrides.trace);
    assert_eq!(c.ignored, ["true", "-V"]);
}

#[test]
fn the_last_value_of_a_repeated_flag_wins() {
    let c = cli(&[
        "-dir", "a", "-dir", "b", "-DV", "-DV", "-hp", ":1", "--hp=:2",
    ]);
    assert_eq!(c.overrides.dir, Some(PathBuf::from("b")));
    assert!(c.overrides.debug && c.overrides.trace);
    assert_eq!(c.overrides.host_port, Some((String::new(), 2)));
    let c = cli(&["-D", "-D=false", "-ro=true", "-ro=0"]);
    assert!(!c.overrides.debug && !c.overrides.readonly);
}

#[test]
fn an_empty_value_leaves_the_setting_unset() {
    let c = cli(&[
        "-dir=",
        "-c",
        "",
        "-hp=",
        "-nats=",
        "-creds",
        "",
        "-primary=",
    ]);
    assert_eq!(c, Cli::default());
    // An empty value after a real one unsets it again (the last value wins).
    let c = cli(&["-dir", "/d", "-dir="]);
    assert_eq!(c.overrides.dir, None);
}

#[test]
fn value_flags_take_the_next_argument_verbatim() {
    let c = cli(&["-creds", "-weird-name", "-dir=a=b"]);
    assert_eq!(c.overrides.creds, Some(PathBuf::from("-weird-name")));
    assert_eq!(c.overrides.dir, Some(PathBuf::from("a=b")));
}

#[test]
fn home_is_expanded_in_path_flags() {
    let home = std::env::var("HOME").unwrap();
    let c = cli(&[
        "-c",
        "~/nas.conf",
        "-dir",
        "~/jwt",
        "-operator",
        "~/op.jwt",
        "-creds",
        "~/s.creds",
    ]);
    assert_eq!(c.config_file, Some(PathBuf::from(&home).join("nas.conf")));
    assert_eq!(c.overrides.dir, Some(PathBuf::from(&home).join("jwt")));
    assert_eq!(
        c.overrides.operator,
        Some(PathBuf::from(&home).join("op.jwt"))
    );
    assert_eq!(
        c.overrides.creds,
        Some(PathBuf::from(&home).join("s.creds"))
    );
}

#[test]
fn help_version_and_errors_in_the_go_spelling() {
    for help in ["-h", "-help", "--help", "--h"] {
        assert!(matches!(err(&[help]), CliError::Help), "{help}");
    }
    for version in ["-v", "-version", "--version", "--v"] {
        assert!(matches!(err(&[version]), CliError::Version), "{version}");
    }
    assert_eq!(err(&["-h"]).exit_code(), 0);
    assert_eq!(err(&["-v"]).exit_code(), 0);
    let text = usage();
    for spelled in [
        "  -c string",
        "  -hp string",
        "  -D\n",
        "  -DV\n",
        "  -lenient\n",
        "  -v, -version",
    ] {
        assert!(text.contains(spelled), "{spelled:?} missing in\n{text}");
    }
    assert!(!text.contains("--c") && !text.contains("--D"), "{text}");

    for (args, reason) in [
        (&["-nope"][..], "flag provided but not defined: -nope"),
        (&["--x=1"], "flag provided but not defined: -x"),
        (&["-c"], "flag needs an argument: -c"),
        (
            &["-D=maybe"],
            "invalid boolean value \"maybe\" for -D: parse error",
        ),
        (&["---dir"], "bad flag syntax: ---dir"),
        (&["-=x"], "bad flag syntax: -=x"),
    ] {
        let e = err(args);
        assert_eq!(e.exit_code(), 2, "{args:?}");
        let text = e.to_string();
        assert_eq!(text.lines().next(), Some(reason), "{args:?}: {text}");
        assert!(text.contains("Usage of nats-account-server:"), "{text}");
    }
    for bad in ["localhost", "localhost:blam", "::1:80", "h:70000"] {
        let e = err(&["-hp", bad]);
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("hostport"), "{e}");
    }
    assert!(parse(["nas", "-dir", "~bob/x"]).is_err());
}

#[test]
fn empty_host_is_allowed() {
    assert_eq!(split_host_port(":9090").unwrap(), (String::new(), 9090));
}
