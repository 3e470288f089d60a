//! Mutual TLS between the gateway and the nodes (rustls with aws-lc-rs),
//! written once for both sides.
//!
//! * [`DevPki`]: a local certificate authority for the demo and development,
//!   generated on first start (rcgen) and reused afterwards, which issues a
//!   server certificate per node (naming its `tls_identity`) and a client
//!   certificate for the gateway. Private keys are written readable by the
//!   owner only. Never use it in production: a real deployment's CA lives
//!   outside the federation's machines.
//! * [`client_config`]: the gateway's rustls client configuration: trusts
//!   only the given CA and presents the gateway's certificate.
//! * [`server_config`]: a node's rustls server configuration, which
//!   *requires* a client certificate issued by the given CA; a client
//!   without one fails the handshake. [`server_config_without_client_auth`]
//!   is the portal's (survivors have no certificates). The node's serving
//!   loop lives in `agency_node::tls`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why TLS material could not be made or loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read or write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Material { path: PathBuf, message: String },
    #[error("generating a certificate: {0}")]
    Generate(String),
    #[error("building the TLS configuration: {0}")]
    Config(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A certificate and its key on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// A local development CA in a directory: `ca.pem`, `ca.key.pem`, and the
/// identities it issued as `<name>.pem` / `<name>.key.pem`.
#[derive(Debug)]
pub struct DevPki {
    dir: PathBuf,
    ca_key: KeyPair,
}

const CA_NAME: &str = "Survivor exchange local development CA";

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    dn.push(
        DnType::OrganizationName,
        "survivor-exchange (development only)",
    );
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    params
}

impl DevPki {
    /// Loads the CA from `dir`, or creates one there on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, TlsError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join("ca.key.pem");
        let cert_path = dir.join("ca.pem");
        let ca_key = if key_path.exists() && cert_path.exists() {
            let pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            KeyPair::from_pem(&pem).map_err(|e| TlsError::Material {
                path: key_path.clone(),
                message: e.to_string(),
            })?
        } else {
            let key = KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
            let cert = ca_params()
                .self_signed(&key)
                .map_err(|e| TlsError::Generate(e.to_string()))?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
            key
        };
        Ok(Self {
            dir: dir.to_owned(),
            ca_key,
        })
    }

    /// The CA certificate (PEM) every party trusts.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The identity `name`, issued now if it is not on disk yet: a
    /// certificate for `dns_names` (and 127.0.0.1 / ::1), usable as a server
    /// certificate, a client certificate, or both.
    pub fn identity(
        &self,
        name: &str,
        dns_names: &[String],
        server: bool,
        client: bool,
    ) -> Result<Identity, TlsError> {
        let ok_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !ok_name {
            return Err(TlsError::Generate(format!(
                "bad identity file name {name:?}"
            )));
        }
        let identity = Identity {
            cert_file: self.dir.join(format!("{name}.pem")),
            key_file: self.dir.join(format!("{name}.key.pem")),
        };
        if identity.cert_file.exists() && identity.key_file.exists() {
            return Ok(identity);
        }
        let mut names = dns_names.to_vec();
        names.push("127.0.0.1".into());
        names.push("::1".into());
        let mut params =
            CertificateParams::new(names).map_err(|e| TlsError::Generate(e.to_string()))?;
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            dns_names.first().map(String::as_str).unwrap_or(name),
        );
        params.distinguished_name = dn;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        if server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
        params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(825);
        let key = KeyPair::generate().map_err(|e| TlsError::Generate(e.to_string()))?;
        let issuer = Issuer::new(ca_params(), &self.ca_key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let _ = std::fs::remove_file(&identity.key_file);
        write_private(&identity.key_file, key.serialize_pem().as_bytes())?;
        std::fs::write(&identity.cert_file, cert.pem()).map_err(io(&identity.cert_file))?;
        Ok(identity)
    }
}

/// Reads a PEM certificate chain.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::Material {
            path: path.to_owned(),
            message: e.to_string(),
        })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Material {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Material {
            path: path.to_owned(),
            message: "no certificate in the file".into(),
        });
    }
    Ok(certs)
}

/// Reads a PEM private key.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Material {
        path: path.to_owned(),
        message: e.to_string(),
    })
}

fn root_store(ca_file: &Path) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(ca_file)? {
        roots.add(cert).map_err(|e| TlsError::Material {
            path: ca_file.to_owned(),
            message: e.to_string(),
        })?;
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The gateway's client configuration: trusts only `ca_file` and presents
/// `cert_file`/`key_file` to the nodes.
pub fn client_config(
    cert_file: &Path,
    key_file: &Path,
    ca_file: &Path,
) -> Result<rustls::ClientConfig, TlsError> {
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(root_store(ca_file)?)
        .with_client_auth_cert(load_certs(cert_file)?, load_key(key_file)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(config)
}

/// A server configuration that requires a client certificate issued by
/// `client_ca_file`.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    client_ca_file: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(root_store(client_ca_file)?),
        provider(),
    )
    .build()
    .map_err(|e| TlsError::Config(e.to_string()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(cert_file)?, load_key(key_file)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server configuration presenting `cert_file` and asking no client
/// certificate.
pub fn server_config_without_client_auth(
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(load_certs(cert_file)?, load_key(key_file)?)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    crate::files::write_private(path, bytes).map_err(|e| TlsError::Material {
        path: path.to_owned(),
        message: format!("{e:#}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn handshake(
        server: Arc<rustls::ServerConfig>,
        client: rustls::ClientConfig,
        name: &str,
    ) -> bool {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let accept = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            match acceptor.accept(tcp).await {
                Ok(mut tls) => {
                    let _ = tls.write_all(b"ok").await;
                    let _ = tls.shutdown().await;
                    true
                }
                Err(_) => false,
            }
        });
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let server_name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let client_ok = match connector.connect(server_name, tcp).await {
            Ok(mut tls) => {
                let mut buf = Vec::new();
                tls.read_to_end(&mut buf).await.is_ok() && buf == b"ok"
            }
            Err(_) => false,
        };
        accept.await.unwrap() && client_ok
    }

    #[tokio::test]
    async fn only_clients_with_a_certificate_from_the_ca_get_through() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::load_or_create(&dir.path().join("pki")).unwrap();
        let node = pki
            .identity("node-a", &["node.a.example".into()], true, false)
            .unwrap();
        let gateway = pki
            .identity("gateway", &["gateway.example".into()], false, true)
            .unwrap();
        let server = server_config(&node.cert_file, &node.key_file, &pki.ca_file()).unwrap();

        let good = client_config(&gateway.cert_file, &gateway.key_file, &pki.ca_file()).unwrap();
        assert!(handshake(server.clone(), good.clone(), "node.a.example").await);

        let anonymous = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(root_store(&pki.ca_file()).unwrap())
            .with_no_client_auth();
        assert!(!handshake(server.clone(), anonymous, "node.a.example").await);

        let other = DevPki::load_or_create(&dir.path().join("other")).unwrap();
        let stranger = other
            .identity("gateway", &["gateway.example".into()], false, true)
            .unwrap();
        let foreign =
            client_config(&stranger.cert_file, &stranger.key_file, &pki.ca_file()).unwrap();
        assert!(!handshake(server.clone(), foreign, "node.a.example").await);

        // The client checks the node's name too.
        assert!(!handshake(server, good.clone(), "node.b.example").await);

        // And trusts only its own CA: a node certificate with the right name
        // from another CA is refused.
        let impostor = other
            .identity("node-a", &["node.a.example".into()], true, false)
            .unwrap();
        let impostor_server =
            server_config(&impostor.cert_file, &impostor.key_file, &pki.ca_file()).unwrap();
        assert!(!handshake(impostor_server, good, "node.a.example").await);
    }

    /// Private keys (the CA's and each identity's) are readable by their
    /// owner only.
    #[cfg(unix)]
    #[test]
    fn private_keys_are_written_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::load_or_create(dir.path()).unwrap();
        let node = pki
            .identity("node-a", &["a.example".into()], true, false)
            .unwrap();
        let mut keys = vec![node.key_file.clone()];
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(".key.pem"))
            {
                keys.push(path);
            }
        }
        keys.sort();
        keys.dedup();
        assert!(keys.len() >= 2, "the CA's key and the node's: {keys:?}");
        for key in keys {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }

    #[test]
    fn a_second_start_reuses_the_material() {
        let dir = tempfile::tempdir().unwrap();
        let pki = DevPki::load_or_create(dir.path()).unwrap();
        let first = pki
            .identity("node-a", &["a.example".into()], true, false)
            .unwrap();
        let pem = std::fs::read(&first.cert_file).unwrap();
        let again = DevPki::load_or_create(dir.path()).unwrap();
        let second = again
            .identity("node-a", &["a.example".into()], true, false)
            .unwrap();
        assert_eq!(std::fs::read(&second.cert_file).unwrap(), pem);
        // A new identity from the reloaded CA still chains to the same CA.
        let client = again
            .identity("gw", &["gw.example".into()], false, true)
            .unwrap();
        let server = server_config(&first.cert_file, &first.key_file, &again.ca_file()).unwrap();
        let config = client_config(&client.cert_file, &client.key_file, &again.ca_file()).unwrap();
        drop((server, config));
    }
}
