//! The NATS connection of the account server: a system-account user connection that starts
//! whenever NATS becomes reachable (first attempt at once, then every `reconnectwait`; see
//! `attempts.rs` for the server choice and the log line of each failed attempt), reconnects on
//! loss, sends pending update notifications and collects the nats-servers' replies, stores
//! updates other system-account clients publish, and answers account lookups.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Event};
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use super::attempts::{self, Attempts};
use super::resolver::{self, Inbound, ServerInfo};
use super::{subject_label, Shared};
use crate::config::NatsConfig;

/// How long replies of nats-servers to one notification are collected before they are counted.
const REPLY_WINDOW: Duration = Duration::from_millis(1500);

/// A problem with the NATS settings found before connecting.
#[derive(Debug, thiserror::Error)]
pub enum NatsSetupError {
    /// The creds file cannot be read or holds no JWT/seed.
    #[error("cannot use NATS credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A TLS file is missing.
    #[error("cannot read NATS TLS file {path}: {reason}")]
    Tls {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Checks the files the connection needs, so that a wrong path stops the start with a clear
/// message instead of failing every reconnect.
pub fn check_files(config: &NatsConfig) -> Result<(), NatsSetupError> {
    if let Some(path) = &config.user_credentials {
        let text = std::fs::read_to_string(path).map_err(|e| NatsSetupError::Credentials {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let jwt = crate::jwt::creds::parse_decorated_jwt(&text);
        if crate::jwt::decode(&jwt).is_err() || !text.lines().any(|l| l.trim().starts_with("SU")) {
            return Err(NatsSetupError::Credentials {
                path: path.display().to_string(),
                reason: "it does not hold a user JWT and a user seed (nsc creds format)".into(),
            });
        }
    }
    for path in [&config.tls.root, &config.tls.cert, &config.tls.key]
        .into_iter()
        .flatten()
    {
        std::fs::metadata(path).map_err(|e| NatsSetupError::Tls {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Replies collected for one sent notification.
#[derive(Debug, Default)]
struct Tally {
    label: String,
    updated: usize,
    skipped: usize,
    errors: Vec<String>,
}

/// Starts the connection task. It runs until the returned handle is aborted.
pub(crate) fn spawn<H: Inbound>(
    config: NatsConfig,
    shared: Arc<Shared>,
    handler: Arc<H>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        tracing::info!(
            "connecting to NATS for notifications at {}",
            attempts::show_all(&config.servers)
        );
        let server = Arc::new(ServerInfo::new(&config.name));
        let sync_every = Duration::from_millis(config.sync_interval_ms.max(1));
        let attempts = Arc::new(Attempts::new(
            Duration::from_millis(config.reconnect_wait_ms.max(1)),
            max_reconnects(config.max_reconnects),
            shared.clone(),
        ));
        loop {
            let client = connect_with_retry(&config, &shared, &attempts).await;
            run_session(client, &shared, &handler, &server, sync_every).await;
            tracing::error!(
                "gave up reconnecting to NATS after {} attempts; connecting anew",
                config.max_reconnects
            );
        }
    })
}

/// `maxreconnects` as async-nats takes it: -1 (any negative) is for ever, 0 is one attempt.
fn max_reconnects(configured: i64) -> Option<usize> {
    match configured {
        n if n < 0 => None,
        0 => Some(1),
        n => Some(usize::try_from(n).unwrap_or(usize::MAX)),
    }
}

/// Connects: the first attempt at once, then one every `reconnectwait`, taking the configured
/// servers in turn, until one works. Each failed attempt is one log line naming the server,
/// the cause and the delay until the next attempt.
async fn connect_with_retry(
    config: &NatsConfig,
    shared: &Arc<Shared>,
    attempts: &Arc<Attempts>,
) -> Client {
    let mut attempt = 0usize;
    loop {
        attempts.initial(attempt);
        let result = match options(config, shared.clone(), attempts.clone()).await {
            // Each URL is its own server address: async-nats parses a list, not a comma-joined
            // string.
            Ok(opts) => opts
                .connect(config.servers.as_slice())
                .await
                .map_err(|e| attempts::cause(&e.to_string()).to_string()),
            Err(e) => Err(format!("cannot read the credentials: {e}")),
        };
        match result {
            Ok(client) => {
                shared.set_client(Some(client.clone()));
                shared.set_connected(true);
                tracing::info!(
                    "connected to NATS for account notifications at {}",
                    attempts.server().unwrap_or_default()
                );
                return client;
            }
            Err(cause) => {
                // The server the attempt went to (none when it failed before choosing one).
                let server = attempts
                    .server()
                    .unwrap_or_else(|| attempts::show_all(&config.servers));
                shared.set_error(format!("{server}: {cause}"));
                tracing::error!(
                    "cannot connect to NATS at {server}: {cause}; next attempt in {} ms",
                    attempts.wait().as_millis()
                );
            }
        }
        tokio::time::sleep(attempts.wait()).await;
        attempt = attempt.wrapping_add(1);
    }
}

/// Serves one connection: the resolver protocol's responders, pack sync, reply collection
/// and the sender, until the client gives up reconnecting.
async fn run_session<H: Inbound>(
    client: Client,
    shared: &Arc<Shared>,
    handler: &Arc<H>,
    server: &Arc<ServerInfo>,
    sync_every: Duration,
) {
    let tallies: Arc<Mutex<HashMap<String, Tally>>> = Arc::default();
    let inbox = client.new_inbox();
    let mut tasks = Vec::new();
    let subscribe = |subject: &'static str| {
        let client = client.clone();
        async move {
            client
                .subscribe(subject)
                .await
                .map_err(|e| tracing::warn!("cannot subscribe to {subject}: {e}"))
                .ok()
        }
    };
    match client.subscribe(format!("{inbox}.*")).await {
        Ok(sub) => tasks.push(tokio::spawn(collect_replies(sub, tallies.clone()))),
        Err(e) => tracing::warn!("cannot subscribe to notification replies: {e}"),
    }
    for subject in [
        resolver::CLAIMS_UPDATE,
        "$SYS.ACCOUNT.*.CLAIMS.UPDATE",
        "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE",
    ] {
        if let Some(sub) = subscribe(subject).await {
            let (c, h, s) = (client.clone(), handler.clone(), server.clone());
            tasks.push(tokio::spawn(resolver::answer_updates(sub, c, h, s)));
        }
    }
    if let Some(sub) = subscribe("$SYS.REQ.ACCOUNT.*.CLAIMS.LOOKUP").await {
        let (c, h) = (client.clone(), handler.clone());
        tasks.push(tokio::spawn(resolver::answer_lookups(sub, c, h)));
    }
    if let Some(sub) = subscribe(resolver::CLAIMS_LIST).await {
        let (c, h, s) = (client.clone(), handler.clone(), server.clone());
        tasks.push(tokio::spawn(resolver::answer_lists(sub, c, h, s)));
    }
    if let Some(sub) = subscribe(resolver::CLAIMS_DELETE).await {
        let (c, h, s) = (client.clone(), handler.clone(), server.clone());
        tasks.push(tokio::spawn(resolver::answer_deletes(sub, c, h, s)));
    }
    let queued = client
        .queue_subscribe(resolver::CLAIMS_PACK, resolver::PACK_QUEUE.to_string())
        .await;
    match (queued, subscribe(resolver::CLAIMS_PACK).await) {
        (Ok(queued), Some(plain)) => {
            let (c, h) = (client.clone(), handler.clone());
            tasks.push(tokio::spawn(resolver::answer_packs(queued, plain, c, h)));
        }
        (Err(e), _) => tracing::warn!("cannot subscribe to pack requests: {e}"),
        _ => {}
    }
    tasks.push(tokio::spawn(super::sync::run(
        client.clone(),
        handler.clone(),
        shared.clone(),
        sync_every,
    )));
    let _guard = AbortOnDrop(tasks);
    tokio::select! {
        _ = send_pending(client, shared.clone(), inbox, tallies) => {}
        _ = shared.wait_closed() => {}
    }
}

/// Aborts the helper tasks when the connection task ends.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Connection options from the config (read on every attempt, so rotated creds are picked up).
async fn options(
    config: &NatsConfig,
    shared: Arc<Shared>,
    attempts: Arc<Attempts>,
) -> Result<ConnectOptions, std::io::Error> {
    let mut opts = match &config.user_credentials {
        Some(path) => ConnectOptions::with_credentials_file(path.clone()).await?,
        None => ConnectOptions::new(),
    };
    // The first Connected event of a client is its initial connect, later ones are reconnects.
    let seen_connect = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chooser = attempts.clone();
    opts = opts
        .name(config.name.as_str())
        .no_echo()
        .connection_timeout(Duration::from_millis(config.connect_timeout_ms.max(1)))
        .reconnect_delay_callback({
            let wait = attempts.wait();
            move |_| wait
        })
        .reconnect_to_server_callback(move |pool, _info| std::future::ready(chooser.choose(&pool)))
        .max_reconnects(max_reconnects(config.max_reconnects))
        .event_callback(move |event| {
            let (shared, attempts) = (shared.clone(), attempts.clone());
            let seen_connect = seen_connect.clone();
            async move {
                let server = attempts.server().unwrap_or_default();
                match event {
                    Event::Connected => {
                        shared.set_connected(true);
                        if seen_connect.swap(true, Ordering::SeqCst) {
                            shared.set_reconnected();
                            tracing::info!("reconnected to NATS at {server}");
                        }
                    }
                    // `Attempts` logs the loss, naming the server.
                    Event::Disconnected => shared.set_connected(false),
                    // Gave up (maxreconnects): the connection task says so and starts anew.
                    Event::ClientError(async_nats::ClientError::MaxReconnects) => {
                        shared.set_closed();
                    }
                    // A failed attempt, without server or cause: `Attempts` logs it with both.
                    Event::ClientError(async_nats::ClientError::Other(_)) => {}
                    // Every handle of the client was dropped (a reload, the end of a session).
                    Event::Closed => {
                        shared.set_closed();
                        tracing::info!("closed the NATS connection to {server}");
                    }
                    other => tracing::warn!("NATS at {server}: {other}"),
                }
            }
        });
    Ok(crate::tls::nats_client(opts, &config.tls))
}

/// Sends pending notifications whenever there are some and the connection is up.
async fn send_pending(
    client: Client,
    shared: Arc<Shared>,
    inbox: String,
    tallies: Arc<Mutex<HashMap<String, Tally>>>,
) {
    let counter = AtomicU64::new(0);
    loop {
        for (slot, subject, payload) in shared.pending_snapshot() {
            if client.connection_state() != async_nats::connection::State::Connected {
                break;
            }
            let label = subject_label(&subject);
            let reply = format!("{inbox}.{}", counter.fetch_add(1, Ordering::Relaxed));
            lock(&tallies).insert(
                reply.clone(),
                Tally {
                    label: label.clone(),
                    ..Tally::default()
                },
            );
            let sent = async {
                client
                    .publish_with_reply(subject.clone(), reply.clone(), payload.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                client.flush().await.map_err(|e| e.to_string())
            };
            match tokio::time::timeout(Duration::from_secs(5), sent).await {
                Ok(Ok(())) => {
                    shared.mark_sent(&slot, &payload);
                    metrics::counter!(crate::metrics::NOTIFICATIONS, "result" => "sent")
                        .increment(1);
                    tracing::info!("sent update notification for {label}");
                    tokio::spawn(report_replies(tallies.clone(), reply));
                }
                Ok(Err(e)) => {
                    metrics::counter!(crate::metrics::NOTIFICATIONS, "result" => "failed")
                        .increment(1);
                    lock(&tallies).remove(&reply);
                    tracing::warn!(
                        "could not send the notification for {label} ({e}); it stays pending"
                    );
                    break;
                }
                Err(_) => {
                    metrics::counter!(crate::metrics::NOTIFICATIONS, "result" => "failed")
                        .increment(1);
                    lock(&tallies).remove(&reply);
                    tracing::warn!(
                        "sending the notification for {label} timed out; it stays pending"
                    );
                    break;
                }
            }
        }
        // Wake up on new work, on reconnect, and every few seconds in any case.
        let _ = tokio::time::timeout(Duration::from_secs(5), shared.wait_for_work()).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts the replies nats-servers send to notifications.
async fn collect_replies(
    mut sub: async_nats::Subscriber,
    tallies: Arc<Mutex<HashMap<String, Tally>>>,
) {
    while let Some(msg) = sub.next().await {
        let reply: serde_json::Value = match serde_json::from_slice(&msg.payload) {
            Ok(v) => v,
            Err(_) => continue,
        };
        let mut tallies = lock(&tallies);
        let Some(tally) = tallies.get_mut(msg.subject.as_str()) else {
            continue;
        };
        let server = reply["server"]["name"].as_str().unwrap_or("?").to_string();
        if let Some(err) = reply.get("error") {
            let text = err["description"].as_str().unwrap_or("unknown error");
            tally.errors.push(format!("{server}: {text}"));
        } else if reply["data"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("skipped")
        {
            tally.skipped += 1;
        } else {
            tally.updated += 1;
        }
    }
}

/// Logs, after the reply window, how many nats-servers confirmed a notification.
async fn report_replies(tallies: Arc<Mutex<HashMap<String, Tally>>>, reply: String) {
    tokio::time::sleep(REPLY_WINDOW).await;
    let Some(t) = lock(&tallies).remove(&reply) else {
        return;
    };
    let short = &t.label;
    tracing::info!(
        "notification for {short}: {} nats-server(s) confirmed \"jwt updated\", {} skipped (account not loaded), {} error(s)",
        t.updated,
        t.skipped,
        t.errors.len()
    );
    for e in t.errors {
        tracing::warn!("notification for {short}: {e}");
    }
}
