//! TLS for `https://` targets: what the client trusts and the name it checks
//! ([`TlsSettings`], plain data a target carries), and the rustls client built from
//! them once per run ([`TlsClient`]), which keeps the session tickets servers send so
//! fresh connections can resume.
//!
//! rustls with the `ring` provider; TLS 1.2 and 1.3; no ALPN (HTTP/1.1 only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Where the trusted CAs come from when no `ca_file` is given (Debian's bundle).
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How an https target is reached: the name checked against its certificate (and
/// sent as SNI when it is a DNS name), and what is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// The name the certificate must be valid for: a DNS name (sent as SNI) or an IP address.
    pub server_name: String,
    /// PEM file of the CAs trusted (none: the system bundle, [`SYSTEM_CA_BUNDLE`]).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (the handshake's signatures are still checked).
    pub insecure_skip_verify: bool,
}

impl TlsSettings {
    /// The settings for the authority of an `https://` URL: its host as the server name.
    pub fn for_host(host: &str) -> TlsSettings {
        let name = host.trim_start_matches('[').trim_end_matches(']');
        TlsSettings {
            server_name: name.to_string(),
            ca_file: None,
            insecure_skip_verify: false,
        }
    }
}

/// Why `name` cannot be a TLS server name, if it cannot.
pub fn server_name_problem(name: &str) -> Option<String> {
    ServerName::try_from(name.to_string())
        .err()
        .map(|_| format!("{name:?} is neither a DNS name nor an IP address"))
}

/// The certificates of a PEM file as a root store, or why they cannot be one (no
/// file, no `CERTIFICATE` block in it, a block that does not parse).
pub fn read_ca_file(path: &Path) -> Result<RootCertStore, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes) {
        let cert = cert.map_err(|e| format!("{}: not a PEM certificate: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: a certificate rustls cannot use: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "{}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        ));
    }
    Ok(roots)
}

/// The ALPN protocol id of HTTP/2 over TLS.
pub const ALPN_H2: &[u8] = b"h2";

/// A rustls client for one target, shared by every connection of a run (so the
/// session tickets one connection receives let the next one resume).
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsClient({:?})", self.name)
    }
}

impl TlsClient {
    /// Builds the client: reads the CA file (or the system bundle) unless verification is off.
    pub fn new(s: &TlsSettings) -> Result<TlsClient, String> {
        let name = ServerName::try_from(s.server_name.clone())
            .map_err(|_| server_name_problem(&s.server_name).unwrap_or_default())?;
        let provider = Arc::new(provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let config = if s.insecure_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let path = s
                .ca_file
                .clone()
                .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
            builder
                .with_root_certificates(read_ca_file(&path)?)
                .with_no_client_auth()
        };
        let config = Arc::new(config);
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(config.clone()),
            name,
            config,
        })
    }

    /// The same client offering only `h2` by ALPN (HTTP/2 over TLS). Its session
    /// store is the same one, so an h2 connection may resume an h1 connection's session.
    pub fn offering_h2(&self) -> TlsClient {
        let mut config = (*self.config).clone();
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        let config = Arc::new(config);
        TlsClient {
            connector: tokio_rustls::TlsConnector::from(config.clone()),
            name: self.name.clone(),
            config,
        }
    }

    /// The connector and the server name a handshake uses.
    pub fn parts(&self) -> (&tokio_rustls::TlsConnector, ServerName<'static>) {
        (&self.connector, self.name.clone())
    }
}

/// The crypto provider: ring's, offering X25519 first, then P-256 and P-384, as browsers,
/// curl and oha do. rustls 0.23.48's ring default puts P-384 first: its key share,
/// made for every ClientHello (even one that then resumes a TLS 1.2 session and uses
/// none), cost about 250 µs of CPU a connection, 2.6 times oha's CPU per fresh
/// connection (benches/compare-oha-tls.sh).
fn provider() -> rustls::crypto::CryptoProvider {
    // The ring provider as the brief of this client wants it; rustls deprecates it only
    // for lacking post-quantum key exchange, which a verifier on loopback does not need.
    #[allow(deprecated)]
    let mut provider = rustls::crypto::ring::default_provider();
    use rustls::crypto::ring::kx_group;
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    provider
}

/// `insecure_skip_verify`: any certificate chain is accepted; the handshake's
/// signatures are still verified (the peer must hold the key of the certificate it sent).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A server certificate's identity: the first 8 bytes of the SHA-256 of its DER.
pub type CertId = [u8; 8];

/// The [`CertId`] of a certificate (one SHA-256, done on full handshakes only).
pub fn fingerprint(der: &[u8]) -> CertId {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let mut id = [0u8; 8];
    id.copy_from_slice(&digest.as_ref()[..8]);
    id
}

/// A [`CertId`] as reported: 16 lowercase hex digits.
pub fn cert_id_hex(id: &CertId) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a failed handshake's error says the certificate was rejected
/// (`tls_cert_rejected`) rather than the handshake failing (`tls_handshake`).
pub fn is_cert_rejection(e: &std::io::Error) -> bool {
    let Some(inner) = e.get_ref() else {
        return false;
    };
    matches!(
        inner.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidCertificate(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_key_share_offered_first_is_x25519() {
        let groups: Vec<_> = provider().kx_groups.iter().map(|g| g.name()).collect();
        use rustls::NamedGroup;
        assert_eq!(
            groups,
            [
                NamedGroup::X25519,
                NamedGroup::secp256r1,
                NamedGroup::secp384r1
            ]
        );
    }

    #[test]
    fn server_names_and_ca_files_are_checked() {
        assert_eq!(server_name_problem("localhost"), None);
        assert_eq!(server_name_problem("127.0.0.1"), None);
        assert_eq!(server_name_problem("::1"), None);
        assert!(server_name_problem("not a name").is_some());
        assert_eq!(TlsSettings::for_host("[::1]").server_name, "::1");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        assert!(read_ca_file(&p).unwrap_err().contains("cannot read"));
        std::fs::write(&p, "hello").unwrap();
        assert!(read_ca_file(&p).unwrap_err().contains("no PEM certificate"));
        std::fs::write(
            &p,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        assert!(read_ca_file(&p).is_err());
        let insecure = TlsSettings {
            insecure_skip_verify: true,
            ..TlsSettings::for_host("localhost")
        };
        assert!(TlsClient::new(&insecure).is_ok());
    }

    /// A CA, and a server certificate it signed for `localhost`, as PEM: (ca, cert, key).
    fn pki() -> (String, String, String) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        (ca_pem, cert.pem(), key.serialize_pem())
    }

    /// An https server on loopback answering every request with `200` and keeping the
    /// connection, until the test ends; `close_after` requests, it closes it instead.
    async fn server(cert: &str, key: &str, close_after: usize) -> std::net::SocketAddr {
        use rustls::pki_types::PrivateKeyDer;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let provider = Arc::new(provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = l.accept().await.unwrap();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut s) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut buf = Vec::new();
                    for _ in 0..close_after {
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                                return;
                            }
                        }
                        buf.clear();
                        let reply =
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-App-Version: v1\r\n\r\nok";
                        s.write_all(reply).await.unwrap();
                        s.flush().await.unwrap();
                    }
                    let _ = s.shutdown().await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn https_fresh_and_kept_connections_resumption_and_rejection() {
        use crate::load::client::{Conn, Idle, ReadSpec};
        use crate::load::Endpoint;
        use crate::stats::outcome::Outcome;
        let (ca, cert, key) = pki();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca).unwrap();
        let ep = Endpoint::Tcp(server(&cert, &key, 2).await);
        let trust = TlsSettings {
            ca_file: Some(ca_file.clone()),
            ..TlsSettings::for_host("localhost")
        };
        let client = TlsClient::new(&trust).unwrap();
        let t = Duration::from_secs(5);
        let req = b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let spec = ReadSpec::default();
        let mut buf = Vec::new();

        // A kept connection carries two requests, then the server closes it (close_notify).
        let mut conn = Conn::connect(&ep, Some(&client), t).await.unwrap();
        assert_eq!(
            conn.resumed(),
            Some(false),
            "the first handshake is a full one"
        );
        for reused in [false, true] {
            assert_eq!(conn.is_reused(), reused);
            let r = conn.exchange(req, &mut buf, &spec).await.unwrap();
            assert_eq!((r.status, r.reusable), (200, true));
        }
        let mut idle = Idle::Open;
        for _ in 0..200 {
            idle = conn.idle_state();
            if idle != Idle::Open {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            idle,
            Idle::Closed,
            "a close while idle is seen before reuse"
        );

        // A fresh connection resumes with the ticket the first one received.
        let mut fresh = Conn::connect(&ep, Some(&client), t).await.unwrap();
        assert_eq!(fresh.resumed(), Some(true));
        assert_eq!(
            fresh.exchange(req, &mut buf, &spec).await.unwrap().status,
            200
        );

        // The wrong name, or another CA: the certificate is rejected.
        let wrong_name = TlsClient::new(&TlsSettings {
            server_name: "example.com".into(),
            ..trust.clone()
        })
        .unwrap();
        let (other_ca, _, _) = pki();
        std::fs::write(&ca_file, other_ca).unwrap();
        let other = TlsClient::new(&trust).unwrap();
        for c in [&wrong_name, &other] {
            assert_eq!(
                Conn::connect(&ep, Some(c), t).await.err(),
                Some(Outcome::TlsCertRejected)
            );
        }

        // A server that does not speak TLS: the handshake fails.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let plain = Endpoint::Tcp(l.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        });
        assert_eq!(
            Conn::connect(&plain, Some(&client), t).await.err(),
            Some(Outcome::TlsHandshake)
        );
        // One that accepts and never answers: the connect timeout ends the handshake.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = Endpoint::Tcp(l.local_addr().unwrap());
        let _held = tokio::spawn(async move {
            let (s, _) = l.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(s);
        });
        assert_eq!(
            Conn::connect(&silent, Some(&client), Duration::from_millis(200))
                .await
                .err(),
            Some(Outcome::TlsHandshake)
        );
    }

    #[test]
    fn a_certificate_error_is_a_rejection() {
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(is_cert_rejection(&e));
        let e = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(rustls::AlertDescription::HandshakeFailure),
        );
        assert!(!is_cert_rejection(&e));
        assert!(!is_cert_rejection(&std::io::Error::from(
            std::io::ErrorKind::UnexpectedEof
        )));
    }
}
