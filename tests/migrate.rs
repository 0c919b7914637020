//! `nats-account-server migrate`: a 10,000-account directory store copied into a JetStream KV
//! bucket through the rules of a push, with a summary (copied / unchanged / refused and why);
//! every key is then read back from the bucket. A second run changes nothing, and a newer JWT
//! already in the bucket is not rolled back.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::kv::*;
use support::*;

const ACCOUNTS: usize = 10_000;

/// Runs `migrate -from <from> -c <config>`: (exit code, stdout, stderr), bounded to 5 minutes.
fn migrate(from: &Path, config: &Path) -> (i32, String, String) {
    migrate_with_stderr(from, config, Stdio::piped())
}

/// Like [`migrate`], with stderr going to `stderr`.
fn migrate_with_stderr(from: &Path, config: &Path, stderr: Stdio) -> (i32, String, String) {
    let mut child = Command::new(AccountServer::binary())
        .args([
            "migrate",
            "-from",
            from.to_str().unwrap(),
            "-c",
            config.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("migrate did not finish within 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn account_jwt(kp: &nkeys::KeyPair, iat: i64, signer: &nkeys::KeyPair) -> String {
    let mut claims = account_claims("M", &kp.public_key());
    claims["iat"] = json!(iat);
    sign(&claims, signer)
}

#[test]
fn a_directory_store_of_ten_thousand_accounts_moves_into_jetstream() {
    let w = World::new();
    let js = JsServer::start(&nats_server_binary(), w.dir.path());
    let config = w.path("nas.conf");
    std::fs::write(&config, kv_nas_config(&w, &[js.url()], "accounts", 1, "")).unwrap();

    // The source: 10,000 accounts (flat layout), one expired and one signed by a stranger.
    let source = w.path("source");
    std::fs::create_dir_all(&source).unwrap();
    let now = now();
    let mut files = Vec::new();
    for _ in 0..ACCOUNTS {
        let kp = nkeys::KeyPair::new_account();
        let jwt = account_jwt(&kp, now - 1000, &w.signing_key);
        std::fs::write(source.join(format!("{}.jwt", kp.public_key())), &jwt).unwrap();
        files.push((kp, jwt));
    }
    let expired = nkeys::KeyPair::new_account();
    let mut claims = account_claims("X", &expired.public_key());
    claims["exp"] = json!(now - 10);
    std::fs::write(
        source.join(format!("{}.jwt", expired.public_key())),
        sign(&claims, &w.signing_key),
    )
    .unwrap();
    let stranger = nkeys::KeyPair::new_account();
    let foreign = account_jwt(&stranger, now - 1000, &nkeys::KeyPair::new_operator());
    std::fs::write(
        source.join(format!("{}.jwt", stranger.public_key())),
        foreign,
    )
    .unwrap();

    // A newer JWT of the first account is in the bucket already (migrated from elsewhere).
    let newer_dir = w.path("newer");
    std::fs::create_dir_all(&newer_dir).unwrap();
    let newer = account_jwt(&files[0].0, now - 10, &w.signing_key);
    std::fs::write(
        newer_dir.join(format!("{}.jwt", files[0].0.public_key())),
        &newer,
    )
    .unwrap();
    let (code, out, err) = migrate(&newer_dir, &config);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(": 1 copied, 0 unchanged, 0 refused, 0 failed"),
        "{out}"
    );

    let started = Instant::now();
    let (code, out, err) = migrate(&source, &config);
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}{err}");
    eprintln!("migrate of {} JWTs took {took:?}:\n{out}", ACCOUNTS + 2);
    let total = ACCOUNTS + 2;
    assert!(
        out.contains(&format!(
            "migrated {total} account JWT(s) from {} into JetStream KV bucket accounts",
            source.display()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            ": {} copied, 0 unchanged, 3 refused, 0 failed",
            ACCOUNTS - 1
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "refused 1: a newer JWT is stored already: {}",
            files[0].0.public_key()
        )),
        "{out}"
    );
    assert!(
        out.contains(&expired.public_key()) && out.contains("expired"),
        "{out}"
    );
    assert!(out.contains(&stranger.public_key()), "{out}");

    // Every key reads back from the bucket: the file's JWT, or the newer one.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client =
            async_nats::ConnectOptions::with_user_and_password(JS_USER.into(), JS_PASSWORD.into())
                .connect(js.url())
                .await
                .unwrap();
        let kv = async_nats::jetstream::new(client)
            .get_key_value("accounts")
            .await
            .unwrap();
        for (n, (kp, jwt)) in files.iter().enumerate() {
            let stored = kv.get(kp.public_key()).await.unwrap().expect("stored");
            let expected = if n == 0 { &newer } else { jwt };
            assert_eq!(stored, expected.as_bytes(), "{}", kp.public_key());
        }
        for refused in [&expired, &stranger] {
            assert_eq!(kv.get(refused.public_key()).await.unwrap(), None);
        }
    });

    // Again, on a terminal: a progress bar, and nothing changes.
    let (rx, slave) = pty_output();
    let (code, out, _) = migrate_with_stderr(&source, &config, Stdio::from(slave));
    assert_eq!(code, 0);
    let unchanged = ACCOUNTS - 1;
    assert!(
        out.contains(&format!(
            ": 0 copied, {unchanged} unchanged, 3 refused, 0 failed"
        )),
        "{out}"
    );
    let mut terminal = Vec::new();
    while let Ok(bytes) = rx.recv_timeout(Duration::from_millis(500)) {
        terminal.extend(bytes);
    }
    let terminal = String::from_utf8_lossy(&terminal);
    let bar = format!(
        "\r[{}] {total}/{total} copied 0 unchanged {unchanged}",
        "#".repeat(30)
    );
    assert!(terminal.contains(&bar), "{terminal:?}");
    assert!(terminal.matches('\r').count() >= 50, "{terminal:?}");
}
