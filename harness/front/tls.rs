//! A private PKI for a TLS front server, made fresh for each run: a CA and a server
//! certificate it signs (ECDSA P-256, valid for `localhost`, 127.0.0.1 and ::1),
//! written as PEM into the run dir. The load trusts that CA unless `load.ca_file`
//! names another. [`rotate`] replaces the server certificate with a new one the same
//! CA signs, done right (atomic renames of a matching pair) or wrong on purpose.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustls::pki_types::pem::PemObject;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::error::{Error, Result};

/// The name the server certificate is made for, and the load's default server name (SNI).
pub const SERVER_NAME: &str = "localhost";

/// Where a run's PEM files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate (what a client trusts).
    pub ca: PathBuf,
    /// The server certificate.
    pub cert: PathBuf,
    /// The server's private key (mode 0600).
    pub key: PathBuf,
    /// The CA's private key (mode 0600): a rotation signs the new certificate with it.
    pub ca_key: PathBuf,
}

/// Makes a CA and a server certificate signed by it into `dir` (created, 0700):
/// `ca.pem`, `ca.key`, `server.pem`, `server.key`.
pub fn generate(dir: &Path) -> Result<TlsFiles> {
    let failed =
        |e: rcgen::Error| Error::Harness(format!("generating the run's TLS certificates: {e}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    let ca_key = KeyPair::generate().map_err(failed)?;
    let ca = ca_params().map_err(failed)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);
    let (cert, key) = server_cert(&issuer).map_err(failed)?;

    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        ca_key: dir.join("ca.key"),
    };
    write_private(&files.ca, ca_cert.pem().as_bytes())?;
    write_private(&files.ca_key, ca_key_pem.as_bytes())?;
    write_private(&files.cert, cert.as_bytes())?;
    write_private(&files.key, key.as_bytes())?;
    Ok(files)
}

/// Writes the server certificate followed by its key into one PEM next to them,
/// `server-with-key.pem` (0600), what haproxy's `crt` reads; returns its path.
pub fn cert_with_key(files: &TlsFiles) -> Result<PathBuf> {
    let mut pem = std::fs::read(&files.cert).map_err(|e| Error::io(&files.cert, e))?;
    if !pem.ends_with(b"\n") {
        pem.push(b'\n');
    }
    pem.extend(std::fs::read(&files.key).map_err(|e| Error::io(&files.key, e))?);
    let path = files.cert.with_file_name("server-with-key.pem");
    write_private(&path, &pem)?;
    Ok(path)
}

/// The run CA's parameters (its name is what a server certificate names as issuer).
fn ca_params() -> std::result::Result<CertificateParams, rcgen::Error> {
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, "zdt-check run CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(ca)
}

/// A new key and a server certificate for it signed by `issuer`, as PEM: (cert, key).
fn server_cert(
    issuer: &Issuer<'_, KeyPair>,
) -> std::result::Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec![SERVER_NAME.to_string()])?;
    server
        .distinguished_name
        .push(DnType::CommonName, SERVER_NAME);
    for ip in ["127.0.0.1", "::1"] {
        server
            .subject_alt_names
            .push(SanType::IpAddress(ip.parse().expect("a literal address")));
    }
    let cert = server.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// A rotation a reload did: what it rotated to, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct CertRotation {
    /// The new certificate's id (as in `stats.tls.certs`).
    pub new_cert: String,
    /// How it was done (`atomic`, `key-mismatch`, `torn`).
    pub how: String,
    /// When the files were replaced, ms since load start.
    pub at_ms: f64,
}

/// How [`rotate`] replaces the server certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// A new key and certificate written to new files, each renamed over the old path
    /// (the key first): at the reload, nginx reads a matching pair.
    Atomic,
    /// Done wrong: the new certificate renamed over the old one, the old key left in
    /// place. nginx refuses the reload (`key values mismatch`) and serves the old one.
    KeyMismatch,
    /// Done wrong, non-atomically: the new key written over the old one in place, and
    /// the reload comes before the new certificate is written (the reload that lands
    /// between the two writes of a copy script). The pair nginx reads does not match.
    Torn,
}

impl Rotation {
    /// The `rotate_cert` names, `none` first.
    pub const NAMES: &'static [&'static str] = &["none", "atomic", "key-mismatch", "torn"];

    /// The rotation a `rotate_cert` name says (None: `none`, or not a name).
    pub fn of(name: &str) -> Option<Rotation> {
        match name {
            "atomic" => Some(Rotation::Atomic),
            "key-mismatch" => Some(Rotation::KeyMismatch),
            "torn" => Some(Rotation::Torn),
            _ => None,
        }
    }
}

/// Replaces the server certificate of `files` with a new one the run's CA signs, as
/// `how` says; returns the new certificate's id
/// ([`fingerprint`](crate::load::tls::fingerprint), in hex). nginx reads the files
/// only when it loads its config: the rotation takes effect at the next reload.
pub fn rotate(files: &TlsFiles, how: Rotation) -> Result<String> {
    let failed = |e: rcgen::Error| Error::Step(format!("making the new certificate: {e}"));
    let ca_key_pem =
        std::fs::read_to_string(&files.ca_key).map_err(|e| Error::io(&files.ca_key, e))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(failed)?;
    let issuer = Issuer::new(ca_params().map_err(failed)?, ca_key);
    let (cert, key) = server_cert(&issuer).map_err(failed)?;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(cert.as_bytes())
        .map_err(|e| Error::Step(format!("reading the new certificate back: {e}")))?;
    let id = crate::load::tls::cert_id_hex(&crate::load::tls::fingerprint(&der));
    match how {
        Rotation::Atomic => {
            replace_atomically(&files.key, key.as_bytes())?;
            replace_atomically(&files.cert, cert.as_bytes())?;
        }
        Rotation::KeyMismatch => replace_atomically(&files.cert, cert.as_bytes())?,
        Rotation::Torn => std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&files.key)
            .and_then(|mut f| f.write_all(key.as_bytes()))
            .map_err(|e| Error::io(&files.key, e))?,
    }
    Ok(id)
}

/// Writes `bytes` to a new file next to `path` (0600) and renames it over `path`.
fn replace_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    write_private(&tmp, bytes)?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Writes a file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_a_ca_the_client_accepts_and_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(&dir.path().join("tls")).unwrap();
        let roots = crate::load::tls::read_ca_file(&files.ca).unwrap();
        assert_eq!(roots.len(), 1);
        let key = std::fs::read_to_string(&files.key).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&files.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let both = std::fs::read_to_string(cert_with_key(&files).unwrap()).unwrap();
        assert!(both.starts_with("-----BEGIN CERTIFICATE-----"), "{both}");
        assert!(both.contains("\n-----BEGIN PRIVATE KEY-----"), "{both}");
        // A second run in the same dir does not overwrite the first's files.
        assert!(generate(&dir.path().join("tls")).is_err());
    }

    /// The public key of a PEM certificate and of a PEM key, to see whether they match.
    fn keys(files: &TlsFiles) -> (Vec<u8>, Vec<u8>) {
        let der = rustls::pki_types::CertificateDer::from_pem_file(&files.cert).unwrap();
        let key = KeyPair::from_pem(&std::fs::read_to_string(&files.key).unwrap()).unwrap();
        (der.to_vec(), key.public_key_raw().to_vec())
    }

    #[test]
    fn rotations_make_a_new_certificate_signed_by_the_run_ca_matching_or_not() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(&dir.path().join("tls")).unwrap();
        let fp = |f: &TlsFiles| {
            let der = rustls::pki_types::CertificateDer::from_pem_file(&f.cert).unwrap();
            crate::load::tls::cert_id_hex(&crate::load::tls::fingerprint(&der))
        };
        let matches = |f: &TlsFiles| {
            let (der, key) = keys(f);
            der.windows(key.len()).any(|w| w == key.as_slice())
        };
        let first = fp(&files);
        assert!(matches(&files));
        // Atomic: a new matching pair, and the old paths' files are new inodes.
        let id = rotate(&files, Rotation::Atomic).unwrap();
        assert_ne!(id, first);
        assert_eq!(fp(&files), id);
        assert!(matches(&files), "an atomic rotation leaves a matching pair");
        // The new certificate chains to the run's CA: a client trusting it accepts it.
        let roots = crate::load::tls::read_ca_file(&files.ca).unwrap();
        let der = rustls::pki_types::CertificateDer::from_pem_file(&files.cert).unwrap();
        #[allow(deprecated)]
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            provider,
        )
        .build()
        .unwrap();
        use rustls::client::danger::ServerCertVerifier;
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier
            .verify_server_cert(&der, &[], &name, &[], now)
            .expect("the rotated certificate is signed by the run CA");
        // Key mismatch: the certificate is new, the key is not.
        let before_key = std::fs::read(&files.key).unwrap();
        let id2 = rotate(&files, Rotation::KeyMismatch).unwrap();
        assert_eq!(fp(&files), id2);
        assert_eq!(std::fs::read(&files.key).unwrap(), before_key);
        assert!(
            !matches(&files),
            "key-mismatch leaves a pair that does not match"
        );
        // Torn: the key is new, the certificate is not.
        let before_cert = std::fs::read(&files.cert).unwrap();
        rotate(&files, Rotation::Torn).unwrap();
        assert_eq!(std::fs::read(&files.cert).unwrap(), before_cert);
        assert_ne!(std::fs::read(&files.key).unwrap(), before_key);
        assert!(!matches(&files), "torn leaves a pair that does not match");
    }
}
