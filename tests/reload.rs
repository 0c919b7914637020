//! SIGHUP reloads the configuration without dropping the listener: two reloads in a row, each
//! change in effect, and a broken config keeps the running one.

mod support;

use std::time::Duration;

use support::*;

#[test]
fn two_sighups_in_a_row_apply_each_change_and_keep_serving() {
    let w = World::new();
    let conf_path = w.path("nas.conf");
    let write = |body: &str| {
        std::fs::write(
            &conf_path,
            format!("http {{ host: 127.0.0.1, port: 0 }}\nlogging {{ colors: false }}\n{body}"),
        )
        .unwrap()
    };
    // 1: no operator, store in dir1.
    write(&format!(
        "store {{ dir: \"{}\" }}\n",
        w.path("dir1").display()
    ));
    let nas = AccountServer::start_args(&["-c", conf_path.to_str().unwrap()]);
    let (a, a_jwt) = w.new_account("A");
    let key = a.public_key();
    assert_eq!(nas.post_account(&key, &a_jwt).status, 400);

    // 2: the operator is configured now.
    write(&format!(
        "store {{ dir: \"{}\" }}\noperatorjwtpath: \"{}\"\n",
        w.path("dir1").display(),
        w.operator_path.display()
    ));
    nas.signal("HUP");
    assert!(
        nas.logs
            .wait_for("configuration reloaded", Duration::from_secs(10))
            .is_some(),
        "{}",
        nas.logs.text()
    );
    assert_eq!(nas.post_account(&key, &a_jwt).status, 200);
    assert!(w.path("dir1").join(format!("{key}.jwt")).is_file());

    // 3: a second SIGHUP moves the store to dir2.
    write(&format!(
        "store {{ dir: \"{}\", shard: true }}\noperatorjwtpath: \"{}\"\n",
        w.path("dir2").display(),
        w.operator_path.display()
    ));
    nas.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while nas.logs.count("configuration reloaded") < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        nas.logs.count("configuration reloaded"),
        2,
        "{}",
        nas.logs.text()
    );
    assert_eq!(nas.get(&format!("/jwt/v1/accounts/{key}")).status, 404);
    let (b, b_jwt) = w.new_account("B");
    assert_eq!(nas.post_account(&b.public_key(), &b_jwt).status, 200);
    assert!(w
        .path("dir2")
        .join(&b.public_key()[54..])
        .join(format!("{}.jwt", b.public_key()))
        .is_file());

    // A broken config: logged, the running one stays.
    std::fs::write(&conf_path, "http {\n").unwrap();
    nas.signal("HUP");
    assert!(nas
        .logs
        .wait_for(
            "reload failed, keeping the running configuration",
            Duration::from_secs(10)
        )
        .is_some());
    assert_eq!(
        nas.get(&format!("/jwt/v1/accounts/{}", b.public_key()))
            .text(),
        b_jwt
    );
    assert_eq!(nas.get("/healthz").status, 200);
}
