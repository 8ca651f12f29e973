//! A private PKI for a TLS front server, made fresh for each run: a CA and a server
//! certificate it signs (ECDSA P-256, valid for `localhost`, 127.0.0.1 and ::1),
//! written as PEM into the run dir. The load trusts that CA unless `load.ca_file`
//! names another.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

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
}

/// Makes a CA and a server certificate signed by it into `dir` (created, 0700):
/// `ca.pem`, `server.pem`, `server.key`.
pub fn generate(dir: &Path) -> Result<TlsFiles> {
    let failed =
        |e: rcgen::Error| Error::Harness(format!("generating the run's TLS certificates: {e}"));
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::io(dir, e))?;
    let ca_key = KeyPair::generate().map_err(failed)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    ca.distinguished_name
        .push(DnType::CommonName, "zdt-check run CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).map_err(failed)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().map_err(failed)?;
    let mut server = CertificateParams::new(vec![SERVER_NAME.to_string()]).map_err(failed)?;
    server
        .distinguished_name
        .push(DnType::CommonName, SERVER_NAME);
    for ip in ["127.0.0.1", "::1"] {
        server
            .subject_alt_names
            .push(SanType::IpAddress(ip.parse().expect("a literal address")));
    }
    let cert = server.signed_by(&key, &issuer).map_err(failed)?;

    let files = TlsFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    write_private(&files.ca, ca_cert.pem().as_bytes())?;
    write_private(&files.cert, cert.pem().as_bytes())?;
    write_private(&files.key, key.serialize_pem().as_bytes())?;
    Ok(files)
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
        // A second run in the same dir does not overwrite the first's files.
        assert!(generate(&dir.path().join("tls")).is_err());
    }
}
