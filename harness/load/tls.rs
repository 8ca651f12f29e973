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

/// A rustls client for one target, shared by every connection of a run (so the
/// session tickets one connection receives let the next one resume).
#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
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
        // The ring provider as the brief of this client wants it; rustls deprecates it only
        // for lacking post-quantum key exchange, which a verifier on loopback does not need.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
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
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            name,
        })
    }

    /// The connector and the server name a handshake uses.
    pub fn parts(&self) -> (&tokio_rustls::TlsConnector, ServerName<'static>) {
        (&self.connector, self.name.clone())
    }
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
