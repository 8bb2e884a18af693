//! TLS to PostgreSQL as the address asks for it with `sslmode` and `sslrootcert`.
//!
//! The modes keep libpq's names. `disable` never encrypts. `prefer` (the default) and `allow`
//! encrypt when the server offers it without checking who answers, as libpq does: they only
//! keep a passive listener out. `require`, `verify-ca` and `verify-full` all encrypt and check
//! the server's certificate and name, against `sslrootcert=FILE` (PEM) when given, else the
//! platform's trust store; libpq's `require` would not check, and a database password is
//! worth checking for.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::super::{StoreError, StoreResult};

/// What the address asks of TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tls {
    /// `sslmode=disable`.
    Off,
    /// `prefer`/`allow`: encrypted when the server can, the certificate not checked.
    Opportunistic,
    /// `require`/`verify-ca`/`verify-full`: encrypted, the certificate checked against these
    /// roots (`None`: the platform's).
    Verified(Option<PathBuf>),
}

/// Splits `url` into the address the driver reads (`sslmode` one it knows, `sslrootcert`
/// taken out) and the TLS it asks for.
pub(super) fn read(url: &str) -> StoreResult<(String, Tls)> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut roots = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sslmode" => mode = Some(value.to_owned()),
            "sslrootcert" => {
                let path = percent_encoding::percent_decode_str(value).decode_utf8_lossy();
                // libpq 16 spells "the platform's roots" `system`.
                roots = (path != "system").then(|| PathBuf::from(path.as_ref()));
            }
            _ => kept.push(pair),
        }
    }
    let (tls, driver_mode) = match mode.as_deref() {
        None | Some("prefer" | "allow") => (Tls::Opportunistic, "prefer"),
        Some("disable") => (Tls::Off, "disable"),
        Some("require" | "verify-ca" | "verify-full") => (Tls::Verified(roots.clone()), "require"),
        Some(other) => {
            return Err(StoreError::Unsupported(format!(
                "not a usable PostgreSQL address: sslmode `{other}` is none of disable, allow, \
                 prefer, require, verify-ca, verify-full"
            )));
        }
    };
    if roots.is_some() && !matches!(tls, Tls::Verified(_)) {
        return Err(StoreError::Unsupported(
            "not a usable PostgreSQL address: sslrootcert is only read with sslmode=require \
             (or verify-ca, verify-full); add it, or the certificate would not be checked"
                .into(),
        ));
    }
    kept.push(match driver_mode {
        "disable" => "sslmode=disable",
        "require" => "sslmode=require",
        _ => "sslmode=prefer",
    });
    Ok((format!("{base}?{}", kept.join("&")), tls))
}

/// The connector for `tls` (not called for [`Tls::Off`]).
pub(super) fn connector(tls: &Tls) -> StoreResult<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(setup)?;
    let config = match tls {
        Tls::Verified(Some(file)) => builder.with_root_certificates(roots(file)?),
        Tls::Verified(None) => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier().map_err(setup)?
        }
        Tls::Off | Tls::Opportunistic => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))),
    };
    Ok(MakeRustlsConnect::new(config.with_no_client_auth()))
}

/// Adds what to do to a failed connection's message when the certificate was the cause.
pub(super) fn hint(err: StoreError) -> StoreError {
    match err {
        StoreError::Backend { backend, message }
            if message.contains("invalid peer certificate") =>
        {
            StoreError::Backend {
                backend,
                message: format!(
                    "{message} (the server's certificate is not trusted: add \
                     sslrootcert=FILE, the PEM certificate of the authority that signed it, \
                     to the address)"
                ),
            }
        }
        other => other,
    }
}

fn setup(err: rustls::Error) -> StoreError {
    StoreError::Backend {
        backend: "postgres",
        message: format!("cannot set up TLS: {err}"),
    }
}

/// The certificates in the PEM file `file`, as the only roots to trust.
fn roots(file: &Path) -> StoreResult<rustls::RootCertStore> {
    let unusable =
        |why: String| StoreError::Unsupported(format!("sslrootcert {}: {why}", file.display()));
    let mut store = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(file).map_err(|e| unusable(e.to_string()))? {
        let cert = cert.map_err(|e| unusable(e.to_string()))?;
        store
            .add(cert)
            .map_err(|e| unusable(format!("not a usable certificate: {e}")))?;
    }
    if store.is_empty() {
        return Err(unusable("holds no PEM certificate".into()));
    }
    Ok(store)
}

/// Accepts whichever certificate the server shows, for `prefer`; the handshake's own
/// signatures are still checked, so the session is encrypted to whoever holds that key.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_keep_libpq_names_and_roots_leave_the_driver_address() {
        let (url, tls) = read("postgres://u@h/db").unwrap();
        assert_eq!(
            (url.as_str(), tls),
            ("postgres://u@h/db?sslmode=prefer", Tls::Opportunistic)
        );
        let (url, tls) = read(
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=x",
        )
        .unwrap();
        assert_eq!(url, "postgres://u@h/db?application_name=x&sslmode=require");
        assert_eq!(tls, Tls::Verified(Some(PathBuf::from("/etc/ca.pem"))));
        let (_, tls) = read("postgres://u@h/db?sslmode=require&sslrootcert=system").unwrap();
        assert_eq!(tls, Tls::Verified(None));
        let (url, tls) = read("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(
            (url.as_str(), tls),
            ("postgres://u@h/db?sslmode=disable", Tls::Off)
        );
    }

    #[test]
    fn unknown_modes_and_unchecked_roots_are_refused() {
        let err = read("postgres://u@h/db?sslmode=requir")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode `requir`"), "{err}");
        let err = read("postgres://u@h/db?sslrootcert=/ca.pem")
            .unwrap_err()
            .to_string();
        assert!(err.contains("only read with sslmode=require"), "{err}");
    }
}
