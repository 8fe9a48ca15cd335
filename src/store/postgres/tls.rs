//! TLS for the Postgres store, as the URL's `sslmode` asks, with libpq's meanings:
//! `require` encrypts without checking the server's certificate (unless `sslrootcert`
//! names the CA to check it against); `verify-ca` and `verify-full` check it, against
//! `sslrootcert` or else the system's roots, and the host name with it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// Whether and how a connection is encrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(in crate::store) enum Tls {
    /// Plain TCP (no `sslmode`, or `disable`, `allow`, `prefer`).
    Off,
    /// Encrypted, the server's certificate not checked (`require`).
    Encrypted,
    /// Encrypted, the server's certificate and name checked against these roots (a PEM
    /// file), or the system's.
    Verified(Option<PathBuf>),
}

impl Tls {
    /// The rustls configuration for this mode (none for [`Tls::Off`]).
    pub(super) fn client_config(&self) -> Result<Option<ClientConfig>, String> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?;
        let config = match self {
            Tls::Off => return Ok(None),
            Tls::Encrypted => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider))),
            Tls::Verified(Some(roots)) => builder.with_root_certificates(read_roots(roots)?),
            Tls::Verified(None) => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder
                    .with_platform_verifier()
                    .map_err(|e| format!("cannot load the system's certificate roots: {e}"))?
            }
        };
        Ok(Some(config.with_no_client_auth()))
    }
}

/// The certificates in the PEM file `path` (the URL's `sslrootcert`).
fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let failed = |e: &dyn std::fmt::Display| {
        format!(
            "cannot read the CA certificates in `{}` (sslrootcert): {e}",
            path.display()
        )
    };
    let mut roots = RootCertStore::empty();
    for certificate in CertificateDer::pem_file_iter(path).map_err(|e| failed(&e))? {
        roots
            .add(certificate.map_err(|e| failed(&e))?)
            .map_err(|e| failed(&e))?;
    }
    if roots.is_empty() {
        return Err(failed(&"it holds no certificate"));
    }
    Ok(roots)
}

/// libpq's `sslmode=require`: any certificate is accepted, but the handshake's
/// signatures are still checked, so the connection is encrypted to whoever holds the key.
#[derive(Debug)]
struct EncryptOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    /// Accepts any certificate.
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

    /// Checks a TLS 1.2 handshake signature.
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

    /// Checks a TLS 1.3 handshake signature.
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

    /// The signature schemes the provider checks.
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
