//! TLS setup shared by the HTTPS listener and the clients: one process-wide crypto provider
//! (ring; async-nats needs a single provider), and the server config from PEM files.

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Installs ring as the process-wide rustls provider (no-op when one is installed).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A TLS setup problem, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file cannot be read or parsed.
    #[error("cannot load {what} from {path}: {reason}")]
    File {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The pair is inconsistent or rustls refuses it.
    #[error("invalid TLS configuration: {0}")]
    Config(String),
    /// `cert` without `key` or the reverse.
    #[error("http.tls needs both cert and key")]
    Incomplete,
}

/// `opts` with the client TLS settings of `tls` (a `nats.tls` or `store.jetstream.tls` block):
/// a CA to trust, a client certificate, TLS before the server's INFO (`handshakefirst`).
pub fn nats_client(
    mut opts: async_nats::ConnectOptions,
    tls: &crate::config::TlsConfig,
) -> async_nats::ConnectOptions {
    if tls.handshake_first {
        opts = opts.tls_first().require_tls(true);
    }
    if let Some(root) = &tls.root {
        opts = opts.add_root_certificates(root.clone()).require_tls(true);
    }
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        opts = opts
            .add_client_certificate(cert.clone(), key.clone())
            .require_tls(true);
    }
    opts
}

/// A server config for HTTP/1.1 over TLS 1.2+ from PEM files.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    install_crypto_provider();
    let file_error = |what, path: &Path, reason: String| TlsError::File {
        what,
        path: path.display().to_string(),
        reason,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_error("certificate", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_error("certificate", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_error(
            "certificate",
            cert,
            "no certificate in the file".into(),
        ));
    }
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error("private key", key, e.to_string()))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
